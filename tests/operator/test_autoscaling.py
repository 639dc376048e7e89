"""Elastic WorkerPools end to end: the operator sizes a pool's StatefulSet from the demand in
the database, with real worker processes as its pods (the kubelet stand-in, ``pods.py``).

A ``gpu`` pool at zero gets its first pod within 5 s of a gpu activity being scheduled, runs
it, holds through demand that comes and goes faster than the delay, returns to zero; a burst
scales it to its maximum and back; a pod still running an activity on a session is drained,
not removed, when demand drops, and removed once it finished and handed its session over;
``spec.replicas`` written by another scaler stops the autoscaler with a condition; a bad
``autoscaling`` is refused by the CRD (docs/autoscaling.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from duraflow_operator.spec import code_build

from duraflow import AsyncClient, PostgresProvider
from tests.kubeapi.fixtures import StrictCluster

from .conftest import NS, Operators, eventually
from .k8s import Kubectl
from .pods import Kubelet

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

STS = "apps/v1/statefulsets"
POOL = {
    "image": "duraflow:test",
    "app": "tests.operator.app:register",
    "tags": ["gpu"],
    "databaseSecretRef": {"name": "db", "key": "url"},
}
#: Drained pods notice within a heartbeat: short, so a scale-down is quick.
FAST_HEARTBEAT = {"DURAFLOW_HEARTBEAT_INTERVAL_MS": "200"}


@pytest.fixture
async def client(postgres_url: str, schema: str) -> AsyncIterator[AsyncClient]:
    provider = await PostgresProvider.connect_async(postgres_url, schema)
    try:
        yield AsyncClient(provider)
    finally:
        await provider.close()


#: The StatefulSet of the gpu pool's revision (docs/rollouts.md): its pods are ``<G>-<n>``.
G = f"gpu-{code_build(POOL['image'], POOL['app'])}"
#: The same for the drain test's pool.
D = f"drain-{code_build(POOL['image'], POOL['app'])}"


def _replicas(kubectl: Kubectl, name: str = G) -> int:
    return int(kubectl.obj(STS, name)["spec"]["replicas"])


def _scaling(kubectl: Kubectl, name: str = "gpu") -> dict[str, Any]:
    return kubectl.condition(name, "ScalingActive", "workerpools")


async def _job(client: AsyncClient, instance: str, seconds: float | str,
               tag: str = "gpu", session: str | None = None) -> str:
    await client.start_orchestration(instance, "TaggedJob",
                                     {"seconds": seconds, "tag": tag, "session": session})
    result = await client.wait_for_orchestration(instance, 120_000)
    assert result.status == "Completed", result
    return str(result.output)


async def test_a_gpu_pool_scales_from_zero_holds_through_oscillation_bursts_and_returns(
    cluster: StrictCluster, operators: Operators, postgres_url: str, schema: str,
    client: AsyncClient,
) -> None:
    running = await operators.start()
    kubectl = Kubectl(cluster)
    loop = asyncio.get_running_loop()
    async with Kubelet(cluster, postgres_url, schema, extra_env=FAST_HEARTBEAT) as kubelet:
        await kubectl.apply_pool("gpu", {**POOL, "workerConcurrency": 2, "autoscaling": {
            "minReplicas": 0, "maxReplicas": 3, "scaleDownDelaySeconds": 3}})
        await eventually(lambda: _scaling(kubectl)["reason"] == "ScaledToZero")
        assert _replicas(kubectl) == 0 and kubelet.running(G) == []

        # Up fast: the first pod within 5 s of the activity being scheduled.
        started = loop.time()
        first = asyncio.ensure_future(_job(client, "job-0", 0.2))
        await eventually(lambda: _replicas(kubectl) == 1, timeout=5.0,
                         message="a pod within 5 s")
        up_s = loop.time() - started
        assert await first == f"{G}-0"
        await eventually(lambda: kubectl.pool("gpu")["status"]["desiredReplicas"] >= 1
                         and "lastScaleTime" in kubectl.pool("gpu")["status"])

        # Demand that comes and goes faster than the delay: no flapping.
        for i in range(1, 4):
            assert await _job(client, f"job-{i}", 0.2) == f"{G}-0"
        assert kubectl.reasons("gpu").count("ScaledDown") == 0
        assert _replicas(kubectl) == 1

        # Down slowly: back to zero once nothing waited or ran for the delay.
        await eventually(lambda: _replicas(kubectl) == 0, timeout=30)
        await eventually(lambda: kubelet.running(G) == [], timeout=30)
        await eventually(lambda: kubectl.reasons("gpu").count("ScaledDown") == 1)
        assert kubectl.reasons("gpu").count("ScaledUp") == 1

        # A burst of 200: up to maxReplicas, all of it done, and back to zero.
        burst = [asyncio.ensure_future(_job(client, f"burst-{i}", 0.05)) for i in range(200)]
        await eventually(lambda: _scaling(kubectl)["reason"] == "AtMaxReplicas", timeout=30)
        await eventually(lambda: _replicas(kubectl) == 3, timeout=30)
        ran_on = await asyncio.gather(*burst)
        assert set(ran_on) <= {f"{G}-0", f"{G}-1", f"{G}-2"}
        await eventually(lambda: _replicas(kubectl) == 0, timeout=60)
        sample = running.state.metrics.registry.get_sample_value
        labels = {"namespace": NS, "pool": "gpu"}
        await eventually(lambda: sample("duraflow_operator_pool_demand", labels) == 0)
        assert sample("duraflow_operator_pool_replicas", {**labels, "kind": "desired"}) == 0
    print(f"first pod after {up_s:.2f}s")


async def test_a_pod_still_running_an_activity_is_drained_not_removed(
    cluster: StrictCluster, operators: Operators, postgres_url: str, schema: str,
    client: AsyncClient, tmp_path: Path,
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    short_done, long_done = tmp_path / "short", tmp_path / "long"  # the activities wait for them
    # A pool of its own, with a tag of its own: nothing of an earlier test can take its work.
    async with Kubelet(cluster, postgres_url, schema, extra_env=FAST_HEARTBEAT) as kubelet:
        await kubectl.apply_pool("drain", {**POOL, "tags": ["drain"], "workerConcurrency": 1,
                                           "autoscaling": {
            "minReplicas": 1, "maxReplicas": 2, "scaleDownDelaySeconds": 1}})
        await eventually(lambda: kubelet.running(D) == [f"{D}-0"], timeout=30)
        short = asyncio.ensure_future(_job(client, "short", str(short_done), "drain"))
        await eventually(lambda: _started(short_done) == [f"{D}-0"], timeout=30)
        # The long one on a session: its pod holds the session while it runs.
        long = asyncio.ensure_future(_job(client, "long", str(long_done), "drain", "s1"))
        await eventually(lambda: _replicas(kubectl, D) == 2, timeout=10)
        # drain-…-0 runs one activity at a time: drain-…-1 takes the other.
        assert await eventually(lambda: _started(long_done), timeout=30) == [f"{D}-1"]
        short_done.touch()
        assert await short == f"{D}-0"
        # Demand is 1 now, below 2 pods: drain-…-1 is drained, and stays while its activity
        # runs and it holds the session.
        await eventually(lambda: _scaling(kubectl, "drain")["reason"] == "DrainingPods", timeout=10)
        assert f"{D}-1" in _scaling(kubectl, "drain")["message"]
        assert _replicas(kubectl, D) == 2 and f"{D}-1" in kubelet.running(D)
        assert (await client.get_drained_workers())[f"{D}-1"] is False
        long_done.touch()
        assert await long == f"{D}-1"  # ran to its end where it started
        await eventually(lambda: _replicas(kubectl, D) == 1, timeout=30)
        assert kubelet.starts.count(f"{D}-1") == 1
        assert (await client.get_drained_workers())[f"{D}-1"] is True
        assert (await client.get_work_demand()).sessions == {}  # s1 was released first
        # Demand returns: the name is undrained before the pod comes back, and takes work.
        again_done = tmp_path / "again"
        again = [asyncio.ensure_future(_job(client, f"again-{i}", str(again_done), "drain"))
                 for i in range(2)]
        await eventually(lambda: _replicas(kubectl, D) == 2, timeout=10)
        # One on each pod: drain-…-1 was undrained.
        await eventually(lambda: _started(again_done) == [f"{D}-0", f"{D}-1"], timeout=30)
        again_done.touch()
        assert sorted(await asyncio.gather(*again)) == [f"{D}-0", f"{D}-1"]


def _started(path: Path) -> list[str]:
    """The pods on which the activities waiting for ``path`` started (``app.py``)."""
    return sorted(p.name.rsplit(".", 1)[1] for p in path.parent.glob(f"{path.name}.*"))


async def test_another_scaler_or_a_bad_spec_is_refused(
    cluster: StrictCluster, operators: Operators
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    for bad in ({"minReplicas": 3, "maxReplicas": 2}, {"maxReplicas": 2, "minReplicas": -1},
                {"maxReplicas": 0}, {"minReplicas": 1}):
        answer = await cluster.admin.request("POST", kubectl.path("workerpools"), {
            "apiVersion": "duraflow.io/v1alpha1", "kind": "WorkerPool",
            "metadata": {"name": "bad", "namespace": NS},
            "spec": {**POOL, "autoscaling": bad}})
        assert answer.status == 422, (bad, answer.body)

    await kubectl.apply_pool("gpu", {**POOL, "replicas": 2, "autoscaling": {
        "minReplicas": 1, "maxReplicas": 4}})
    await eventually(lambda: _scaling(kubectl)["reason"] == "DemandBelowMinimum")
    assert kubectl.pool("gpu")["status"]["autoscaledFromReplicas"] == 2
    assert _replicas(kubectl) == 1  # created at the minimum: spec.replicas is ignored
    scale = kubectl.path("workerpools", "gpu") + "/scale"
    await kubectl.merge_patch(scale, {"spec": {"replicas": 3}})  # an HPA, or kubectl scale
    await eventually(lambda: _scaling(kubectl)["reason"] == "ExternalScaler")
    assert _scaling(kubectl)["status"] == "False"
    assert "set spec.replicas back to 2" in _scaling(kubectl)["message"]
    await eventually(lambda: kubectl.reasons("gpu", "Warning") == ["ExternalScaler"])
    assert _replicas(kubectl) == 1  # neither scaler won

    # Autoscaling off: the pool is scaled by whoever writes spec.replicas.
    await kubectl.json_patch(kubectl.path("workerpools", "gpu"),
                             [{"op": "remove", "path": "/spec/autoscaling"}])
    await eventually(lambda: _replicas(kubectl) == 3)
    await eventually(lambda: _scaling(kubectl)["reason"] == "AutoscalingOff")
    assert "autoscaledFromReplicas" not in kubectl.pool("gpu")["status"]
    await kubectl.merge_patch(scale, {"spec": {"replicas": 0}})
    await eventually(lambda: _replicas(kubectl) == 0)
    # Autoscaling again takes over spec.replicas as it is now: no conflict.
    await kubectl.merge_patch(kubectl.path("workerpools", "gpu"),
                              {"spec": {"autoscaling": {"minReplicas": 2, "maxReplicas": 4}}})
    await eventually(lambda: _replicas(kubectl) == 2)
    await eventually(lambda: _scaling(kubectl)["reason"] == "DemandBelowMinimum")
    assert kubectl.pool("gpu")["status"]["autoscaledFromReplicas"] == 0
