"""The chart's RBAC grants exactly what the operator uses: every request the operator makes
in a scenario that exercises all its paths (kopf's and its own), plus what the
OwnerReferencesPermissionEnforcement admission plugin checks besides the request itself,
equals the rules of the chart's ClusterRole. A permission the operator needs and lacks is a
403 on a real cluster; one it never uses is attack surface."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.support import render

from .conftest import NS, Operators, eventually
from .k8s import Kubectl, exists
from .test_workerpool import SPEC

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

VERBS = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}


def _owner_plural(ref: dict[str, Any]) -> tuple[str, str]:
    return ref["apiVersion"].rpartition("/")[0], ref["kind"].lower() + "s"


def permissions(requests: list[Any]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource[/subresource], verb) each request needs, admission included."""
    needed: set[tuple[str, str, str]] = set()
    for request in requests:
        if request.resource is None or not request.resource.plural:
            continue  # discovery: open to every authenticated user
        group = request.resource.group or ""
        resource = request.resource.plural
        if request.subresource:
            resource += "/" + request.subresource
        method = request.method.value
        if method == "GET":
            verb = "get" if request.name else request.action.value.lower()
        else:
            verb = VERBS[method]
        needed.add((group, resource, verb))
        data = request.data if isinstance(request.data, dict) else {}
        refs = (data.get("metadata") or {}).get("ownerReferences")
        if refs and method in ("POST", "PATCH", "PUT"):
            # OwnerReferencesPermissionEnforcement: changing ownerReferences of an existing
            # object needs "delete" on it; a blocking reference needs "update" on the
            # owner's finalizers.
            if method != "POST":
                needed.add((group, resource, "delete"))
            for ref in refs:
                if ref.get("blockOwnerDeletion"):
                    owner_group, owner = _owner_plural(ref)
                    needed.add((owner_group, f"{owner}/finalizers", "update"))
    return needed


def _granted(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"]
            for r in rule["resources"] for v in rule["verbs"]}


async def test_the_chart_grants_exactly_what_the_operator_uses(
    cluster: Any, operators: Operators
) -> None:
    await operators.start(leader_election=True, lease_namespace=NS, identity="op",
                          lease_duration_s=1.5, lease_renew_deadline_s=1.0, lease_renew_s=0.2,
                          pool_resync_s=0.3)
    kubectl = Kubectl(cluster)
    # Orchestrations: start, follow, complete, raise, delete (finalizer), a status write the
    # API server refuses once (the status loop then re-reads the CR).
    cluster.refuse("PATCH", "orchestrations", 422, "Invalid", "stale", subresource="status",
                   content_type="application/json-patch+json")
    await kubectl.apply_orchestration("used", {"orchestration": "Hello", "input": "x"})
    await eventually(lambda: kubectl.status("used").get("phase") == "Completed", timeout=30)
    await kubectl.apply_orchestration("asked", {"orchestration": "Approval", "events": []})
    await eventually(lambda: kubectl.status("asked").get("customStatus"))
    await kubectl.json_patch(kubectl.path("orchestrations", "asked"), [
        {"op": "add", "path": "/spec/events/-", "value": {"name": "approve", "data": 1}}])
    await eventually(lambda: kubectl.status("asked").get("phase") == "Completed")
    await kubectl.delete(kubectl.path("orchestrations", "asked"))
    await eventually(lambda: kubectl.gone("asked"))
    # WorkerPools: children created, one adopted, one updated; readiness followed.
    orphan = {"apiVersion": "v1", "kind": "Service",
              "metadata": {"name": "rbac", "namespace": NS},
              "spec": {"clusterIP": "None", "ports": [{"port": 9464}]}}
    await kubectl.create("/api/v1/namespaces/ns1/services", orphan)
    await kubectl.apply_pool("rbac", SPEC)
    await kubectl.apply_pool("fresh", SPEC)
    for name in ("rbac", "fresh"):
        await eventually(lambda n=name: exists(cluster, "policy/v1/poddisruptionbudgets", NS, n))
    await kubectl.merge_patch(kubectl.path("workerpools", "rbac"),
                              {"spec": {"replicas": 3, "maxUnavailable": 2}})
    sts = lambda: cluster.objects["apps/v1/statefulsets", NS, "rbac"]  # noqa: E731
    pdb = lambda: cluster.objects["policy/v1/poddisruptionbudgets", NS, "rbac"]  # noqa: E731
    await eventually(lambda: sts()["spec"]["replicas"] == 3)
    await eventually(lambda: pdb()["spec"]["maxUnavailable"] == 2)
    await kubectl.merge_patch("/apis/apps/v1/namespaces/ns1/statefulsets/rbac/status",
                              {"status": {"replicas": 3, "readyReplicas": 3}})
    pool = lambda: cluster.objects["duraflow.io/v1alpha1/workerpools", NS, "rbac"]  # noqa: E731
    await eventually(lambda: pool()["status"]["ready"] == "3/3")

    mine = [r for r in cluster
            if r.headers.get("User-Agent", "").startswith("duraflow-operator/")]
    used = permissions(mine)
    (cluster_role,) = [d for d in render({}) if d["kind"] == "ClusterRole"]
    granted = _granted(cluster_role)
    assert sorted(used - granted) == [], "used but not granted"
    assert sorted(granted - used) == [], f"granted but never used: {sorted(granted - used)}"
