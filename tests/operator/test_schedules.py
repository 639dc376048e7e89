"""An OrchestrationSchedule keeps an engine schedule in step, and every run it fires shows as an
Orchestration CR; an Orchestration with ``ttlSecondsAfterFinished`` goes away once it ended.

Lean: the module's one worker process fires the ticks (``@every 1s``, the engine's shortest),
one operator per test, and every engine schedule a test made is deleted when it ends (an
``@every 1s`` schedule left behind would keep the worker busy for the rest of the module)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from duraflow import AsyncClient, PostgresProvider, ScheduleNotFoundError
from tests.kubeapi.fixtures import StrictCluster

from .conftest import NS, Operators, eventually
from .k8s import ORCHESTRATIONS, Kubectl

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCHEDULES = "duraflow.io/v1alpha1/orchestrationschedules"


@pytest.fixture
async def engine(postgres_url: str, schema: str) -> AsyncIterator[AsyncClient]:
    provider = await PostgresProvider.connect_async(postgres_url, schema)
    client = AsyncClient(provider)
    try:
        yield client
    finally:
        for info in await client.list_schedules():
            await client.delete_schedule(info.schedule_id)
        await provider.close()


async def apply_schedule(kubectl: Kubectl, name: str, spec: dict[str, Any]) -> Any:
    body = {"apiVersion": "duraflow.io/v1alpha1", "kind": "OrchestrationSchedule",
            "metadata": {"name": name, "namespace": kubectl.ns}, "spec": spec}
    return await kubectl.create(kubectl.path("orchestrationschedules"), body)


def schedule_status(kubectl: Kubectl, name: str) -> dict[str, Any]:
    return dict(kubectl.obj(SCHEDULES, name).get("status") or {})


def runs(kubectl: Kubectl, name: str) -> list[dict[str, Any]]:
    """``kubectl get orch -l duraflow.io/schedule=<name>``, oldest first."""
    found = [o for o in kubectl.server.store.items(ORCHESTRATIONS, kubectl.ns)
             if (o["metadata"].get("labels") or {}).get("duraflow.io/schedule") == name]
    return sorted(found, key=lambda o: str(o["metadata"]["name"]))


def phases(kubectl: Kubectl, name: str) -> list[str]:
    return [str((o.get("status") or {}).get("phase")) for o in runs(kubectl, name)]


async def test_runs_every_second_complete_and_only_the_history_limits_stay(
    cluster: StrictCluster, operators: Operators, engine: AsyncClient
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    created = await apply_schedule(kubectl, "tick", {
        "schedule": "@every 1s", "orchestration": "Hello", "input": "tick",
        "successfulRunsHistoryLimit": 2,
        "runTemplate": {"metadata": {"labels": {"team": "data"}},
                        "spec": {"deletionPolicy": "Orphan"}}})
    # Four runs have had CRs; of the finished ones, only the two newest stay.
    completed = lambda: [p for p in phases(kubectl, "tick") if p == "Completed"]  # noqa: E731
    await eventually(lambda: _runs_seen(operators) >= 4 and len(completed()) == 2,
                     timeout=30, message="four runs, two completed runs kept")
    oldest = min((await engine.describe_schedule(f"{NS}/tick")).last_runs,
                 key=lambda r: r.scheduled_at_ms)
    await eventually(lambda: not kubectl.exists(
        ORCHESTRATIONS, "tick-" + oldest.instance_id[-16:].lower()), message="oldest deleted")
    first = runs(kubectl, "tick")[0]
    meta, spec = first["metadata"], first["spec"]
    assert meta["labels"] == {"team": "data", "duraflow.io/schedule": "tick"}
    (owner,) = meta["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "OrchestrationSchedule", created["metadata"]["uid"], True)
    assert spec["instanceId"] == f"{NS}/tick-" + meta["name"].removeprefix("tick-").upper()
    assert spec["deletionPolicy"] == "Orphan" and spec["input"] == "tick"
    assert first["status"]["output"] == "Hello, tick!"
    assert "Adopted" in kubectl.reasons(meta["name"])  # started by the engine, not again
    status = schedule_status(kubectl, "tick")
    assert status["scheduleId"] == f"{NS}/tick"
    assert status["lastScheduleTime"] and status["nextScheduleTime"]
    assert status["lastSuccessfulTime"]
    assert kubectl.condition("tick", "Ready", SCHEDULES)["reason"] == "Scheduled"
    assert kubectl.condition("tick", "Suspended", SCHEDULES)["status"] == "False"
    info = await engine.describe_schedule(f"{NS}/tick")
    assert (info.cron, info.overlap, info.catchup_window_ms) == ("@every 1s", "skip", 60_000)

    # Deleting the schedule deletes the engine schedule (so no tick fires any more) and,
    # through the owner references, its runs' CRs.
    await kubectl.delete(kubectl.path("orchestrationschedules", "tick"))
    await eventually(lambda: not kubectl.exists(SCHEDULES, "tick"), message="schedule gone")
    with pytest.raises(ScheduleNotFoundError):
        await engine.describe_schedule(f"{NS}/tick")
    await eventually(lambda: runs(kubectl, "tick") == [], message="runs collected")


def _runs_seen(operators: Operators) -> int:
    """Runs the operator gave a CR (their CRs may be gone: history limits)."""
    assert operators.running is not None
    view = operators.running.state.schedules.get((NS, "tick"))
    info = view.info if view is not None else None
    return 0 if info is None else len(info.last_runs)


async def test_forbid_keeps_one_run_counts_missed_ticks_and_suspend_stops_runs(
    cluster: StrictCluster, operators: Operators, engine: AsyncClient
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    await apply_schedule(kubectl, "wait", {"schedule": "@every 1s",
                                           "orchestration": "Approval"})
    await eventually(lambda: schedule_status(kubectl, "wait").get("missedRuns", 0) >= 2,
                     timeout=20, message="missed ticks counted")
    status = schedule_status(kubectl, "wait")
    assert status["activeCount"] == 1 and len(runs(kubectl, "wait")) == 1
    (active,) = status["active"]
    assert active["name"] == runs(kubectl, "wait")[0]["metadata"]["name"]

    # Suspended: the waiting run is approved and ends, and no new run starts.
    await kubectl.merge_patch(kubectl.path("orchestrationschedules", "wait"),
                              {"spec": {"suspend": True}})
    await eventually(lambda: kubectl.condition("wait", "Suspended", SCHEDULES).get("status")
                     == "True", message="Suspended=True")
    await eventually(lambda: "nextScheduleTime" not in schedule_status(kubectl, "wait"))
    assert (await engine.describe_schedule(f"{NS}/wait")).paused
    instance = runs(kubectl, "wait")[0]["spec"]["instanceId"]
    await engine.raise_event(instance, "approve", "ok")
    await eventually(lambda: phases(kubectl, "wait") == ["Completed"], message="run ended")
    await eventually(lambda: schedule_status(kubectl, "wait").get("activeCount") == 0)
    await asyncio.sleep(2.5)  # two ticks' worth: a window to see nothing happen in
    assert len(runs(kubectl, "wait")) == 1
    assert len((await engine.describe_schedule(f"{NS}/wait")).last_runs) == 1

    # Resumed: runs start again.
    await kubectl.merge_patch(kubectl.path("orchestrationschedules", "wait"),
                              {"spec": {"suspend": False}})
    await eventually(lambda: len(runs(kubectl, "wait")) == 2, message="a run after resume")


async def test_runs_fired_while_the_operator_was_down_get_their_crs_when_it_returns(
    cluster: StrictCluster, operators: Operators, engine: AsyncClient
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    await apply_schedule(kubectl, "gap", {"schedule": "@every 1s", "orchestration": "Hello",
                                          "successfulRunsHistoryLimit": 10})
    await eventually(lambda: runs(kubectl, "gap"), message="a first run")
    await operators.kill()
    seen = len(runs(kubectl, "gap"))
    deadline = asyncio.get_running_loop().time() + 20
    while len((await engine.describe_schedule(f"{NS}/gap")).last_runs) < seen + 2:
        assert asyncio.get_running_loop().time() < deadline, "the engine fired no more runs"
        await asyncio.sleep(0.1)
    await operators.start()
    await eventually(lambda: len(runs(kubectl, "gap")) >= seen + 2, message="the missed runs")
    await operators.kill()  # nothing creates CRs while the check reads them
    info = await engine.describe_schedule(f"{NS}/gap")
    names = [o["metadata"]["name"] for o in runs(kubectl, "gap")]
    fired = sorted("gap-" + r.instance_id[-16:].lower() for r in info.last_runs)
    # No gap: every run up to the newest CR has its CR (as far back as the engine lists runs:
    # its newest ten; on a slow machine more than ten may have fired by now).
    since = max(names[0], fired[0])
    assert [n for n in fired if since <= n <= names[-1]] == [n for n in names if n >= since]
    assert len([n for n in names if n >= since]) >= 2


async def test_a_bad_schedule_or_zone_gets_ready_false_and_a_warning(
    cluster: StrictCluster, operators: Operators, engine: AsyncClient
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    await apply_schedule(kubectl, "bad", {"schedule": "61 * * * *", "orchestration": "Hello"})
    await eventually(lambda: kubectl.condition("bad", "Ready", SCHEDULES).get("reason")
                     == "InvalidSchedule", message="InvalidSchedule")
    assert "61" in kubectl.condition("bad", "Ready", SCHEDULES)["message"]
    await eventually(lambda: "InvalidSchedule" in kubectl.reasons("bad", "Warning"))
    with pytest.raises(ScheduleNotFoundError):
        await engine.describe_schedule(f"{NS}/bad")
    await kubectl.merge_patch(kubectl.path("orchestrationschedules", "bad"), {"spec": {
        "schedule": "0 9 * * MON-FRI", "timeZone": "Mars/Olympus_Mons"}})
    await eventually(lambda: "Mars/Olympus_Mons" in kubectl.condition(
        "bad", "Ready", SCHEDULES).get("message", ""), message="the zone named")
    assert kubectl.condition("bad", "Ready", SCHEDULES)["reason"] == "InvalidSchedule"
    await kubectl.merge_patch(kubectl.path("orchestrationschedules", "bad"),
                              {"spec": {"timeZone": "America/New_York"}})
    await eventually(lambda: kubectl.condition("bad", "Ready", SCHEDULES).get("status")
                     == "True", message="fixed")
    info = await engine.describe_schedule(f"{NS}/bad")
    assert (info.cron, info.timezone) == ("0 9 * * MON-FRI", "America/New_York")
    await eventually(lambda: schedule_status(kubectl, "bad").get("nextScheduleTime"))


async def test_a_finished_orchestration_with_a_ttl_is_deleted(
    cluster: StrictCluster, operators: Operators
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    await kubectl.apply_orchestration("brief", {"orchestration": "Hello", "input": "ttl",
                                                "ttlSecondsAfterFinished": 1})
    await kubectl.apply_orchestration("kept", {"orchestration": "Hello", "input": "kept"})
    # With a TTL of 1 s the CR may be gone before a poll sees it Completed: its Events stay.
    await eventually(lambda: kubectl.gone("brief"), timeout=20, message="deleted after its TTL")
    assert "Completed" in kubectl.reasons("brief")
    await eventually(lambda: kubectl.status("kept").get("phase") == "Completed")
    assert operators.running is not None and operators.running.ttl.deleted == 1
