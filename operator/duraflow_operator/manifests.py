"""WorkerPool -> StatefulSets (one per revision), headless Service and PodDisruptionBudget
(pure, no I/O).

A revision is the StatefulSet ``<pool>-<build>`` of one build (docs/rollouts.md): its pods
carry the label ``duraflow.io/build`` and run ``duraflow worker --no-auto-promote`` with
``DURAFLOW_BUILD_ID`` (the operator promotes the build, not the first pod that starts). A
pool made before revisions has one StatefulSet ``<pool>`` without a build label (its selector
is immutable): adopted as a revision, it keeps its name and selector.

The pod name is the worker's ``worker_node_id`` (``DURAFLOW_WORKER_NODE_ID`` from the
downward API), which a StatefulSet keeps stable across restarts: sessions pinned to a
worker survive its pod being rescheduled. Pods run under the restricted Pod Security
Standard. The env names are those ``duraflow worker`` reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from duraflow_operator.quantity import canonical
from duraflow_operator.settings import GROUP, MANAGED_BY, VERSION
from duraflow_operator.spec import SCHEDULING_FIELDS, WorkerPoolSpec

METRICS_PORT = 9464
RUN_AS_USER = 10001
#: Pod-spec fields a pool sets or leaves out. Owned whole: a value the pool no longer has
#: (removed, or a key removed inside it) is removed from the StatefulSet too.
OWNED_POD_FIELDS = (*SCHEDULING_FIELDS, "serviceAccountName")


POOL_LABEL = "duraflow.io/workerpool"
BUILD_LABEL = "duraflow.io/build"
#: On every revision's StatefulSet, the adopted one's included: the build its pods run.
BUILD_ANNOTATION = "duraflow.io/build"
NO_AUTO_PROMOTE = "--no-auto-promote"


def labels(pool: str, build: str | None = None) -> dict[str, str]:
    out = {
        "app.kubernetes.io/name": "duraflow-worker",
        "app.kubernetes.io/instance": pool,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        POOL_LABEL: pool,
    }
    if build is not None:
        out[BUILD_LABEL] = build
    return out


def revision_name(pool: str, build: str) -> str:
    return f"{pool}-{build}"


def pod_selector(pool: str, build: str | None = None) -> str:
    """The label selector of a revision's pods (of all the pool's pods for the adopted
    revision, whose selector has no build), as a string (the scale subresource's form)."""
    if build is None:
        return f"{POOL_LABEL}={pool}"
    return f"{POOL_LABEL}={pool},{BUILD_LABEL}={build}"


def owner_reference(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "WorkerPool", "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def _metadata(body: Mapping[str, Any], name: str) -> dict[str, Any]:
    pool = body["metadata"]["name"]
    return {"name": name, "namespace": body["metadata"]["namespace"], "labels": labels(pool),
            "ownerReferences": [owner_reference(body)]}


def _env(spec: WorkerPoolSpec, build: str | None) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "DURAFLOW_WORKER_NODE_ID",
         "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "DURAFLOW_DATABASE_URL",
         "valueFrom": {"secretKeyRef": {"name": spec.secret_name, "key": spec.secret_key}}},
        {"name": "DURAFLOW_APP", "value": spec.app},
        {"name": "DURAFLOW_METRICS_PORT", "value": str(METRICS_PORT)},
    ]
    optional = {
        "DURAFLOW_SCHEMA": spec.schema,
        "DURAFLOW_TAGS": ",".join(spec.tags) if spec.tags else None,
        "DURAFLOW_INCLUDE_UNTAGGED": "true" if spec.tags and spec.include_untagged else None,
        "DURAFLOW_ORCHESTRATION_CONCURRENCY": spec.orchestration_concurrency,
        "DURAFLOW_WORKER_CONCURRENCY": spec.worker_concurrency,
        "DURAFLOW_MAX_SESSIONS": spec.max_sessions,
        "DURAFLOW_SESSION_IDLE_TIMEOUT_MS": None if spec.session_idle_timeout_s is None
        else spec.session_idle_timeout_s * 1000,
        "DURAFLOW_RETENTION": spec.retention,
        "DURAFLOW_BUILD_ID": build,
    }
    env += [{"name": k, "value": str(v)} for k, v in optional.items() if v is not None]
    reserved = {e["name"] for e in env}
    env += [dict(e) for e in spec.env if e.get("name") not in reserved]
    return env


