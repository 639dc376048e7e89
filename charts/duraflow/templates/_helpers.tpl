{{/* Names, labels and the shared restricted security settings of the Duraflow chart. */}}

{{- define "duraflow.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "duraflow.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "duraflow.operatorName" -}}
{{- printf "%s-operator" (include "duraflow.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "duraflow.postgresqlName" -}}
{{- printf "%s-postgresql" (include "duraflow.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "duraflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "duraflow.operatorName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "duraflow.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "duraflow.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "duraflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: duraflow
{{- end -}}

{{- define "duraflow.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "duraflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "duraflow.postgresqlSelectorLabels" -}}
app.kubernetes.io/name: {{ include "duraflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: postgresql
{{- end -}}

{{/* The Secret (name, key) that holds the database URL every Duraflow pod reads. */}}
{{- define "duraflow.databaseSecretName" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "duraflow.postgresqlName" . -}}
{{- else -}}
{{- .Values.database.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "duraflow.databaseSecretKey" -}}
{{- if .Values.postgresql.enabled -}}
url
{{- else -}}
{{- .Values.database.existingSecretKey -}}
{{- end -}}
{{- end -}}

{{/* Pod-level security context of Pod Security "restricted"; argument: the numeric uid. */}}
{{- define "duraflow.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security context of Pod Security "restricted"; argument: the numeric uid. */}}
{{- define "duraflow.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Namespaced permissions of the operator: exactly the rules of the operator's contract. */}}
{{- /*
Exactly what the operator calls (tests/operator/test_rbac_used.py records its requests):
kopf lists, watches and patches the CRs (finalizers, its status bookkeeping), the operator
writes statuses, reads and writes the children of a WorkerPool and posts Events. One more
read: an Orchestration is re-read when a status write found it changed. Orchestrations are
created (an OrchestrationSchedule's runs) and deleted (runs beyond the history limits, and
CRs past their ttlSecondsAfterFinished).
The OwnerReferencesPermissionEnforcement admission plugin (on in OpenShift) checks two more
permissions than the requests themselves: a child created with an ownerReference that has
blockOwnerDeletion needs "update" on workerpools/finalizers or orchestrationschedules/finalizers
(a permission only, there is no such endpoint for a custom resource), and setting the
ownerReferences of an existing child (the operator adopts orphans of its own pools) needs
"delete" on that child.
Nothing cluster-scoped: with CRD scanning off, kopf neither lists namespaces nor CRDs (it
only reads discovery, which every authenticated client may).
*/ -}}
{{- define "duraflow.namespacedRules" -}}
- apiGroups: ["duraflow.io"]
  resources: ["orchestrations"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["duraflow.io"]
  resources: ["orchestrationschedules"]
  verbs: ["list", "watch", "patch"]
- apiGroups: ["duraflow.io"]
  resources: ["workerpools"]
  verbs: ["list", "watch"]
- apiGroups: ["duraflow.io"]
  resources: ["orchestrations/status", "workerpools/status", "orchestrationschedules/status"]
  verbs: ["patch"]
- apiGroups: ["duraflow.io"]
  resources: ["workerpools/finalizers", "orchestrationschedules/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}

{{/* Leader election: one Lease in the operator's namespace. */}}
{{- define "duraflow.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end -}}
