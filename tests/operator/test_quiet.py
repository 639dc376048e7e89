"""Nothing changed, nothing written: a restarted operator, or an edit that touches no spec,
costs reads only (every write is an etcd write and a watch event for every watcher)."""

from __future__ import annotations

import asyncio

import pytest

from tests.kubeapi.fixtures import StrictCluster

from .conftest import Operators, eventually
from .k8s import Kubectl
from .test_workerpool import SPEC, sts_name

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# Quantities as people write them; the API server stores them canonically (1, 1Gi, 500m).
RESOURCES = {"requests": {"cpu": 0.5, "memory": "1024Mi"}, "limits": {"cpu": 1, "memory": "1.5Gi"}}
QUIET_S = 1.5  # longer than the registry's tick, the status loop's and kopf's retry


def _writes(kubectl: Kubectl, since: int) -> list[str]:
    """The operator's writes since ``since`` (the tests' own are the admin's)."""
    return [f"{r.method} {r.path} {r.code}" for r in kubectl.operator_writes(since)]


async def _settled(kubectl: Kubectl) -> None:
    """Wait until the operator has written nothing for ``QUIET_S`` (at most 30 s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        writes = len(kubectl.operator_writes())
        await asyncio.sleep(QUIET_S)
        if len(kubectl.operator_writes()) == writes:
            return
    raise AssertionError("the operator kept writing: " + "\n".join(_writes(kubectl, 0)[-10:]))


async def test_quantities_read_back_canonical_are_not_drift(
    cluster: StrictCluster, operators: Operators
) -> None:
    """The API server stores 1024Mi as 1Gi and cpu: 1 as "1": a restarted operator compares
    what it reads back with what it would send, and must not patch the StatefulSet."""
    await operators.start()
    kubectl = Kubectl(cluster)
    await kubectl.apply_pool("sized", {**SPEC, "resources": RESOURCES})
    await eventually(lambda: kubectl.exists("v1/services", "sized"))
    sts = kubectl.obj("apps/v1/statefulsets", sts_name("sized"))
    stored = sts["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert stored == {"requests": {"cpu": "500m", "memory": "1Gi"},
                      "limits": {"cpu": "1", "memory": "1536Mi"}}
    await _settled(kubectl)
    await operators.stop()
    mark = kubectl.mark()
    await operators.start()
    await _settled(kubectl)
    assert not [w for w in _writes(kubectl, mark) if "statefulsets" in w]
    assert "StatefulSetUpdated" not in kubectl.reasons("sized")


async def test_a_restart_and_an_unrelated_edit_write_nothing(
    cluster: StrictCluster, operators: Operators
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    await kubectl.apply_pool("quiet", {**SPEC, "resources": RESOURCES})
    await kubectl.apply_orchestration("done", {"orchestration": "Hello", "input": "q"})
    await eventually(lambda: kubectl.status("done").get("phase") == "Completed")
    pool = lambda: kubectl.pool("quiet")  # noqa: E731
    await eventually(lambda: pool()["status"].get("liveWorkers") == 0)
    quiet = sts_name("quiet")
    await kubectl.merge_patch(f"/apis/apps/v1/namespaces/ns1/statefulsets/{quiet}/status",
                              {"status": {"replicas": 2, "readyReplicas": 2}})
    await eventually(lambda: pool()["status"]["ready"] == "2/2")
    await _settled(kubectl)

    await operators.stop()
    mark = kubectl.mark()
    await operators.start()
    await _settled(kubectl)
    assert _writes(kubectl, mark) == [], "\n".join(_writes(kubectl, mark))

    mark = kubectl.mark()
    await kubectl.merge_patch(kubectl.path("workerpools", "quiet"),
                              {"metadata": {"labels": {"team": "a"}}})
    await kubectl.merge_patch(kubectl.path("orchestrations", "done"),
                              {"metadata": {"annotations": {"note": "x"}}})
    await _settled(kubectl)
    assert _writes(kubectl, mark) == [], "\n".join(_writes(kubectl, mark))
