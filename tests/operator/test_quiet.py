"""Nothing changed, nothing written: a restarted operator, or an edit that touches no spec,
costs reads only (every write is an etcd write and a watch event for every watcher)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .conftest import NS, Operators, eventually
from .k8s import USER_AGENT, Kubectl, exists
from .test_workerpool import SPEC

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# Quantities as people write them; the API server stores them canonically (1, 1Gi, 500m).
RESOURCES = {"requests": {"cpu": 1, "memory": "1024Mi"}, "limits": {"cpu": 0.5, "memory": "1.5Gi"}}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _writes(cluster: Any, since: int) -> list[str]:
    """The operator's writes (the test's own carry the User-Agent kubectl/test)."""
    return [f"{r.method.value} {r.url.path} {str(r.data)[:300]}" for r in list(cluster)[since:]
            if r.method.value in WRITES and r.headers.get("User-Agent") != USER_AGENT]


async def _settled(cluster: Any, seconds: float = 1.5) -> int:
    """Wait until no write happened for ``seconds``; the number of requests so far."""
    count = -1
    while True:
        seen = len(list(cluster))
        writes_before = len(_writes(cluster, 0))
        await asyncio.sleep(seconds)
        if len(_writes(cluster, 0)) == writes_before and count == seen:
            return len(list(cluster))
        count = len(list(cluster))


async def test_quantities_read_back_canonical_are_not_drift(
    cluster: Any, operators: Operators
) -> None:
    """The API server stores 1024Mi as 1Gi and cpu: 1 as "1": a restarted operator compares
    what it reads back with what it would send, and must not patch the StatefulSet."""
    await operators.start()
    kubectl = Kubectl(cluster)
    await kubectl.apply_pool("sized", {**SPEC, "resources": RESOURCES})
    await eventually(lambda: exists(cluster, "v1/services", NS, "sized"))
    sts = cluster.objects["apps/v1/statefulsets", NS, "sized"]
    stored = sts["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert stored == {"requests": {"cpu": "1", "memory": "1Gi"},
                      "limits": {"cpu": "500m", "memory": "1536Mi"}}
    await _settled(cluster)
    await operators.stop()
    mark = len(list(cluster))
    await operators.start()
    await _settled(cluster)
    assert not [w for w in _writes(cluster, mark) if "statefulsets" in w]
    assert "StatefulSetUpdated" not in kubectl.reasons("sized")


async def test_a_restart_and_an_unrelated_edit_write_nothing(
    cluster: Any, operators: Operators
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    await kubectl.apply_pool("quiet", {**SPEC, "resources": RESOURCES})
    await kubectl.apply_orchestration("done", {"orchestration": "Hello", "input": "q"})
    await eventually(lambda: kubectl.status("done").get("phase") == "Completed")
    pool = lambda: cluster.objects["duraflow.io/v1alpha1/workerpools", NS, "quiet"]  # noqa: E731
    await eventually(lambda: pool()["status"].get("liveWorkers") == 0)
    await kubectl.merge_patch("/apis/apps/v1/namespaces/ns1/statefulsets/quiet/status",
                              {"status": {"replicas": 2, "readyReplicas": 2}})
    await eventually(lambda: pool()["status"]["ready"] == "2/2")
    await _settled(cluster)

    await operators.stop()
    mark = len(list(cluster))
    await operators.start()
    await _settled(cluster)
    assert _writes(cluster, mark) == [], "\n".join(_writes(cluster, mark))

    mark = len(list(cluster))
    await kubectl.merge_patch(kubectl.path("workerpools", "quiet"),
                              {"metadata": {"labels": {"team": "a"}}})
    await kubectl.merge_patch(kubectl.path("orchestrations", "done"),
                              {"metadata": {"annotations": {"note": "x"}}})
    await _settled(cluster)
    assert _writes(cluster, mark) == [], "\n".join(_writes(cluster, mark))
