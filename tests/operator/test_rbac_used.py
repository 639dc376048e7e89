"""The chart's RBAC grants exactly what the operator uses, in both watch modes. The strict API
server authorises every request the operator makes against the chart's rendered roles, and
records each decision, the OwnerReferencesPermissionEnforcement admission plugin's included
(a blocking owner reference needs ``update`` on the owner's ``finalizers``; rewriting an
object's owner references needs ``delete`` on it). In a scenario that takes all the
operator's paths (kopf's and its own), what it needed equals what the chart grants, role by
role: a permission the operator needs and lacks is a 403 on a real cluster; one it never
uses is attack surface."""

from __future__ import annotations

from typing import Any

import kmock
import pytest

from tests.kubeapi.fixtures import StrictCluster, chart_rbac

from .conftest import NS, Operators, eventually
from .k8s import Kubectl
from .test_workerpool import SPEC, sts_name

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

Permission = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)


def _granted(role: dict[str, Any]) -> set[Permission]:
    return {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"]
            for r in rule["resources"] for v in rule["verbs"]}


def granted_by_scope(mode: str) -> dict[str, set[Permission]]:
    """The chart's grants by where they apply: ``"*"`` for a ClusterRole (bound cluster-wide),
    else the Role's namespace."""
    objects = chart_rbac(mode)[0]
    out: dict[str, set[Permission]] = {}
    for role in objects:
        if role["kind"] in ("Role", "ClusterRole"):
            scope = role["metadata"].get("namespace", "*") if role["kind"] == "Role" else "*"
            out.setdefault(scope, set()).update(_granted(role))
    return out


def used_by_scope(cluster: StrictCluster, mode: str) -> dict[str, set[Permission]]:
    """What the operator needed, by namespace (``"*"`` for all of them, cluster-wide)."""
    out: dict[str, set[Permission]] = {}
    for attributes, _ in cluster.server.authorizations:
        if attributes.user.name != cluster.operator_user:
            continue
        resource = attributes.resource
        if attributes.subresource:
            resource += "/" + attributes.subresource
        scope = "*" if mode == "cluster-wide" else attributes.namespace or "(cluster)"
        out.setdefault(scope, set()).add((attributes.group, resource, attributes.verb))
    return out


async def test_the_chart_grants_exactly_what_the_operator_uses(
    cluster: StrictCluster, operators: Operators, watch_mode: str
) -> None:
    await operators.start(leader_election=True, identity="op", lease_duration_s=1.5,
                          lease_renew_deadline_s=1.0, lease_renew_s=0.2, pool_resync_s=0.3)
    kubectl = Kubectl(cluster)
    # Orchestrations: start, follow, complete, raise, delete (finalizer), a status write the
    # API server refuses once (the status loop then re-reads the CR).
    refused = kmock.Response(status=422, payload={
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Invalid",
        "code": 422, "message": "the server rejected our request: stale"})
    cluster.server["patch", kmock.subresource("status"), kmock.name("used"),
                   kmock.headers({"Content-Type": "application/json-patch+json"})][:1] << refused
    await kubectl.apply_orchestration("used", {"orchestration": "Hello", "input": "x"})
    await eventually(lambda: kubectl.status("used").get("phase") == "Completed", timeout=30)
    await kubectl.apply_orchestration("asked", {"orchestration": "Approval", "events": []})
    await eventually(lambda: kubectl.status("asked").get("customStatus"))
    await kubectl.json_patch(kubectl.path("orchestrations", "asked"), [
        {"op": "add", "path": "/spec/events/-", "value": {"name": "approve", "data": 1}}])
    await eventually(lambda: kubectl.status("asked").get("phase") == "Completed")
    await kubectl.delete(kubectl.path("orchestrations", "asked"))
    await eventually(lambda: kubectl.gone("asked"))
    # An OrchestrationSchedule: its finalizer, status, runs created (owned, blocking the
    # owner's deletion) and deleted beyond the history limit, and its deletion.
    await kubectl.create(kubectl.path("orchestrationschedules"), {
        "apiVersion": "duraflow.io/v1alpha1", "kind": "OrchestrationSchedule",
        "metadata": {"name": "every", "namespace": NS},
        "spec": {"schedule": "@every 1s", "orchestration": "Hello",
                 "successfulRunsHistoryLimit": 0}})
    schedules = "duraflow.io/v1alpha1/orchestrationschedules"
    await eventually(lambda: any(r.resource == "orchestrations" and r.verb == "delete"
                                 for r in kubectl.operator_requests()), timeout=30,
                     message="a run beyond the history limit deleted")
    await kubectl.delete(kubectl.path("orchestrationschedules", "every"))
    await eventually(lambda: not kubectl.exists(schedules, "every"))
    # WorkerPools: children created; adopted (a pool deleted with --cascade=orphan and
    # applied again); updated; readiness followed.
    children = ("apps/v1/statefulsets", "v1/services", "policy/v1/poddisruptionbudgets")
    revision = sts_name("rbac")

    def owner(name: str, resource: str) -> Any:
        name = revision if resource == "apps/v1/statefulsets" else name
        return kubectl.obj(resource, name)["metadata"].get("ownerReferences")

    await kubectl.apply_pool("rbac", SPEC)
    await eventually(lambda: all(owner("rbac", r) for r in children))
    orphaned = await cluster.admin.delete(kubectl.path("workerpools", "rbac"),
                                          propagationPolicy="Orphan")
    assert orphaned.status == 200
    await eventually(lambda: not kubectl.exists("duraflow.io/v1alpha1/workerpools", "rbac")
                     and not any(owner("rbac", r) for r in children))
    again = await kubectl.apply_pool("rbac", SPEC)
    await eventually(lambda: all((owner("rbac", r) or [{}])[0].get("uid")
                                 == again["metadata"]["uid"] for r in children))
    await kubectl.apply_pool("fresh", SPEC)
    await eventually(lambda: kubectl.exists("policy/v1/poddisruptionbudgets", "fresh"))
    await kubectl.merge_patch(kubectl.path("workerpools", "rbac"),
                              {"spec": {"replicas": 3, "maxUnavailable": 2}})
    sts = lambda: kubectl.obj("apps/v1/statefulsets", revision)  # noqa: E731
    pdb = lambda: kubectl.obj("policy/v1/poddisruptionbudgets", "rbac")  # noqa: E731
    await eventually(lambda: sts()["spec"]["replicas"] == 3)
    await eventually(lambda: pdb()["spec"]["maxUnavailable"] == 2)
    await kubectl.merge_patch(f"/apis/apps/v1/namespaces/ns1/statefulsets/{revision}/status",
                              {"status": {"replicas": 3, "readyReplicas": 3}})
    await eventually(lambda: kubectl.pool("rbac")["status"]["ready"] == "3/3")
    assert any(r.resource == "orchestrations" and r.verb == "get"
               for r in kubectl.operator_requests()), "the status loop re-read a CR"

    used = used_by_scope(cluster, watch_mode)
    granted = granted_by_scope(watch_mode)
    assert sorted(used) == sorted(granted)  # the same namespaces (or cluster-wide)
    for scope, grants in granted.items():
        assert sorted(used[scope] - grants) == [], f"used but not granted in {scope}"
        assert sorted(grants - used[scope]) == [], f"granted but never used in {scope}"
    if watch_mode == "namespaced":
        assert set(granted) == {NS, cluster.release_namespace}  # Roles only
