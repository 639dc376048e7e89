"""Lists and watches: resourceVersions a watch can resume from, 410 Gone (``Expired``) once
the event window no longer has them, server-side label and field selectors (an object
leaving a watch's selector is DELETED for it), ``timeoutSeconds``, initial-events bookmark."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.kubeapi.fixtures import StrictCluster
from tests.kubeapi.support import cr_path, orchestration

PATH = cr_path("orchestrations")


def labelled(name: str, **labels: str) -> dict[str, Any]:
    body = orchestration(name)
    body["metadata"]["labels"] = labels
    return body


async def test_label_and_field_selectors_filter_lists(kube_cluster: StrictCluster) -> None:
    for name, labels in (("a", {"tier": "web", "env": "prod"}), ("b", {"tier": "db"}),
                         ("c", {"tier": "web", "env": "dev"}), ("d", {})):
        (await kube_cluster.admin.create(PATH, labelled(name, **labels))).ok()

    async def names(**params: str) -> list[str]:
        items = (await kube_cluster.admin.get(PATH, **params)).ok()["items"]
        return [i["metadata"]["name"] for i in items]

    assert await names(labelSelector="tier=web") == ["a", "c"]
    assert await names(labelSelector="tier=web,env!=prod") == ["c"]
    assert await names(labelSelector="tier in (db, cache)") == ["b"]
    assert await names(labelSelector="tier notin (web)") == ["b", "d"]
    assert await names(labelSelector="env") == ["a", "c"]
    assert await names(labelSelector="!tier") == ["d"]
    assert await names(fieldSelector="metadata.name=b") == ["b"]
    assert await names(fieldSelector="metadata.namespace=ns2") == []
    bad = await kube_cluster.admin.get(PATH, fieldSelector="spec.orchestration=Hello")
    assert (bad.status, bad.message) == (400, "field label not supported: spec.orchestration")
    everywhere = (await kube_cluster.admin.get("/apis/duraflow.io/v1alpha1/orchestrations"))
    assert len(everywhere.ok()["items"]) == 4


async def test_list_pages(kube_cluster: StrictCluster) -> None:
    for name in "abc":
        (await kube_cluster.admin.create(PATH, orchestration(name))).ok()
    first = (await kube_cluster.admin.get(PATH, limit="2")).ok()
    assert [i["metadata"]["name"] for i in first["items"]] == ["a", "b"]
    rest = (await kube_cluster.admin.get(PATH, limit="2",
                                         **{"continue": first["metadata"]["continue"]})).ok()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["c"]
    assert "continue" not in rest["metadata"]


async def test_watch_resumes_from_a_list_version(kube_cluster: StrictCluster) -> None:
    (await kube_cluster.admin.create(PATH, orchestration("a"))).ok()
    listed = (await kube_cluster.admin.get(PATH)).ok()
    (await kube_cluster.admin.create(PATH, orchestration("b"))).ok()
    await kube_cluster.admin.patch(cr_path("orchestrations", name="a"), {"spec": {"input": 1}})
    events = await kube_cluster.admin.watch(
        PATH, resourceVersion=listed["metadata"]["resourceVersion"],
        until=lambda e: len(e) >= 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"), ("MODIFIED", "a")]


async def test_too_old_resource_version_is_410_gone(strict_cluster_factory: Any) -> None:
    cluster = await strict_cluster_factory("admin", watch_window=3)
    for name in "abcde":
        (await cluster.admin.create(PATH, orchestration(name))).ok()
    events = await cluster.admin.watch(PATH, resourceVersion="1", until=lambda e: True)
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["code"], status["reason"]) == (410, "Expired")
    assert status["message"].startswith("too old resource version: 1 (")
    cluster.server.compact()
    latest = str(cluster.server.store.revision)
    assert (await cluster.admin.watch(PATH, resourceVersion=str(int(latest) - 1),
                                      until=lambda e: True))[0]["type"] == "ERROR"


async def test_watch_selector_transitions_and_timeout(kube_cluster: StrictCluster) -> None:
    (await kube_cluster.admin.create(PATH, labelled("a", tier="web"))).ok()

    async def changes() -> None:
        await asyncio.sleep(0.2)
        await kube_cluster.admin.patch(cr_path("orchestrations", name="a"),
                                       {"metadata": {"labels": {"tier": "db"}}})
        await kube_cluster.admin.patch(cr_path("orchestrations", name="a"),
                                       {"metadata": {"labels": {"tier": "web"}}})
        (await kube_cluster.admin.create(PATH, labelled("b", tier="db"))).ok()

    task = asyncio.create_task(changes())
    events = await kube_cluster.admin.watch(PATH, labelSelector="tier=web", timeoutSeconds="1",
                                            until=lambda e: False, timeout=5)
    await task
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "a"), ("DELETED", "a"), ("ADDED", "a")]


async def test_initial_events_end_with_a_bookmark(kube_cluster: StrictCluster) -> None:
    (await kube_cluster.admin.create(PATH, orchestration("a"))).ok()
    events = await kube_cluster.admin.watch(PATH, sendInitialEvents="true",
                                            resourceVersionMatch="NotOlderThan",
                                            until=lambda e: e[-1]["type"] == "BOOKMARK")
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"}


async def test_interrupted_watches_end_and_what_happened_meanwhile_is_not_sent(
        kube_cluster: StrictCluster) -> None:
    """``interrupt_watches``: a dropped connection. The stream ends; a client that comes back
    after the window was compacted gets 410 and must re-list (where a deletion that happened
    meanwhile shows only as a missing object)."""
    server = kube_cluster.server
    (await kube_cluster.admin.create(PATH, orchestration("gone"))).ok()
    listed = (await kube_cluster.admin.get(PATH)).ok()["metadata"]["resourceVersion"]
    watching = asyncio.ensure_future(kube_cluster.admin.watch(
        PATH, resourceVersion=listed, until=lambda e: False, timeout=5))
    while not server.store.watching("duraflow.io/v1alpha1/orchestrations"):
        await asyncio.sleep(0.01)
    server.interrupt_watches()
    (await kube_cluster.admin.delete(cr_path("orchestrations", name="gone"))).ok()
    assert await asyncio.wait_for(watching, 2) == []  # ended, the DELETED never sent
    server.compact()
    resumed = await kube_cluster.admin.watch(PATH, resourceVersion=listed, until=lambda e: True)
    assert resumed[0]["object"]["code"] == 410


async def test_a_watch_ends_when_its_client_leaves(kube_cluster: StrictCluster) -> None:
    """As kube-apiserver's: no handler is left waiting for events nobody reads."""
    server = kube_cluster.server
    key = "duraflow.io/v1alpha1/orchestrations"
    watching = asyncio.ensure_future(kube_cluster.admin.watch(PATH, until=lambda e: False,
                                                              timeout=30))
    while not server.store.watching(key):
        await asyncio.sleep(0.01)
    watching.cancel()  # the client goes away
    deadline = asyncio.get_running_loop().time() + 2
    while server.store.watching(key):
        assert asyncio.get_running_loop().time() < deadline, "the watch outlived its client"
        await asyncio.sleep(0.05)
