"""kopf (the operator's framework) runs against the strict server with the operator's token
and the chart's RBAC: discovery, list+watch with resourceVersions, its finalizer JSON patch
(``test`` on resourceVersion), status patches, Events and deletion all work as on a cluster.
Handlers here are trivial: the real operator's switch-over is separate (issue 22)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import kopf

from tests.kubeapi.fixtures import StrictCluster
from tests.kubeapi.support import cr_path, orchestration

FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"


async def eventually(predicate: Any, timeout: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_kopf_lifecycle_under_the_chart_rbac(rbac_cluster: StrictCluster) -> None:
    registry = kopf.OperatorRegistry()
    deleted: list[str] = []

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=rbac_cluster.url, token=rbac_cluster.operator_token,
                                   scheme="Bearer")

    @kopf.on.create("duraflow.io", "v1alpha1", "orchestrations", registry=registry)
    def created(patch: Any, **_: Any) -> None:
        patch.status["phase"] = "Running"

    @kopf.on.delete("duraflow.io", "v1alpha1", "orchestrations", registry=registry)
    def gone(name: str, **_: Any) -> None:
        deleted.append(name)

    settings = kopf.OperatorSettings()
    settings.scanning.disabled = True
    settings.persistence.finalizer = FINALIZER
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(kopf.operator(
        registry=registry, settings=settings, standalone=True, namespaces=["ns1"],
        stop_flag=stop, ready_flag=ready))
    server = rbac_cluster.server
    try:
        await asyncio.wait_for(ready.wait(), 15)
        await eventually(lambda: server.requests_of(rbac_cluster.operator_user, verb="watch",
                                                    resource="orchestrations"))
        (await rbac_cluster.admin.create(cr_path("orchestrations"), orchestration())).ok()
        key = ("duraflow.io/v1alpha1/orchestrations", "ns1", "o1")
        await eventually(lambda: (server.objects[key].get("status") or {}).get("phase")
                         == "Running")
        assert server.objects[key]["metadata"]["finalizers"] == [FINALIZER]
        await rbac_cluster.admin.delete(cr_path("orchestrations", name="o1"))
        await eventually(lambda: key not in server.objects)
        assert deleted == ["o1"]
        refused = [r for r in server.requests_of(rbac_cluster.operator_user)
                   if r.code >= 400 and r.code != 422]
        assert refused == []  # 422s are kopf's own optimistic-concurrency retries
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
