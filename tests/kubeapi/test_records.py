"""What the server records for assertions (user, User-Agent, fieldManager, the manager
kube-apiserver would name in managedFields, status code, write counts per object), and that
a kmock reaction a test sets answers instead of the server, without the write happening."""

from __future__ import annotations

import kmock

from tests.kubeapi.fixtures import StrictCluster
from tests.kubeapi.support import apps_path, cr_path, orchestration, pool, statefulset

PATH = cr_path("orchestrations")


async def test_requests_are_recorded_with_user_agent_and_field_manager(
        kube_cluster: StrictCluster) -> None:
    (await kube_cluster.admin.create(PATH, orchestration())).ok()
    await kube_cluster.operator.patch(cr_path("orchestrations", name="o1", sub="status"),
                                      {"status": {"phase": "Running"}},
                                      fieldManager="duraflow-operator")
    await kube_cluster.operator.get(PATH)
    await kube_cluster.operator.create(cr_path("workerpools"), pool("p2"))  # 403
    server = kube_cluster.server
    admin, = server.requests_of("admin")
    assert (admin.verb, admin.code, admin.user, admin.manager) == (
        "create", 201, None, "kubeapi-test")
    ops = server.requests_of(kube_cluster.operator_user)
    assert [(r.verb, r.subresource, r.code) for r in ops] == [
        ("patch", "status", 200), ("list", "", 200), ("create", "", 403)]
    assert ops[0].field_manager == "duraflow-operator" and ops[0].manager == "duraflow-operator"
    assert ops[1].user_agent == "duraflow-operator/test" and ops[1].manager == "duraflow-operator"
    assert server.writes_to("duraflow.io/v1alpha1/orchestrations", "ns1", "o1") == 2
    assert server.writes_to("workerpools", "ns1", "p2") == 0
    assert (admin.content_type, ops[0].content_type) == (
        "application/json", "application/merge-patch+json")


async def test_every_authorisation_decision_is_recorded_admission_included(
        kube_cluster: StrictCluster) -> None:
    """What a token's user needed, granted or not: the requests' own checks and those of
    OwnerReferencesPermissionEnforcement (a blocking owner reference needs update on the
    owner's finalizers)."""
    owner = (await kube_cluster.admin.create(cr_path("workerpools"), pool())).ok()
    ref = {"apiVersion": "duraflow.io/v1alpha1", "kind": "WorkerPool", "name": "workers",
           "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}
    child = statefulset("workers")
    child["metadata"]["ownerReferences"] = [ref]
    (await kube_cluster.operator.create(apps_path("statefulsets"), child)).ok()
    await kube_cluster.operator.create(cr_path("workerpools"), pool("p2"))  # 403
    seen = [(a.verb, a.group, a.resource, a.subresource, a.namespace, a.name, allowed)
            for a, allowed in kube_cluster.server.authorizations]
    assert seen == [
        ("create", "apps", "statefulsets", "", "ns1", "", True),
        ("update", "duraflow.io", "workerpools", "finalizers", "ns1", "workers", True),
        ("create", "duraflow.io", "workerpools", "", "ns1", "", False)]
    assert kube_cluster.server.requests_of("admin")  # no token: no decision recorded


async def test_a_kmock_reaction_answers_instead_and_nothing_is_written(
        kube_cluster: StrictCluster) -> None:
    (await kube_cluster.admin.create(PATH, orchestration())).ok()
    server = kube_cluster.server
    server["patch", kmock.subresource("status"), kmock.name("o1")][:1] << 500
    path = cr_path("orchestrations", name="o1", sub="status")
    failed = await kube_cluster.admin.patch(path, {"status": {"phase": "Running"}})
    assert failed.status == 500
    assert "status" not in server.objects["duraflow.io/v1alpha1/orchestrations", "ns1", "o1"]
    (await kube_cluster.admin.patch(path, {"status": {"phase": "Running"}})).ok()
    assert server.objects["orchestrations", "ns1", "o1"]["status"] == {"phase": "Running"}
    assert len(list(server["patch"])) == 2  # kmock's own request history still works


async def test_the_token_is_recorded_and_an_unknown_or_revoked_one_is_a_recorded_401(
        kube_cluster: StrictCluster) -> None:
    server = kube_cluster.server
    server.add_token("second", kube_cluster.operator_user)
    assert (await kube_cluster.client("second").get(PATH)).status == 200
    server.revoke_token("second")
    refused = await kube_cluster.client("second").get(PATH)
    assert (refused.status, refused.reason) == (401, "Unauthorized")
    assert [(r.token, r.user, r.code) for r in server.records] == [
        ("second", kube_cluster.operator_user, 200), ("second", None, 401)]
