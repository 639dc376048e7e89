"""RBAC for token-bearing requests, against the Helm chart's rendered roles in both watch
modes, and the OwnerReferencesPermissionEnforcement admission plugin: what is not granted
is a 403 worded as kube-apiserver words it. Requests without a token (the test's admin) are
allowed everything."""

from __future__ import annotations

from typing import Any

from duraflow_operator.manifests import service, stateful_set
from duraflow_operator.spec import parse_worker_pool

from tests.kubeapi.fixtures import StrictCluster, chart_rbac, strict_cluster
from tests.kubeapi.support import apps_path, core_path, cr_path, orchestration, pool


def forbidden(cluster: StrictCluster, verb: str, resource: str, group: str,
              namespace: str | None) -> str:
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return (f'User "{cluster.operator_user}" cannot {verb} resource "{resource}" in API group '
            f'"{group}" {where}')


async def test_what_the_chart_grants_is_allowed(rbac_cluster: StrictCluster) -> None:
    op = rbac_cluster.operator
    (await rbac_cluster.admin.create(cr_path("orchestrations"), orchestration())).ok()
    assert (await op.get(cr_path("orchestrations"))).status == 200
    assert (await op.patch(cr_path("orchestrations", name="o1", sub="status"),
                           {"status": {"phase": "Running"}})).status == 200
    assert (await op.get("/apis/duraflow.io/v1alpha1")).status == 200  # discovery
    lease_ns = rbac_cluster.release_namespace
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "duraflow-operator"}, "spec": {"holderIdentity": "a"}}
    assert (await op.create(f"/apis/coordination.k8s.io/v1/namespaces/{lease_ns}/leases",
                            lease)).status == 201


async def test_what_it_does_not_grant_is_403(rbac_cluster: StrictCluster) -> None:
    op = rbac_cluster.operator
    # (the operator creates Orchestrations, the runs of a schedule, but never a WorkerPool)
    create = await op.create(cr_path("workerpools"), pool("q"))
    assert (create.status, create.reason) == (403, "Forbidden")
    assert create.message == ("workerpools.duraflow.io is forbidden: " + forbidden(
        rbac_cluster, "create", "workerpools", "duraflow.io", "ns1"))
    assert create.body["details"] == {"group": "duraflow.io", "kind": "workerpools"}
    (await rbac_cluster.admin.create(cr_path("workerpools"), pool("p"))).ok()
    delete = await op.delete(cr_path("workerpools", name="p"))
    assert delete.message == ('workerpools.duraflow.io "p" is forbidden: ' + forbidden(
        rbac_cluster, "delete", "workerpools", "duraflow.io", "ns1"))
    scale = await op.patch(cr_path("workerpools", name="p", sub="scale"),
                           {"spec": {"replicas": 2}})
    assert scale.message == ('workerpools.duraflow.io "p" is forbidden: ' + forbidden(
        rbac_cluster, "patch", "workerpools/scale", "duraflow.io", "ns1"))
    namespaces = await op.get("/api/v1/namespaces")  # kopf with scanning off never lists
    assert namespaces.message == "namespaces is forbidden: " + forbidden(
        rbac_cluster, "list", "namespaces", "", None)
    secrets = await op.get(core_path("secrets", name="db"))
    assert secrets.message == ('secrets "db" is forbidden: ' + forbidden(
        rbac_cluster, "get", "secrets", "", "ns1"))
    assert rbac_cluster.server.store.get("duraflow.io/v1alpha1/workerpools", "ns1", "p")


async def test_namespaced_mode_grants_only_the_watched_namespaces(
        strict_cluster_factory: Any) -> None:
    cluster = await strict_cluster_factory("namespaced")
    op = cluster.operator
    other = await op.get(cr_path("orchestrations", namespace="ns2"))
    assert other.message == "orchestrations.duraflow.io is forbidden: " + forbidden(
        cluster, "list", "orchestrations", "duraflow.io", "ns2")
    everywhere = await op.get("/apis/duraflow.io/v1alpha1/orchestrations", watch="true")
    assert everywhere.message == "orchestrations.duraflow.io is forbidden: " + forbidden(
        cluster, "watch", "orchestrations", "duraflow.io", None)
    lease = await op.get("/apis/coordination.k8s.io/v1/namespaces/ns1/leases/x")
    assert lease.status == 403  # the Lease Role is in the release namespace only
    cluster_wide = await strict_cluster_factory("cluster-wide")
    assert (await cluster_wide.operator.get(
        "/apis/duraflow.io/v1alpha1/orchestrations")).status == 200


async def test_unknown_token_is_401_and_no_token_is_admin(kube_cluster: StrictCluster) -> None:
    answer = await kube_cluster.client("wrong").get(cr_path("orchestrations"))
    assert (answer.status, answer.reason, answer.message) == (401, "Unauthorized",
                                                              "Unauthorized")
    assert (await kube_cluster.admin.create(core_path("secrets"), {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
        "stringData": {"url": "x"}})).status == 201


async def _pool_body(cluster: StrictCluster) -> Any:
    return (await cluster.admin.create(cr_path("workerpools"), pool("workers"))).ok()


