"""Durable schedules end to end: a runtime fires their ticks, the overlap policies hold with a
long-running orchestration, pause / resume / trigger / backfill / update act, and bad input
gets its specific error. The real-time cases run on SQLite (in memory) and PostgreSQL; the
overlap cases make their ticks with a backfill, so they wait for nothing but the engine."""

from __future__ import annotations

import time
from itertools import pairwise
from typing import Any

import pytest

from duraflow import (
    InvalidCronError,
    InvalidScheduleError,
    ScheduleExistsError,
    ScheduleInfo,
    ScheduleNotFoundError,
    UnknownTimeZoneError,
)
from duraflow.schedules.planner import run_instance_id

from .conftest import Store
from .support import TIMEOUT_MS, completed, poll_until

HOUR = 3_600_000


def register(rt: Any) -> None:
    @rt.register_orchestration("Echo")
    def echo(ctx: Any, value: Any) -> Any:
        return value
        yield  # a generator

    @rt.register_orchestration("Wait")
    def wait(ctx: Any, _: Any) -> Any:
        return (yield ctx.wait_for_event("go"))


def real_time(store: Store) -> None:
    if store.kind == "sqlite-file":
        pytest.skip("the real-time cases run on sqlite-memory (the same engine) and postgres")


def runs(client: Any, schedule_id: str, count: int) -> ScheduleInfo:
    """The schedule once it has ``count`` runs (deadline, no fixed sleep)."""
    return poll_until(lambda: (i := client.describe_schedule(schedule_id)).last_runs
                      and len(i.last_runs) >= count and i, f"{count} runs of {schedule_id}")


def test_every_second_starts_one_instance_per_tick_named_by_its_time(
    store: Store, start_runtime: Any, client: Any
) -> None:
    real_time(store)
    start_runtime(register)
    created = client.create_schedule("beat", "Echo", {"n": 1}, cron="@every 1s")
    assert [b - a for a, b in pairwise(created.next_run_times_ms)] == [1_000] * 4
    info = runs(client, "beat", 3)
    ticks = sorted(r.scheduled_at_ms for r in info.last_runs)
    assert all(b - a == 1_000 for a, b in pairwise(ticks))
    for run in info.last_runs:
        assert run.instance_id == run_instance_id("beat", run.scheduled_at_ms)
        assert 0 <= run.started_at_ms - run.scheduled_at_ms < 1_000
        assert completed(client.wait_for_orchestration(run.instance_id, TIMEOUT_MS)) == {"n": 1}


def _backfill_three(client: Any, overlap: str) -> list[str]:
    """Three hourly ticks arrive at once while paused (own ticks off): the overlap policy
    decides what each does. Returns their instance ids, oldest first."""
    client.create_schedule("job", "Wait", cron="@hourly", overlap=overlap, paused=True)
    now = int(time.time() * 1000)
    start = now - now % HOUR - 3 * HOUR
    client.backfill_schedule("job", start, start + 3 * HOUR)
    return [run_instance_id("job", start + n * HOUR) for n in range(3)]


def _running(client: Any, instance_id: str) -> None:
    poll_until(lambda: client.get_status(instance_id).status == "Running", instance_id)


def _finish(client: Any, instance_id: str) -> None:
    _running(client, instance_id)
    client.raise_event(instance_id, "go", instance_id)
    completed(client.wait_for_orchestration(instance_id, TIMEOUT_MS))


def _settled(client: Any, running: list[str], buffered: int, missed: int) -> ScheduleInfo:
    return poll_until(lambda: (i := client.describe_schedule("job")).running == running
                      and i.buffered == buffered and i.missed == missed and i,
                      f"running {running}, {buffered} buffered, {missed} missed")


def test_skip_runs_the_first_and_counts_the_others(start_runtime: Any, client: Any) -> None:
    start_runtime(register)
    t0, _, _ = _backfill_three(client, "skip")
    _settled(client, [t0], 0, 2)
    _finish(client, t0)
    info = _settled(client, [], 0, 2)
    assert [r.instance_id for r in info.last_runs] == [t0]


def test_buffer_one_starts_one_waiting_tick_when_the_run_ends(
    start_runtime: Any, client: Any
) -> None:
    start_runtime(register)
    t0, t1, _ = _backfill_three(client, "buffer_one")
    _settled(client, [t0], 1, 1)
    _finish(client, t0)
    _settled(client, [t1], 0, 1)  # started by the end of t0, not by polling the schedule
    _finish(client, t1)
    assert [r.status for r in _settled(client, [], 0, 1).last_runs] == ["Completed"] * 2


def test_buffer_all_runs_every_tick_one_after_the_other(start_runtime: Any, client: Any) -> None:
    start_runtime(register)
    t0, t1, t2 = _backfill_three(client, "buffer_all")
    _settled(client, [t0], 1, 0)
    _finish(client, t0)
    _settled(client, [t1], 1, 0)
    _finish(client, t1)
    _settled(client, [t2], 0, 0)
    _finish(client, t2)
    info = _settled(client, [], 0, 0)
    assert [r.instance_id for r in info.last_runs] == [t2, t1, t0]


def test_cancel_other_cancels_the_run_and_starts_the_newest_tick(
    start_runtime: Any, client: Any
) -> None:
    start_runtime(register)
    t0, _, t2 = _backfill_three(client, "cancel_other")
    _settled(client, [t2], 0, 1)
    assert client.wait_for_orchestration(t0, TIMEOUT_MS).status == "Failed"  # cancelled
    _finish(client, t2)
    info = _settled(client, [], 0, 1)
    assert [(r.instance_id, r.status) for r in info.last_runs] == [
        (t2, "Completed"), (t0, "Failed")]


