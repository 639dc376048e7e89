"""WorkerPool revisions (docs/rollouts.md): a change of image and app is a new build, run
by a StatefulSet ``<pool>-<build>`` of its own beside the one before; the operator makes it
current once its pods are ready (or when told, ``Manual``), and the revision before drains:
it keeps its pods while executions are pinned to its build and is deleted once none is.

Real worker processes play the pods (``tests/operator/pods.py``), on the two builds of
``tests/cluster/rollout_app.py``: ``Changed`` gained a step in v2, so neither build can take
over an execution the other started, and each one finishes where it began.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from duraflow_operator import manifests
from duraflow_operator.spec import SpecError, code_build, parse_worker_pool

from duraflow import AsyncClient, PostgresProvider
from tests.kubeapi.fixtures import StrictCluster

from .conftest import NS, Operators, eventually, fresh_schema, token_file
from .k8s import WORKERPOOLS, Kubectl
from .pods import Kubelet

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
APP = "tests.cluster.rollout_app:register_{}"
STS = f"/apis/apps/v1/namespaces/{NS}/statefulsets"


def spec(version: str, **extra: Any) -> dict[str, Any]:
    return {"image": f"shop:{version}", "app": APP.format(version), "replicas": 1,
            "databaseSecretRef": {"name": "db", "key": "url"}, **extra}


def build(version: str) -> str:
    return code_build(f"shop:{version}", APP.format(version))


@pytest.fixture
def schema(postgres_url: str) -> Iterator[str]:
    """A store per test: builds are the store's, and each test starts without any."""
    yield from fresh_schema(postgres_url)


@pytest.fixture
async def client(postgres_url: str, schema: str) -> AsyncIterator[AsyncClient]:
    provider = await PostgresProvider.connect_async(postgres_url, schema)
    yield AsyncClient(provider)
    await provider.close()


@pytest.fixture
async def operators(cluster: StrictCluster, postgres_url: str, schema: str,
                    tmp_path: Path) -> AsyncIterator[Operators]:
    """No worker of the suite's app: every worker here is a pod of a pool."""
    ops = Operators(cluster, postgres_url, schema, token_file(cluster, tmp_path))
    yield ops
    await ops.kill()
    assert ops.refusals() == []


@pytest.fixture
async def kubelet(cluster: StrictCluster, postgres_url: str,
                  schema: str) -> AsyncIterator[Kubelet]:
    async with Kubelet(cluster, postgres_url, schema,
                       extra_env={"DURAFLOW_HEARTBEAT_INTERVAL_MS": "500"}) as running:
        yield running


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 60.0,
                message: str = "") -> Any:
    """Poll an async ``check`` until truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        last = await check()
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out: {message}; last={last!r}")
        await asyncio.sleep(0.1)


def revisions(kubectl: Kubectl, pool: str) -> dict[str, tuple[str, int]]:
    """build: (state, pinnedExecutions), as the pool's status shows them."""
    status = kubectl.pool(pool).get("status") or {}
    return {r["build"]: (r["state"], r["pinnedExecutions"]) for r in status.get("revisions")
            or []}


def condition(kubectl: Kubectl, pool: str, type_: str) -> tuple[str, str]:
    found = kubectl.condition(pool, type_, WORKERPOOLS)
    return found.get("status", ""), found.get("reason", "")


async def pinned(client: AsyncClient, instance_id: str, build_id: str) -> bool:
    if (await client.get_status(instance_id)).status == "NotFound":
        return False
    return (await client.get_instance_info(instance_id)).build_id == build_id