def default_pull_policy(image: str) -> str:
    """kube-apiserver's default: ``Always`` for the tag ``latest`` (or no tag and no
    digest), else ``IfNotPresent``."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ("" if digest else "latest")
    return "Always" if tag == "latest" else "IfNotPresent"


def _resources(resources: Mapping[str, Any]) -> dict[str, Any]:
    """As the API server will store them: quantities in canonical form (``1024Mi`` is
    read back as ``1Gi``), so what is read back compares equal to what was sent."""
    out = dict(resources)
    for kind in ("requests", "limits"):
        values = out.get(kind)
        if isinstance(values, Mapping):
            out[kind] = {name: canonical(value) for name, value in values.items()}
    return out


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": "metrics"}, "periodSeconds": period,
            "failureThreshold": failures, "timeoutSeconds": 3}


def stateful_set(body: Mapping[str, Any], spec: WorkerPoolSpec, build: str | None = None, *,
                 adopted: bool = False) -> dict[str, Any]:
    """The StatefulSet of the revision of ``build`` (None: the pods of an adopted pool not
    yet told their build). ``adopted``: the StatefulSet ``<pool>`` of a pool made before
    revisions, whose name and selector stay (its pods are not restarted for the name)."""
    pool = body["metadata"]["name"]
    name = pool if adopted or build is None else revision_name(pool, build)
    selector_build = None if adopted else build
    container: dict[str, Any] = {
        "name": "worker",
        "image": spec.image,
        "args": ["worker"] if build is None else ["worker", NO_AUTO_PROMOTE],
        "env": _env(spec, build),
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "livenessProbe": _probe("/healthz", 10, 3),
        "readinessProbe": _probe("/readyz", 5, 2),
        "startupProbe": _probe("/healthz", 2, 30),
        "securityContext": {
            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "runAsNonRoot": True, "runAsUser": RUN_AS_USER, "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    # Always explicit: the API server's default is set once and never revisited, so a
    # policy removed from the pool must be replaced by the default the server would pick.
    container["imagePullPolicy"] = spec.image_pull_policy or default_pull_policy(spec.image)
    container["resources"] = _resources(spec.resources or {})
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": 30,
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER, "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        "automountServiceAccountToken": False,
    }
    if spec.service_account:
        pod_spec["serviceAccountName"] = spec.service_account
    pod_spec.update({k: v for k, v in spec.scheduling.items()})
    metadata = _metadata(body, name)
    metadata["labels"] = labels(pool, selector_build)
    if build is not None:
        metadata["annotations"] = {BUILD_ANNOTATION: build}
    selector = {POOL_LABEL: pool}
    if selector_build is not None:
        selector[BUILD_LABEL] = selector_build
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata,
        "spec": {
            "replicas": spec.replicas,
            "serviceName": pool,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels(pool, build),
                             "annotations": {"prometheus.io/scrape": "true",
                                             "prometheus.io/port": str(METRICS_PORT)}},
                "spec": pod_spec,
            },
        },
    }


def service(body: Mapping[str, Any]) -> dict[str, Any]:
    pool = body["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(body, pool),
        "spec": {"clusterIP": "None", "selector": {"duraflow.io/workerpool": pool},
                 "ports": [{"name": "metrics", "port": METRICS_PORT,
                            "targetPort": "metrics"}],
                 "publishNotReadyAddresses": True},
    }


def disruption_budget(body: Mapping[str, Any], spec: WorkerPoolSpec) -> dict[str, Any]:
    pool = body["metadata"]["name"]
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(body, pool),
        "spec": {"maxUnavailable": spec.max_unavailable,
                 "selector": {"matchLabels": {"duraflow.io/workerpool": pool}}},
    }


def _pod(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    pod: Mapping[str, Any] = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return pod


def _nothing_to_none(value: Any) -> Any:
    return None if value in (None, "", {}, []) else value


def owned_drift(actual: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether the fields a pool owns whole differ (a removal included); ``drifted`` looks
    only at what ``desired`` sets, and so cannot see a field or key that was removed."""
    have, want = _pod(actual), _pod(desired)
    if any(_nothing_to_none(have.get(f)) != _nothing_to_none(want.get(f))
           for f in OWNED_POD_FIELDS):
        return True
    return any((a.get("resources") or {}) != (d.get("resources") or {})
               for a, d in zip(have.get("containers") or [], want.get("containers") or [],
                               strict=False))


def replace_with(actual: Any, desired: Any) -> Any:
    """The JSON merge patch that turns ``actual`` into exactly ``desired`` (null removes a
    key; a merge patch replaces lists whole and merges maps)."""
    if isinstance(desired, Mapping) and isinstance(actual, Mapping):
        patch: dict[str, Any] = {k: replace_with(actual.get(k), v) for k, v in desired.items()}
        patch.update({k: None for k in actual if k not in desired})
        return patch
    return desired


def child_patch(actual: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch for a drifted child: the desired labels, owner and spec, and for a
    StatefulSet the owned pod fields replaced whole. ``serviceAccount``, the deprecated
    alias the API server keeps equal to ``serviceAccountName``, is cleared: left behind, it
    would bring a removed ``serviceAccountName`` back."""
    spec = dict(desired["spec"])
    if desired.get("kind") == "StatefulSet":
        template = dict(spec["template"])
        pod, have = dict(template["spec"]), _pod(actual)
        for field in OWNED_POD_FIELDS:
            pod[field] = replace_with(have.get(field), pod.get(field))
        pod["serviceAccount"] = None
        template["spec"] = pod
        spec["template"] = template
    metadata = {"labels": desired["metadata"]["labels"],
                "ownerReferences": desired["metadata"]["ownerReferences"]}
    if "annotations" in desired["metadata"]:
        metadata["annotations"] = desired["metadata"]["annotations"]
    return {"metadata": metadata, "spec": spec}


def drifted(actual: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether ``actual`` lacks or differs in anything ``desired`` sets (extra fields that
    the API server defaults are not drift)."""
    for key, value in desired.items():
        have = actual.get(key)
        if isinstance(value, Mapping):
            if not isinstance(have, Mapping) or drifted(have, value):
                return True
        elif isinstance(value, list):
            if not isinstance(have, list) or len(have) != len(value):
                return True
            for a, d in zip(have, value, strict=True):
                if isinstance(d, Mapping):
                    if not isinstance(a, Mapping) or drifted(a, d):
                        return True
                elif a != d:
                    return True
        elif have != value:
            return True
    return False
