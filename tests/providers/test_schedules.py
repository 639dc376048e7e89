"""The store's side of durable schedules, on every provider: a schedule is one row changed
atomically; firing stores a plan's starts and state in one transaction, a tick starts once;
a run ends in the transaction that ends (or deletes) its instance and frees a waiting tick;
the next-due read covers timers and schedules; a lease has one holder; retention deletes
finished trees only. Plans come from the real planner or are written by hand; no runtime."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from duraflow.core import workitems as wi
from duraflow.core.models import DeleteInstanceResult
from duraflow.providers.errors import ScheduleExistsError, ScheduleNotFoundError
from duraflow.providers.items import OutboundMessage, TurnCommit
from duraflow.providers.protocol import Provider
from duraflow.providers.schedule_items import (
    FirePlan,
    ScheduleState,
    StoredSchedule,
    Tick,
    TickStart,
)
from duraflow.schedules import changes
from duraflow.schedules.planner import plan_fire, run_instance_id
from duraflow.schedules.spec import build_spec

from .support import Turns, now_ms, started


def turns_commit(status: str | None) -> TurnCommit:
    """The first turn of a started instance: it ends with ``status`` (None: runs on)."""
    return TurnCommit(execution_id=1, history_delta=[started()], orchestration_name="TestOrch",
                      orchestration_version="1.0.0", status=status,
                      output=None if status is None else '"done"')


def due_schedule(schedule_id: str = "s", overlap: str = "skip", period_ms: int = 10_000,
                 **state: object) -> StoredSchedule:
    """A schedule ``@every period_ms`` whose tick at the last whole period is due now (inside
    its catch-up window however long ago that was)."""
    now = now_ms()
    tick = now - now % period_ms
    spec = build_spec("TestOrch", {"from": schedule_id}, every_ms=period_ms, overlap=overlap,
                      catchup_window_ms=period_ms + 60_000)
    fields = {"next_tick_ms": tick, "due_at_ms": tick, **state}
    return StoredSchedule(schedule_id, spec, ScheduleState(**fields),  # type: ignore[arg-type]
                          created_at_ms=now, updated_at_ms=now)


async def test_a_schedule_is_created_read_listed_changed_and_deleted(provider: Provider) -> None:
    spec = build_spec("TestOrch", [1], cron="0 9 * * MON-FRI", timezone="Europe/Berlin")
    created = changes.new_schedule("nightly", spec, False, None, now_ms())
    await provider.create_schedule(created)
    with pytest.raises(ScheduleExistsError, match="schedule 'nightly' already exists"):
        await provider.create_schedule(created)
    stored = await provider.get_schedule("nightly")
    assert stored is not None
    assert (stored.spec, stored.state, stored.running, stored.runs) == (spec, created.state, (), ())
    paused = await provider.change_schedule("nightly", changes.pause("holiday"))
    assert paused.state.paused and paused.state.note == "holiday"
    assert [s.state for s in await provider.list_schedules()] == [paused.state]
    with pytest.raises(ScheduleNotFoundError, match="schedule 'nope' not found"):
        await provider.change_schedule("nope", changes.resume())
    assert await provider.delete_schedule("nightly") is True
    assert await provider.delete_schedule("nightly") is False
    assert await provider.get_schedule("nightly") is None


async def test_firing_starts_the_due_tick_and_moves_the_schedule_on(provider: Provider) -> None:
    schedule = due_schedule()
    await provider.create_schedule(schedule)
    result = await provider.fire_due_schedules(now_ms(), 10, plan_fire)
    assert (result.taken, result.started) == (1, 1)
    tick = schedule.state.next_tick_ms
    assert tick is not None and result.next_due_ms == tick + 10_000
    item = await provider.fetch_orchestration_item(30_000)
    assert item is not None and item.instance_id == run_instance_id("s", tick)
    assert item.messages[0]["orchestration"] == "TestOrch"
    assert item.messages[0]["input"] == '{"from": "s"}'
    stored = await provider.get_schedule("s")
    assert stored is not None and stored.running == (item.instance_id,)
    assert [(r.instance_id, r.scheduled_at_ms, r.status) for r in stored.runs] == [
        (item.instance_id, tick, "Running")]
    nothing = await provider.fire_due_schedules(now_ms(), 10, plan_fire)
    assert (nothing.taken, nothing.started) == (0, 0)


async def test_a_tick_starts_once_however_often_it_is_planned(provider: Provider) -> None:
    schedule = due_schedule()
    await provider.create_schedule(schedule)
    tick = schedule.state.next_tick_ms
    assert tick is not None
    instance = run_instance_id("s", tick)
    start = TickStart(tick, instance, wi.start_orchestration(instance, "TestOrch", "null"))

    def again(current: StoredSchedule, now: int) -> FirePlan:  # a runtime that retries
        return FirePlan(replace(current.state, due_at_ms=now), starts=(start,))

    first = await provider.fire_due_schedules(now_ms(), 10, again)
    second = await provider.fire_due_schedules(now_ms(), 10, again)
    assert (first.started, second.started) == (1, 0)
    queue = await provider.get_queue_depths()
    assert queue.orchestrator_queue == 1


async def test_a_tick_whose_instance_exists_starts_nothing(
    provider: Provider, turns: Turns
) -> None:
    schedule = due_schedule()
    tick = schedule.state.next_tick_ms
    assert tick is not None
    await turns.create(run_instance_id("s", tick))  # e.g. started by hand, or kept by retention
    await provider.create_schedule(schedule)
    assert (await provider.fire_due_schedules(now_ms(), 10, plan_fire)).started == 0


async def test_concurrent_fires_start_each_tick_once(provider: Provider) -> None:
    for n in range(20):
        await provider.create_schedule(due_schedule(f"s{n}"))
    results = await asyncio.gather(
        *(provider.fire_due_schedules(now_ms(), 7, plan_fire) for _ in range(6)))
    assert sum(r.started for r in results) == 20
    assert (await provider.get_queue_depths()).orchestrator_queue == 20


async def test_a_run_ends_with_its_instance_and_frees_the_tick_that_waits_for_it(
    provider: Provider, turns: Turns
) -> None:
    # A daily schedule: its next regular tick (next midnight UTC) cannot fall inside the test
    # and add a second waiting tick (a 10 s period made this fail when the test crossed one).
    schedule = due_schedule(overlap="buffer_one", period_ms=86_400_000)
    await provider.create_schedule(schedule)
    await provider.fire_due_schedules(now_ms(), 10, plan_fire)
    tick = schedule.state.next_tick_ms
    assert tick is not None
    run = run_instance_id("s", tick)
    # A tick arrives while the run is active: it waits, and the run's end must wake it.
    waiting = await provider.change_schedule("s", changes.trigger())
    assert waiting.state.triggers
    await provider.fire_due_schedules(now_ms(), 10, plan_fire)
    stored = await provider.get_schedule("s")
    assert stored is not None and len(stored.state.waiting) == 1 and stored.state.wake_on_end
    assert stored.state.due_at_ms is not None and stored.state.due_at_ms > now_ms()

    item = await turns.fetch(run)
    await asyncio.sleep(0.2)  # let the notifications of the writes above arrive (PostgreSQL)
    await provider.notifier.wait_schedules(0)  # ... and forget them
    await provider.ack_orchestration_item(item.lock_token, turns_commit(status="Completed"))
    began = time.monotonic()
    await provider.notifier.wait_schedules(5)  # the runtimes hear of it (PostgreSQL: NOTIFY)
    assert time.monotonic() - began < 4
    ended = await provider.get_schedule("s")
    assert ended is not None and ended.running == ()
    assert ended.runs[0].status == "Completed"
    assert ended.state.due_at_ms is not None and ended.state.due_at_ms <= now_ms()
    result = await provider.fire_due_schedules(now_ms(), 10, plan_fire)
    assert result.started == 1


async def test_deleting_an_instance_ends_its_run(provider: Provider, turns: Turns) -> None:
    schedule = due_schedule(waiting=(Tick(1_000, "buffer_all"),), wake_on_end=True)
    await provider.create_schedule(schedule)
    await provider.fire_due_schedules(now_ms(), 10, lambda s, now: FirePlan(
        replace(s.state, due_at_ms=None),
        starts=(TickStart(7_000, "run-7", wi.start_orchestration("run-7", "TestOrch", "null")),)))
    item = await turns.fetch("run-7")
    await provider.ack_orchestration_item(item.lock_token, turns_commit(None))
    await provider.delete_instance_tree("run-7", True)
    stored = await provider.get_schedule("s")
    assert stored is not None and stored.running == ()
    assert stored.runs[0].status == "Deleted" and stored.state.due_at_ms is not None


async def test_a_schedule_keeps_its_newest_runs(provider: Provider, turns: Turns) -> None:
    await provider.create_schedule(due_schedule())
    for n in range(13):
        instance = f"run-{n:02}"

        def one(current: StoredSchedule, now: int, instance: str = instance,
                at: int = 1_000 * (n + 1)) -> FirePlan:
            item = wi.start_orchestration(instance, "TestOrch", "null")
            return FirePlan(replace(current.state, due_at_ms=now), starts=(TickStart(at, instance,
                                                                                    item),))

        await provider.fire_due_schedules(now_ms(), 10, one)
        item = await turns.fetch(instance)
        await provider.ack_orchestration_item(item.lock_token, turns_commit("Completed"))
    stored = await provider.get_schedule("s", runs=50)
    assert stored is not None
    assert [r.instance_id for r in stored.runs] == [f"run-{n:02}" for n in range(12, 1, -1)]


async def test_the_next_due_read_covers_timers_and_schedules(provider: Provider,
                                                             turns: Turns) -> None:
    assert (await provider.next_due_ms()) == type(await provider.next_due_ms())(None, None)
    await turns.create("t")
    timer = now_ms() + 60_000
    await provider.enqueue_orchestrator(
        OutboundMessage("t", wi.external_raised("t", "e", "1"), visible_at_ms=timer))
    await provider.create_schedule(due_schedule(due_at_ms=timer + 5))
    due = await provider.next_due_ms()
    assert (due.orchestrator_ms, due.schedules_ms) == (timer, timer + 5)


async def test_a_lease_has_one_holder_until_it_expires(provider: Provider) -> None:
    assert await provider.try_lease("retention", "a", 60_000)
    assert await provider.try_lease("retention", "a", 60_000)  # renewed
    assert not await provider.try_lease("retention", "b", 60_000)
    assert await provider.try_lease("other", "b", 60_000)
    assert await provider.try_lease("short", "a", 1)
    await asyncio.sleep(0.01)
    assert await provider.try_lease("short", "b", 60_000)  # a's expired


async def test_retention_deletes_finished_trees_and_never_a_running_instance(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("done", status="Completed", output="1")
    await turns.create("running")
    await turns.create("running-child", parent="running", status="Completed", output="1")
    await turns.create("done-parent", status="Completed", output="1")
    await turns.create("live-child", parent="done-parent")  # left running by its parent
    cutoff = now_ms() + 1
    while now_ms() <= cutoff:
        await asyncio.sleep(0.001)
    await turns.create("too-young", status="Completed", output="1")
    page = await provider.delete_finished_instances(cutoff, 100)
    assert isinstance(page.result, DeleteInstanceResult) and page.result.instances_deleted == 1
    assert page.deleted == ["done"] and page.scanned == 2  # "done" and the skipped "done-parent"
    assert sorted(await provider.list_instances()) == [
        "done-parent", "live-child", "running", "running-child", "too-young"]


async def test_retention_pages_past_trees_that_still_run(provider: Provider, turns: Turns) -> None:
    # The oldest finished roots still have a running child: a page that only looks at them
    # deletes nothing, and the next page starts after them instead of at them again.
    for n in range(3):
        await turns.create(f"stuck-{n}", status="Completed", output="1")
        await turns.create(f"stuck-{n}-child", parent=f"stuck-{n}")
    await turns.create("expired", status="Completed", output="1")
    cutoff = now_ms() + 1
    while now_ms() <= cutoff:
        await asyncio.sleep(0.001)
    first = await provider.delete_finished_instances(cutoff, 3)
    assert (first.scanned, first.deleted) == (3, [])
    again = await provider.delete_finished_instances(cutoff, 3)
    assert again.deleted == []  # the same three from the start: why retention pages
    second = await provider.delete_finished_instances(cutoff, 3, first.last)
    assert (second.scanned, second.deleted) == (1, ["expired"])
    assert "expired" not in await provider.list_instances()


async def test_a_retention_sweep_reaches_expired_roots_behind_trees_that_still_run(
    provider: Provider, turns: Turns, monkeypatch: pytest.MonkeyPatch
) -> None:
    from duraflow.runtime import retention
    from duraflow.runtime.metrics import Metrics

    monkeypatch.setattr(retention, "BATCH", 2)  # two full pages of stuck roots, then the rest
    monkeypatch.setattr(retention, "BATCH_PAUSE_S", 0)
    for n in range(4):
        await turns.create(f"stuck-{n}", status="Completed", output="1")
        await turns.create(f"stuck-{n}-child", parent=f"stuck-{n}")
    await turns.create("expired", status="Completed", output="1")
    sweeper = retention.Retention(provider, 1_000, "node-a/1", Metrics())
    start = now_ms()
    while now_ms() < start + 1_001:  # everything above has now finished over 1 s ago
        await asyncio.sleep(0.01)
    assert await sweeper.sweep() == 1
    remaining = await provider.list_instances()
    assert "expired" not in remaining and len(remaining) == 8