async def test_an_image_change_drains_the_old_revision_and_a_rollback_reuses_it(
    cluster: StrictCluster, operators: Operators, kubelet: Kubelet, client: AsyncClient
) -> None:
    v1, v2 = build("v1"), build("v2")
    await operators.start(registry_interval_s=0.3)
    kubectl = Kubectl(cluster)
    rollout = {"drainGraceSeconds": 1}
    await kubectl.apply_pool("shop", spec("v1", rollout=rollout))
    # A second pool of the app (tag gpu) on the same image: the same build, no pods needed.
    await kubectl.apply_pool("gpu", spec("v1", replicas=0, tags=["gpu"]))
    await eventually(lambda: revisions(kubectl, "shop") == {v1: ("Current", 0)}, timeout=60)
    await eventually(lambda: condition(kubectl, "shop", "RolloutComplete")[0] == "True")
    status = kubectl.pool("shop")["status"]
    assert status["currentBuild"] == v1 and status["draining"] == 0
    assert status["revisions"][0]["statefulSet"] == f"shop-{v1}"
    assert status["ready"] == "1/1"
    assert {(b.build_id, b.state) for b in await client.list_builds()} == {(v1, "current")}

    # An instance of v1, waiting for an event: its Orchestration CR shows its build.
    await kubectl.apply_orchestration("first", {"orchestration": "Changed", "input": 1})
    await eventually(lambda: kubectl.status("first").get("buildId") == v1, timeout=30)

    await kubectl.merge_patch(kubectl.path("workerpools", "shop"), {"spec": spec("v2")})
    await eventually(lambda: kubectl.pool("shop")["status"].get("currentBuild") == v2,
                     timeout=60, message="v2 promoted once its pod is ready")
    assert kubelet.running(f"shop-{v2}") == [f"shop-{v2}-0"]
    assert {(b.build_id, b.state) for b in await client.list_builds()} == {
        (v1, "draining"), (v2, "current")}
    await eventually(lambda: {"BuildPromoted", "RevisionDraining"}
                     <= set(kubectl.reasons("shop", "Normal")))
    await eventually(lambda: revisions(kubectl, "shop") == {v2: ("Current", 0),
                                                            v1: ("Draining", 1)})
    assert condition(kubectl, "shop", "Progressing") == ("True", "Draining")
    assert condition(kubectl, "shop", "RolloutComplete") == ("False", "Draining")
    # The gpu pool has no revision of v2: v2's gpu work would wait. Both pools say so.
    for pool in ("shop", "gpu"):
        await eventually(lambda p=pool: condition(kubectl, p, "BuildServed")
                         == ("False", "NoWorkerForBuild"))
        await eventually(lambda p=pool: "NoWorkerForBuild" in kubectl.reasons(p, "Warning"))

    # New work starts on v2; the v1 instance stays on v1, its revision keeps one pod.
    await client.start_orchestration("second", "Changed", 2)
    await until(lambda: pinned(client, "second", v2), message="second on v2")
    ticks = operators.running.registry.ticks if operators.running else 0
    await eventually(lambda: operators.running is not None
                     and operators.running.registry.ticks >= ticks + 5)  # > the grace period
    assert kubectl.exists("apps/v1/statefulsets", f"shop-{v1}")
    assert kubelet.running(f"shop-{v1}") == [f"shop-{v1}-0"]
    assert await pinned(client, f"{NS}/first", v1)

    # Rollback: the image of v1 again. Its revision is still there: current again, no new
    # StatefulSet; v2 drains in turn (its instance stays on v2).
    await kubectl.merge_patch(kubectl.path("workerpools", "shop"), {"spec": spec("v1")})
    await eventually(lambda: revisions(kubectl, "shop") == {v1: ("Current", 1),
                                                            v2: ("Draining", 1)}, timeout=30)
    await eventually(lambda: kubectl.reasons("shop", "Normal").count("BuildPromoted") == 3)
    assert kubectl.reasons("shop", "Normal").count("StatefulSetCreated") == 2  # v1, v2
    await eventually(lambda: condition(kubectl, "gpu", "BuildServed")[0] == "True")

    # Each instance finishes on the code that started it; then v2's revision goes.
    await client.raise_event(f"{NS}/first", "go", "a")
    await client.raise_event("second", "go", "b")
    first = await client.wait_for_orchestration(f"{NS}/first", 30_000)
    second = await client.wait_for_orchestration("second", 30_000)
    assert (first.status, first.output) == ("Completed", ["v1:1", "a"])
    assert (second.status, second.output) == ("Completed", ["v2:2", "b"])
    await eventually(lambda: not kubectl.exists("apps/v1/statefulsets", f"shop-{v2}"),
                     timeout=30, message="the drained revision deleted")
    await eventually(lambda: not kubelet.running(f"shop-{v2}"))
    await eventually(lambda: "RevisionDeleted" in kubectl.reasons("shop", "Normal"))
    await eventually(lambda: revisions(kubectl, "shop") == {v1: ("Current", 0)})
    await eventually(lambda: condition(kubectl, "shop", "RolloutComplete") == (
        "True", "RolloutComplete"))
    assert kubectl.pool("shop")["status"]["draining"] == 0


