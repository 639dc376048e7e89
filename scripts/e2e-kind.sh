#!/usr/bin/env bash
# make e2e-kind: the whole Kubernetes path on a throwaway kind cluster.
#   build the image -> load it into kind -> helm install (bundled PostgreSQL, example WorkerPool)
#   -> apply a sample Orchestration -> wait until it is Completed -> the example pool's pods
#   ready (the real StatefulSet controller, kubelet, probes, Pod Security "restricted") -> its
#   scale subresource -> no request of the operator refused (RBAC) -> kubectl get orch,wp.
# Needs Docker (a running engine), kind, kubectl and helm on PATH. Not part of `make test`.
# Environment: KIND_CLUSTER (default duraflow-e2e), KEEP_CLUSTER=1 keeps it afterwards,
# E2E_TIMEOUT (seconds to wait for Completed, default 300).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${KIND_CLUSTER:-duraflow-e2e}
NAMESPACE=duraflow-system
RELEASE=duraflow
TIMEOUT=${E2E_TIMEOUT:-300}
VERSION=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/duraflow/Chart.yaml)
IMAGE=duraflow/duraflow:${VERSION}

die() { echo "e2e-kind: $*" >&2; exit 1; }
need() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed; make e2e-kind needs Docker, kind, kubectl and helm ($2)"
}
need docker "https://docs.docker.com/engine/install/"
need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
need kubectl "https://kubernetes.io/docs/tasks/tools/"
need helm "https://helm.sh/docs/intro/install/"
docker info >/dev/null 2>&1 || die "the docker CLI is here but no Docker engine answers (is the daemon running?)"
[ -d crds ] && ls crds/*.yaml >/dev/null 2>&1 || die "no CRDs in crds/ (the operator's source of truth)"
cmp -s <(cat crds/*.yaml) <(cat charts/duraflow/crds/*.yaml) || die "charts/duraflow/crds differs from crds/: run 'make sync-crds'"

cleanup() {
    if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
        echo "e2e-kind: keeping cluster '$CLUSTER' (kind delete cluster --name $CLUSTER)"
    else
        kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    fi
}
dump() {
    echo "e2e-kind: FAILED; cluster state follows" >&2
    kubectl get all,orch,workerpools -A -o wide >&2 || true
    kubectl -n "$NAMESPACE" logs deploy/${RELEASE}-operator --tail=100 >&2 || true
    kubectl -n "$NAMESPACE" get events --sort-by=.lastTimestamp 2>&1 | tail -30 >&2 || true
}
trap 'rc=$?; [ $rc -ne 0 ] && dump; cleanup; exit $rc' EXIT

echo "== kind cluster $CLUSTER"
kind get clusters 2>/dev/null | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s
kubectl config use-context "kind-$CLUSTER" >/dev/null

echo "== image $IMAGE"
docker build -f worker_image/Dockerfile -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

echo "== helm install"
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace "$NAMESPACE" --overwrite \
    pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted
helm upgrade --install "$RELEASE" charts/duraflow --namespace "$NAMESPACE" \
    --set postgresql.enabled=true --set exampleWorkerPool.enabled=true \
    --set image.pullPolicy=Never --wait --timeout 5m

echo "== sample Orchestration"
kubectl -n "$NAMESPACE" apply -f - <<'YAML'
apiVersion: duraflow.io/v1alpha1
kind: Orchestration
metadata:
  name: hello-e2e
spec:
  orchestration: Hello
  input: kind
YAML

deadline=$(( $(date +%s) + TIMEOUT ))
phase=""
while [ "$(date +%s)" -lt "$deadline" ]; do
    phase=$(kubectl -n "$NAMESPACE" get orch hello-e2e -o jsonpath='{.status.phase}' 2>/dev/null || true)
    case "$phase" in
        Completed) break ;;
        Failed|Canceled) die "hello-e2e ended $phase: $(kubectl -n "$NAMESPACE" get orch hello-e2e -o jsonpath='{.status.error}')" ;;
    esac
    sleep 2
done
[ "$phase" = Completed ] || die "hello-e2e not Completed after ${TIMEOUT}s (phase: '${phase:-none}')"

output=$(kubectl -n "$NAMESPACE" get orch hello-e2e -o jsonpath='{.status.output}')
echo "$output" | grep -q "Hello, kind!" || die "unexpected output: $output"

echo "== example WorkerPool: pods ready, its build promoted, scale subresource"
ready=""
build=""
while [ "$(date +%s)" -lt "$deadline" ]; do
    ready=$(kubectl -n "$NAMESPACE" get wp example -o jsonpath='{.status.ready}' 2>/dev/null || true)
    build=$(kubectl -n "$NAMESPACE" get wp example -o jsonpath='{.status.currentBuild}' 2>/dev/null || true)
    [ "$ready" = 1/1 ] && [ -n "$build" ] && break
    sleep 2
done
[ "$ready" = 1/1 ] && [ -n "$build" ] \
    || die "WorkerPool example not ready and promoted after ${TIMEOUT}s (ready: '${ready:-none}', build: '${build:-none}')"
kubectl -n "$NAMESPACE" get statefulset "example-$build" >/dev/null || die "no StatefulSet example-$build"
selector=$(kubectl -n "$NAMESPACE" get wp example --subresource=scale -o jsonpath='{.status.selector}')
[ "$selector" = "duraflow.io/workerpool=example,duraflow.io/build=$build" ] \
    || die "scale subresource selector: '$selector'"
if kubectl -n "$NAMESPACE" logs deploy/${RELEASE}-operator | grep -Ei 'forbidden|HTTP 40[13]' >&2; then
    die "the API server refused requests of the operator (above): the chart's RBAC lacks them"
fi
kubectl -n "$NAMESPACE" get orch,wp
echo "e2e-kind: OK"
