"""Firing a due schedule, with the clock passed in: overlap policies, catch-up, jitter,
backfills, triggers and the bound on one plan's work (duraflow/schedules/planner.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from duraflow.providers.schedule_items import (
    Backfill,
    FirePlan,
    ScheduleState,
    StoredSchedule,
    Tick,
)
from duraflow.schedules import changes
from duraflow.schedules.planner import (
    MAX_STARTS,
    jitter_offset,
    plan_fire,
    run_instance_id,
)
from duraflow.schedules.spec import build_spec

T0 = 1_800_000_000_000  # a whole second (and 10 s)
S = 1_000


def schedule(overlap: str = "skip", running: tuple[str, ...] = (), every_s: int = 10,
             **state: Any) -> StoredSchedule:
    spec = build_spec("Job", None, cron=f"@every {every_s}s", overlap=overlap,
                      catchup_window_ms=state.pop("window", 60_000),
                      jitter_ms=state.pop("jitter", 0))
    state.setdefault("next_tick_ms", T0)
    return StoredSchedule("sched", spec, ScheduleState(**state), running=running)


def started(plan: FirePlan) -> list[int]:
    return [(s.at_ms - T0) // S for s in plan.starts]


def test_a_due_tick_starts_its_instance_and_the_schedule_moves_to_the_next() -> None:
    plan = plan_fire(schedule(), T0 + 3)
    assert started(plan) == [0]
    start = plan.starts[0]
    assert start.instance_id == run_instance_id("sched", T0)
    assert start.item["instance"] == start.instance_id and start.item["orchestration"] == "Job"
    assert plan.state.next_tick_ms == T0 + 10 * S and plan.state.due_at_ms == T0 + 10 * S
    assert plan.state.missed == 0 and not plan.cancels and not plan.state.wake_on_end


def test_nothing_is_due_before_its_time() -> None:
    plan = plan_fire(schedule(), T0 - 1)
    assert plan.starts == () and plan.state.next_tick_ms == T0


# ─── Overlap: three ticks arrive while a run is active ────────────────────────────────


def burst(overlap: str) -> FirePlan:
    """Ticks at T0, T0+10s, T0+20s all due now (within the window) while 'old' runs."""
    return plan_fire(schedule(overlap, running=("old",)), T0 + 20 * S + 5)


def test_skip_counts_ticks_that_arrive_during_a_run_as_missed() -> None:
    plan = burst("skip")
    assert plan.starts == () and plan.state.missed == 3 and not plan.state.waiting


def test_buffer_one_keeps_the_first_tick_waiting_and_misses_the_rest() -> None:
    plan = burst("buffer_one")
    assert plan.starts == () and plan.state.missed == 2
    assert [t.at_ms for t in plan.state.waiting] == [T0]
    assert plan.state.wake_on_end and plan.state.due_at_ms == T0 + 30 * S


def test_buffer_all_keeps_every_tick_waiting_in_order() -> None:
    plan = burst("buffer_all")
    assert [(t.at_ms - T0) // S for t in plan.state.waiting] == [0, 10, 20]
    assert plan.state.missed == 0 and plan.state.wake_on_end


def test_cancel_other_cancels_the_run_and_keeps_only_the_newest_tick_waiting() -> None:
    plan = burst("cancel_other")
    assert [i for i, _ in plan.cancels] == ["old"]
    assert plan.cancels[0][1]["type"] == "CancelInstance"
    assert [(t.at_ms - T0) // S for t in plan.state.waiting] == [20]
    assert plan.state.missed == 2 and plan.state.wake_on_end


def test_allow_all_starts_every_tick() -> None:
    assert started(burst("allow_all")) == [0, 10, 20]


def test_with_nothing_running_the_first_tick_starts_and_the_others_meet_it() -> None:
    plan = plan_fire(schedule("skip"), T0 + 20 * S)
    assert started(plan) == [0] and plan.state.missed == 2


def test_a_waiting_tick_starts_once_the_runs_have_ended() -> None:
    waiting = (Tick(T0, "buffer_all"), Tick(T0 + 10 * S, "buffer_all"))
    still = plan_fire(schedule("buffer_all", running=("old",), next_tick_ms=T0 + 60 * S,
                               waiting=waiting, wake_on_end=True), T0 + 30 * S)
    assert still.starts == () and len(still.state.waiting) == 2
    assert still.state.due_at_ms == T0 + 60 * S  # the end of "old" will make it due
    ended = plan_fire(schedule("buffer_all", next_tick_ms=T0 + 60 * S, waiting=waiting,
                               wake_on_end=True), T0 + 30 * S)
    assert started(ended) == [0] and [t.at_ms for t in ended.state.waiting] == [T0 + 10 * S]
    assert ended.state.wake_on_end


# ─── Catch-up ─────────────────────────────────────────────────────────────────────────


def test_ticks_older_than_the_catch_up_window_are_missed_and_the_rest_fire() -> None:
    # Down from T0 to T0+60s with a 25 s window: ticks 0..30 are too old, 40..60 catch up.
    plan = plan_fire(schedule("allow_all", window=25 * S), T0 + 60 * S + 1)
    assert started(plan) == [40, 50, 60] and plan.state.missed == 4
    assert plan.state.next_tick_ms == T0 + 70 * S


def test_a_long_outage_is_counted_without_walking_every_tick() -> None:
    year = 365 * 86_400 * S
    plan = plan_fire(schedule("skip", every_s=1, window=2 * S), T0 + year)
    assert started(plan) == [year // S - 2] and plan.state.missed == year // S
    assert plan.state.next_tick_ms == T0 + year + S


def test_cron_catch_up_walks_the_missed_ticks() -> None:
    spec = build_spec("Job", None, cron="*/5 * * * *", catchup_window_ms=7 * 60 * S)
    hour = StoredSchedule("c", spec, ScheduleState(next_tick_ms=T0 - 60 * 60 * S))
    plan = plan_fire(hour, T0 + 1)
    # 13 ticks from T0-60min: 11 older than the window, T0-5min starts, T0 meets it (skip).
    assert len(plan.starts) == 1 and plan.state.missed == 12


# ─── Jitter, triggers, backfills, pause, bounds ───────────────────────────────────────


def test_jitter_is_a_stable_offset_within_its_bound() -> None:
    offsets = [jitter_offset("sched", T0 + n * S, 3_000) for n in range(200)]
    assert all(0 <= o <= 3_000 for o in offsets) and len(set(offsets)) > 100
    assert offsets == [jitter_offset("sched", T0 + n * S, 3_000) for n in range(200)]
    assert jitter_offset("other", T0, 3_000) != jitter_offset("sched", T0, 3_000)
    delay = jitter_offset("sched", T0, 3_000)
    assert plan_fire(schedule(jitter=3_000), T0 + delay - 1).starts == ()
    assert started(plan_fire(schedule(jitter=3_000), T0 + delay)) == [0]


def test_a_trigger_is_a_tick_now_through_the_overlap_policy() -> None:
    now = T0 + 4 * S
    base = schedule("skip", next_tick_ms=T0 + 10 * S)
    plan = plan_fire(changes.trigger()(base, now + 300), now + 300)
    assert started(plan) == [4] and not plan.state.triggers
    busy = plan_fire(changes.trigger()(replace(base, running=("old",)), now), now)
    assert busy.starts == () and busy.state.missed == 1


def test_a_trigger_in_the_second_of_a_tick_is_that_tick() -> None:
    base = changes.trigger()(schedule("allow_all"), T0 + 200)
    assert started(plan_fire(base, T0 + 200)) == [0]


def test_a_backfill_runs_its_ticks_oldest_first_after_the_own_ticks_are_left_alone() -> None:
    base = schedule("allow_all", next_tick_ms=T0 + 100 * S)
    with_backfill = changes.backfill(T0 - 30 * S, T0, None)(base, T0)
    assert with_backfill.state.due_at_ms == T0
    plan = plan_fire(with_backfill, T0)
    assert started(plan) == [-30, -20, -10]  # [start, end): T0 itself is not included
    assert not plan.state.backfills and plan.state.next_tick_ms == T0 + 100 * S


def test_a_buffer_all_backfill_waits_behind_a_run_without_queueing_its_whole_range() -> None:
    base = changes.backfill(T0 - 1_000 * S, T0, "buffer_all")(
        schedule("skip", next_tick_ms=T0 + 100 * S), T0)
    plan = plan_fire(base, T0)
    assert started(plan) == [-1_000]
    assert [(t.at_ms - T0) // S for t in plan.state.waiting] == [-990]
    assert plan.state.backfills == (Backfill(T0 - 980 * S, T0, "buffer_all"),)
    assert plan.state.wake_on_end and plan.state.due_at_ms == T0 + 100 * S


def test_a_paused_schedule_starts_no_own_ticks_but_triggers_and_backfills_run() -> None:
    paused = schedule("allow_all", paused=True)
    plan = plan_fire(paused, T0 + 30 * S)
    assert plan.starts == () and plan.state.next_tick_ms == T0 and plan.state.due_at_ms is None
    triggered = changes.trigger()(paused, T0 + 30 * S)
    assert started(plan_fire(triggered, T0 + 30 * S)) == [30]


def test_resume_skips_the_paused_ticks_without_counting_them() -> None:
    paused = schedule("skip", paused=True, note="maintenance")
    resumed = changes.resume()(paused, T0 + 95 * S)
    assert resumed.state.next_tick_ms == T0 + 100 * S and resumed.state.missed == 0
    assert not resumed.state.paused and resumed.state.note is None


def test_one_plan_does_bounded_work_and_leaves_the_rest_due_now() -> None:
    plan = plan_fire(schedule("allow_all", every_s=1, window=3_600 * S), T0 + 1_000 * S)
    assert len(plan.starts) == MAX_STARTS
    assert plan.state.due_at_ms is not None and plan.state.due_at_ms <= T0 + 1_000 * S
    again = plan_fire(schedule("allow_all", every_s=1, window=3_600 * S,
                               next_tick_ms=plan.state.next_tick_ms), T0 + 1_000 * S)
    assert started(again)[0] == MAX_STARTS


@pytest.mark.parametrize("overlap", ["skip", "buffer_one", "buffer_all", "cancel_other",
                                     "allow_all"])
def test_every_tick_is_started_waiting_or_missed(overlap: str) -> None:
    plan = plan_fire(schedule(overlap, running=("old",), every_s=1), T0 + 50 * S)
    waiting = len(plan.state.waiting)
    assert len(plan.starts) + waiting + plan.state.missed == 51