async def test_the_operators_children_pass_owner_reference_enforcement(
        rbac_cluster: StrictCluster) -> None:
    """Issue 22, finding 1: the children set blockOwnerDeletion, which needs update on
    workerpools/finalizers; the chart grants it (it did not: every child create was a 403)."""
    body = await _pool_body(rbac_cluster)
    sts = stateful_set(body, parse_worker_pool(body["spec"]))
    assert (await rbac_cluster.operator.create(apps_path("statefulsets"), sts)).status == 201
    svc = await rbac_cluster.operator.create(core_path("services"), service(body))
    assert svc.status == 201


async def test_block_owner_deletion_without_the_finalizers_grant_is_refused() -> None:
    async with strict_cluster("cluster-wide") as cluster:
        objects = chart_rbac("cluster-wide")[0]
        for rule in [r for o in objects for r in o.get("rules", [])]:
            if "workerpools/finalizers" in rule["resources"]:
                rule["resources"].remove("workerpools/finalizers")
        cluster.server.load_rbac(objects)
        body = await _pool_body(cluster)
        sts = stateful_set(body, parse_worker_pool(body["spec"]))
        answer = await cluster.operator.create(apps_path("statefulsets"), sts)
        assert (answer.status, answer.reason) == (403, "Forbidden")
        assert answer.message == (
            'statefulsets.apps "workers" is forbidden: cannot set blockOwnerDeletion if an '
            "ownerReference refers to a resource you can't set finalizers on: , <nil>")
        assert (await cluster.admin.create(apps_path("statefulsets"), sts)).status == 201


async def test_granting_the_finalizers_subresource_lets_it_through() -> None:
    extra = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
              "metadata": {"name": "finalizers"},
              "rules": [{"apiGroups": ["duraflow.io"], "resources": ["workerpools/finalizers"],
                         "verbs": ["update"]}]},
             {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
              "metadata": {"name": "finalizers"},
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                          "name": "finalizers"},
              "subjects": [{"kind": "ServiceAccount", "name": "demo-duraflow-operator",
                            "namespace": "duraflow-system"}]}]
    async with strict_cluster("cluster-wide") as cluster:
        cluster.server.load_rbac(chart_rbac("cluster-wide")[0] + extra)
        body = await _pool_body(cluster)
        sts = stateful_set(body, parse_worker_pool(body["spec"]))
        assert (await cluster.operator.create(apps_path("statefulsets"), sts)).status == 201


async def test_adopting_an_existing_object_needs_delete_on_it(
        strict_cluster_factory: Any) -> None:
    reference: dict[str, Any] = {}

    async def adopt(cluster: StrictCluster) -> Any:
        body = await _pool_body(cluster)
        orphan = service(body)
        del orphan["metadata"]["ownerReferences"]
        (await cluster.admin.create(core_path("services"), orphan)).ok()
        reference.update({"apiVersion": "duraflow.io/v1alpha1", "kind": "WorkerPool",
                          "name": "workers", "uid": body["metadata"]["uid"],
                          "controller": True})
        return await cluster.operator.patch(core_path("services", name="workers"), {
            "metadata": {"ownerReferences": [reference]}})

    granted = await strict_cluster_factory("cluster-wide")  # the chart grants delete
    assert (await adopt(granted)).status == 200
    without = await strict_cluster_factory("cluster-wide")
    objects = chart_rbac("cluster-wide")[0]
    for rule in [r for o in objects for r in o.get("rules", [])]:
        if "services" in rule["resources"] and "delete" in rule["verbs"]:
            rule["verbs"].remove("delete")
    without.server.load_rbac(objects)
    answer = await adopt(without)
    assert (answer.status, answer.message) == (403, (
        'services "workers" is forbidden: cannot set an ownerRef on a resource you can\'t '
        'delete: , <nil>'))


async def test_resource_names_restrict_a_rule() -> None:
    objects = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "one", "namespace": "ns1"},
                "rules": [{"apiGroups": ["duraflow.io"], "resources": ["orchestrations"],
                           "verbs": ["get", "patch"], "resourceNames": ["o1"]}]},
               {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "one", "namespace": "ns1"},
                "roleRef": {"kind": "Role", "name": "one"},
                "subjects": [{"kind": "User", "name": "jane"}]}]
    async with strict_cluster("admin") as cluster:
        cluster.server.load_rbac(objects)
        cluster.server.add_token("jane-token", "jane")
        for name in ("o1", "o2"):
            (await cluster.admin.create(cr_path("orchestrations"), orchestration(name))).ok()
        jane = cluster.client("jane-token")
        assert (await jane.get(cr_path("orchestrations", name="o1"))).status == 200
        assert (await jane.get(cr_path("orchestrations", name="o2"))).status == 403
        listed = await jane.get(cr_path("orchestrations"))
        assert listed.message == ('orchestrations.duraflow.io is forbidden: User "jane" cannot '
                                  'list resource "orchestrations" in API group "duraflow.io" in '
                                  'the namespace "ns1"')