async def test_a_pool_made_before_revisions_is_adopted_and_rolled_out_by_hand(
    cluster: StrictCluster, operators: Operators, kubelet: Kubelet, client: AsyncClient
) -> None:
    """The previous release's StatefulSet ``<pool>`` and its build-less pod are adopted
    without a restart; the executions that pod ran are pinned to the adopted build, so the
    new build can never replay them."""
    v1, v2 = build("v1"), build("v2")
    kubectl = Kubectl(cluster)
    pool = await kubectl.apply_pool("old", spec("v1", rollout={
        "strategy": "Manual", "drainingReplicas": 0, "drainGraceSeconds": 1}))
    legacy = manifests.stateful_set(pool, parse_worker_pool(pool["spec"]))  # no build
    assert "DURAFLOW_BUILD_ID" not in str(legacy)
    await kubectl.create(STS, legacy)
    await eventually(lambda: kubelet.running("old") == ["old-0"], timeout=30)
    await client.start_orchestration("legacy", "Changed", 0)
    await until(lambda: waiting_for_go(client, "legacy"), message="legacy ran a turn")
    assert (await client.get_instance_info("legacy")).build_id is None  # pinned to nothing

    await operators.start(registry_interval_s=0.3)
    await eventually(lambda: revisions(kubectl, "old") == {v1: ("Current", 1)}, timeout=30)
    assert await pinned(client, "legacy", v1)
    assert kubectl.pool("old")["status"]["currentBuild"] == v1
    await eventually(lambda: "RevisionAdopted" in kubectl.reasons("old", "Normal"))
    assert kubelet.starts == ["old-0"]  # not restarted
    await eventually(lambda: condition(kubectl, "old", "RolloutComplete")[0] == "True")

    # Manual: the new revision runs, and waits to be promoted. The adopted pod learns its
    # build first (its one restart): a pod without one would take v2's executions.
    await kubectl.merge_patch(kubectl.path("workerpools", "old"), {"spec": spec("v2")})
    await eventually(lambda: kubelet.running(f"old-{v2}") == [f"old-{v2}-0"], timeout=60)
    await eventually(lambda: condition(kubectl, "old", "Progressing") == (
        "True", "WaitingForPromotion"), timeout=30)
    assert kubelet.starts.count("old-0") == 2
    workers = {w.worker_node_id: w.build_id for w in await client.list_workers() if w.alive}
    assert workers == {"old-0": v1, f"old-{v2}-0": v2}
    assert {(b.build_id, b.state) for b in await client.list_builds()} == {
        (v1, "current"), (v2, "pending")}
    await kubectl.merge_patch(kubectl.path("workerpools", "old"),
                              {"spec": {"rollout": {"promote": v2}}})
    await eventually(lambda: kubectl.pool("old")["status"].get("currentBuild") == v2,
                     timeout=30)
    # drainingReplicas 0: the legacy instance has no worker left; it waits and is reported.
    await eventually(lambda: "DrainingWithoutWorkers" in kubectl.reasons("old", "Warning"),
                     timeout=30)
    assert revisions(kubectl, "old")[v1] == ("Draining", 1)
    await client.raise_event("legacy", "go", "late")
    await kubectl.merge_patch(kubectl.path("workerpools", "old"),
                              {"spec": {"rollout": {"drainingReplicas": 1}}})
    done = await client.wait_for_orchestration("legacy", 60_000)
    assert (done.status, done.output) == ("Completed", ["v1:0", "late"])  # on v1's code
    await eventually(lambda: not kubectl.exists("apps/v1/statefulsets", "old"), timeout=30)
    await eventually(lambda: revisions(kubectl, "old") == {v2: ("Current", 0)})


async def waiting_for_go(client: AsyncClient, instance_id: str) -> bool:
    if (await client.get_status(instance_id)).status == "NotFound":
        return False
    history = await client.read_execution_history(instance_id, 1)
    return bool(history) and history[-1].kind == "ExternalSubscribed"


async def test_rollout_fields_the_api_server_refuses(cluster: StrictCluster) -> None:
    """The schema and CEL refuse what no revision could be made of; the operator's own
    checks repeat them for an API server with an older CRD."""
    kubectl = Kubectl(cluster)
    cases = {"Release_1": {"buildId": "Release_1"},
             "rollout.promote is for strategy Manual": {"rollout": {"promote": "v2"}},
             "drainingReplicas": {"rollout": {"drainingReplicas": -1}}}
    for expected, extra in cases.items():
        answer = await cluster.admin.create(kubectl.path("workerpools"), {
            "apiVersion": "duraflow.io/v1alpha1", "kind": "WorkerPool",
            "metadata": {"name": "bad"}, "spec": spec("v1", **extra)})
        assert answer.status == 422 and expected in answer.message, answer.message
    for extra, reason in (({"buildId": "Release_1"}, "InvalidBuildId"),
                          ({"rollout": {"strategy": "Canary"}}, "InvalidRollout"),
                          ({"rollout": {"drainGraceSeconds": -1}}, "InvalidSpec")):
        with pytest.raises(SpecError) as refused:
            parse_worker_pool(spec("v1", **extra))
        assert refused.value.reason == reason
    parsed = parse_worker_pool(spec("v1", buildId="r-7", rollout={"strategy": "Manual"}))
    assert parsed.build == "r-7" and parsed.rollout.drain_grace_s == 60
    assert parsed.rollout.draining_replicas == 1 and parsed.rollout.promote is None
    # The default build follows image and app only.
    moved = parse_worker_pool(spec("v1", replicas=7, resources={"limits": {"cpu": "2"}},
                                   tags=["gpu"]))
    assert moved.build == build("v1") != build("v2")
    assert len(build("v1")) == 10
