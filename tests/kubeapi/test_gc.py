"""Garbage collection: dependents (``ownerReferences`` by uid) follow their owner's
deletion (background by default, ``Orphan`` and ``Foreground`` on request), and finalizers
hold owners and dependents alike."""

from __future__ import annotations

from typing import Any

from tests.kubeapi.fixtures import StrictCluster
from tests.kubeapi.support import core_path, cr_path, pool

POOL = cr_path("workerpools", name="workers")


def child(name: str, owner: dict[str, Any], finalizers: list[str] | None = None,
          block: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "ownerReferences": [{
        "apiVersion": "duraflow.io/v1alpha1", "kind": "WorkerPool",
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": True, "blockOwnerDeletion": block}]}
    if finalizers:
        meta["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"a": "b"}}


async def _setup(cluster: StrictCluster, **child_kw: Any) -> Any:
    owner = (await cluster.admin.create(cr_path("workerpools"), pool("workers"))).ok()
    (await cluster.admin.create(core_path("configmaps"), child("c1", owner, **child_kw))).ok()
    return owner


async def _names(cluster: StrictCluster) -> set[str]:
    await cluster.server.gc.idle()
    items = (await cluster.admin.get(core_path("configmaps"))).ok()["items"]
    return {i["metadata"]["name"] for i in items}


async def test_background_deletion_removes_dependents(kube_cluster: StrictCluster) -> None:
    await _setup(kube_cluster)
    await kube_cluster.admin.delete(POOL)
    assert await _names(kube_cluster) == set()


async def test_finalizers_hold_the_owner_and_the_dependent(kube_cluster: StrictCluster) -> None:
    await _setup(kube_cluster, finalizers=["example.com/hold"])
    await kube_cluster.admin.patch(POOL, {"metadata": {"finalizers": ["duraflow.io/x"]}})
    await kube_cluster.admin.delete(POOL)
    assert await _names(kube_cluster) == {"c1"}  # the owner is only marked: nothing happens
    await kube_cluster.admin.patch(POOL, {"metadata": {"finalizers": None}})
    assert await _names(kube_cluster) == {"c1"}  # the dependent is marked, held
    c1 = (await kube_cluster.admin.get(core_path("configmaps", name="c1"))).ok()
    assert c1["metadata"]["deletionTimestamp"]
    await kube_cluster.admin.patch(core_path("configmaps", name="c1"),
                                   {"metadata": {"finalizers": None}})
    assert await _names(kube_cluster) == set()


async def test_orphan_keeps_dependents_without_the_reference(
        kube_cluster: StrictCluster) -> None:
    await _setup(kube_cluster)
    await kube_cluster.admin.delete(POOL, {"propagationPolicy": "Orphan"})
    assert await _names(kube_cluster) == {"c1"}
    c1 = (await kube_cluster.admin.get(core_path("configmaps", name="c1"))).ok()
    assert "ownerReferences" not in c1["metadata"]
    assert (await kube_cluster.admin.get(POOL)).status == 404


async def test_foreground_deletes_dependents_first(kube_cluster: StrictCluster) -> None:
    await _setup(kube_cluster, finalizers=["example.com/hold"])
    marked = (await kube_cluster.admin.delete(POOL, propagationPolicy="Foreground")).ok()
    assert marked["metadata"]["finalizers"] == ["foregroundDeletion"]
    await kube_cluster.server.gc.idle()
    assert (await kube_cluster.admin.get(POOL)).status == 200  # waits for c1
    await kube_cluster.admin.patch(core_path("configmaps", name="c1"),
                                   {"metadata": {"finalizers": None}})
    assert await _names(kube_cluster) == set()
    assert (await kube_cluster.admin.get(POOL)).status == 404


async def test_a_dependent_of_a_missing_owner_is_collected(kube_cluster: StrictCluster) -> None:
    ghost = {"metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000000"}}
    (await kube_cluster.admin.create(core_path("configmaps"), child("c2", ghost))).ok()
    assert await _names(kube_cluster) == set()


async def test_a_dependent_with_another_live_owner_only_loses_the_reference(
        kube_cluster: StrictCluster) -> None:
    owner = await _setup(kube_cluster)
    other = (await kube_cluster.admin.create(cr_path("workerpools"), pool("other"))).ok()
    both = child("c3", owner)
    both["metadata"]["ownerReferences"].append({**both["metadata"]["ownerReferences"][0],
                                                "name": "other", "controller": False,
                                                "uid": other["metadata"]["uid"]})
    (await kube_cluster.admin.create(core_path("configmaps"), both)).ok()
    await kube_cluster.admin.delete(POOL)
    assert await _names(kube_cluster) == {"c3"}
    c3 = (await kube_cluster.admin.get(core_path("configmaps", name="c3"))).ok()
    assert [r["name"] for r in c3["metadata"]["ownerReferences"]] == ["other"]
