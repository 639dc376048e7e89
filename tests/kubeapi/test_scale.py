"""The scale subresource: an ``autoscaling/v1`` Scale read from and written to the replicas
paths the CRD declares, with ``status.selector`` only where a ``labelSelectorPath`` gives
one (the project's WorkerPool CRD has none today: issue 22, finding 6)."""

from __future__ import annotations

import copy

from tests.kubeapi.fixtures import JSON_PATCH, StrictCluster, project_crds
from tests.kubeapi.support import apps_path, cr_path, pool, statefulset

SCALE = cr_path("workerpools", name="workers", sub="scale")


async def test_get_patch_and_put_scale(kube_cluster: StrictCluster) -> None:
    created = (await kube_cluster.admin.create(cr_path("workerpools"), pool("workers"))).ok()
    await kube_cluster.admin.patch(cr_path("workerpools", name="workers", sub="status"),
                                   {"status": {"replicas": 1}})
    scale = (await kube_cluster.admin.get(SCALE)).ok()
    assert scale == {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {
        "name": "workers", "namespace": "ns1", "uid": created["metadata"]["uid"],
        "resourceVersion": scale["metadata"]["resourceVersion"],
        "creationTimestamp": created["metadata"]["creationTimestamp"]},
        "spec": {"replicas": 1}, "status": {"replicas": 1}}  # no selector: no path
    patched = (await kube_cluster.admin.patch(SCALE, {"spec": {"replicas": 3}})).ok()
    assert patched["spec"]["replicas"] == 3
    pool_now = (await kube_cluster.admin.get(cr_path("workerpools", name="workers"))).ok()
    assert pool_now["spec"]["replicas"] == 3 and pool_now["metadata"]["generation"] == 2
    replaced = (await kube_cluster.admin.replace(SCALE, {**patched, "spec": {"replicas": 4}}))
    assert replaced.ok()["spec"]["replicas"] == 4
    stale = await kube_cluster.admin.replace(SCALE, {**patched, "spec": {"replicas": 5}})
    assert stale.status == 409
    ops = [{"op": "replace", "path": "/spec/replicas", "value": 2}]
    assert (await kube_cluster.admin.patch(SCALE, ops, JSON_PATCH)).ok()["spec"]["replicas"] == 2


async def test_scale_goes_through_the_crd_schema(kube_cluster: StrictCluster) -> None:
    (await kube_cluster.admin.create(cr_path("workerpools"), pool("workers"))).ok()
    too_many = await kube_cluster.admin.patch(SCALE, {"spec": {"replicas": 5000}})
    assert too_many.status == 422
    assert too_many.message == ('WorkerPool.duraflow.io "workers" is invalid: spec.replicas: '
                                'Invalid value: 5000: spec.replicas in body should be less than '
                                'or equal to 1000')
    negative = await kube_cluster.admin.patch(SCALE, {"spec": {"replicas": -1}})
    assert negative.message == ('Scale.autoscaling "workers" is invalid: spec.replicas: Invalid '
                                'value: -1: must be greater than or equal to 0')


async def test_label_selector_path_feeds_status_selector(strict_cluster_factory: object) -> None:
    crds = project_crds()
    pools = next(c for c in crds if c["spec"]["names"]["kind"] == "WorkerPool")
    version = pools["spec"]["versions"][0]
    version["subresources"]["scale"]["labelSelectorPath"] = ".status.selector"
    version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["selector"] = {
        "type": "string"}
    cluster = await strict_cluster_factory("admin", crds=copy.deepcopy(crds))  # type: ignore[operator]
    (await cluster.admin.create(cr_path("workerpools"), pool("workers"))).ok()
    await cluster.admin.patch(cr_path("workerpools", name="workers", sub="status"),
                              {"status": {"selector": "duraflow.io/workerpool=workers"}})
    scale = (await cluster.admin.get(SCALE)).ok()
    assert scale["status"]["selector"] == "duraflow.io/workerpool=workers"


async def test_statefulset_scale(kube_cluster: StrictCluster) -> None:
    (await kube_cluster.admin.create(apps_path("statefulsets"), statefulset())).ok()
    scale = (await kube_cluster.admin.get(apps_path("statefulsets", name="web",
                                                    sub="scale"))).ok()
    assert scale["spec"] == {"replicas": 1}
    assert scale["status"] == {"replicas": 0, "selector": "app=web"}