def test_allow_all_starts_every_tick_at_once(start_runtime: Any, client: Any) -> None:
    start_runtime(register)
    ticks = _backfill_three(client, "allow_all")
    _settled(client, ticks, 0, 0)
    for instance_id in ticks:
        _finish(client, instance_id)


def test_own_ticks_meet_a_long_run_through_the_policy(
    store: Store, start_runtime: Any, client: Any
) -> None:
    real_time(store)
    start_runtime(register)
    client.create_schedule("slow", "Wait", cron="@every 1s")  # overlap skip
    first = runs(client, "slow", 1).last_runs[0].instance_id
    info = poll_until(lambda: (i := client.describe_schedule("slow")).missed >= 2 and i,
                      "two ticks skipped")
    assert info.running == [first] and [r.instance_id for r in info.last_runs] == [first]
    _finish(client, first)


def test_pause_stops_the_ticks_and_resume_starts_them_again(
    store: Store, start_runtime: Any, client: Any
) -> None:
    real_time(store)
    start_runtime(register)
    client.create_schedule("p", "Echo", cron="@every 1s", paused=True)
    client.pause_schedule("p", "maintenance")
    info = client.describe_schedule("p")
    assert info.paused and info.note == "maintenance" and info.next_run_times_ms == []
    time.sleep(1.5)  # long enough for a tick to fall: none may start while paused
    assert client.describe_schedule("p").last_runs == []
    client.resume_schedule("p")
    resumed = runs(client, "p", 1)
    assert not resumed.paused and resumed.note is None and resumed.missed == 0


def test_trigger_runs_now_and_update_changes_what_runs(start_runtime: Any, client: Any) -> None:
    start_runtime(register)
    client.create_schedule("t", "Echo", "old", cron="0 0 1 1 *", timezone="Pacific/Auckland")
    updated = client.update_schedule("t", input="new", timezone="Europe/Berlin")
    assert (updated.input, updated.timezone, updated.cron) == ("new", "Europe/Berlin",
                                                                "0 0 1 1 *")
    before = int(time.time() * 1000)
    client.trigger_schedule("t")
    run = runs(client, "t", 1).last_runs[0]
    assert before - 1_000 < run.scheduled_at_ms <= int(time.time() * 1000)
    assert run.instance_id == run_instance_id("t", run.scheduled_at_ms)
    assert completed(client.wait_for_orchestration(run.instance_id, TIMEOUT_MS)) == "new"


def test_backfill_runs_every_tick_of_the_range_oldest_first(
    start_runtime: Any, client: Any
) -> None:
    start_runtime(register)
    client.create_schedule("b", "Echo", 7, cron="0 * * * *")
    now = int(time.time() * 1000)
    start = now - now % HOUR - 5 * HOUR
    client.backfill_schedule("b", start + 1, start + 4 * HOUR, overlap="allow_all")
    info = runs(client, "b", 3)
    ordered = sorted(info.last_runs, key=lambda r: r.scheduled_at_ms)
    assert [r.scheduled_at_ms - start for r in ordered] == [HOUR, 2 * HOUR, 3 * HOUR]
    for run in ordered:
        assert completed(client.wait_for_orchestration(run.instance_id, TIMEOUT_MS)) == 7
    client.backfill_schedule("b", start, start + 4 * HOUR, overlap="allow_all")  # again
    again = poll_until(lambda: (i := client.describe_schedule("b")).last_runs and len(
        i.last_runs) == 4 and i, "the one new tick of the second backfill")
    assert min(r.scheduled_at_ms for r in again.last_runs) == start  # the rest ran already


def test_bad_input_gets_a_specific_error(client: Any) -> None:
    with pytest.raises(InvalidCronError, match="invalid expression '0 9 \\* \\*'"):
        client.create_schedule("x", "Echo", cron="0 9 * *")
    with pytest.raises(UnknownTimeZoneError, match="Mars/Olympus"):
        client.create_schedule("x", "Echo", cron="@daily", timezone="Mars/Olympus")
    with pytest.raises(InvalidScheduleError, match="exactly one of cron"):
        client.create_schedule("x", "Echo")
    assert client.list_schedules() == []  # nothing was written
    client.create_schedule("x", "Echo", every_ms=60_000)
    with pytest.raises(ScheduleExistsError):
        client.create_schedule("x", "Echo", every_ms=60_000)
    with pytest.raises(InvalidCronError):
        client.update_schedule("x", cron="@fortnightly")
    with pytest.raises(InvalidScheduleError, match="end_ms: must be after start_ms"):
        client.backfill_schedule("x", 2_000, 1_000)
    for call in (lambda: client.describe_schedule("nope"), lambda: client.pause_schedule("nope"),
                 lambda: client.resume_schedule("nope"), lambda: client.trigger_schedule("nope"),
                 lambda: client.update_schedule("nope", jitter_ms=5),
                 lambda: client.delete_schedule("nope")):
        with pytest.raises(ScheduleNotFoundError, match="schedule 'nope' not found"):
            call()
    assert [i.schedule_id for i in client.list_schedules()] == ["x"]
    client.delete_schedule("x")
    assert client.list_schedules() == []
