"""What a client's call does to a schedule's state: pure functions of the stored schedule.

Each returns a ``ScheduleChange`` that the provider applies inside the transaction holding
the schedule, so a change never races a runtime firing it (the fire waits, or sees the new
state). Every change recomputes ``due_at`` with the planner's own rule, so the schedule is
found by the next runtime that looks.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from duraflow.providers.schedule_items import (
    OVERLAP_POLICIES,
    Backfill,
    ScheduleChange,
    ScheduleSpec,
    ScheduleState,
    StoredSchedule,
    Tick,
)
from duraflow.schedules.errors import InvalidScheduleError
from duraflow.schedules.planner import due_at
from duraflow.schedules.spec import TIMING_FIELDS, updated_spec
from duraflow.schedules.ticks import tick_source


def first_tick_after(spec: ScheduleSpec, after_ms: int) -> int | None:
    return next(tick_source(spec.cron, spec.every_ms, spec.timezone).after(after_ms), None)


def _redue(schedule: StoredSchedule, state: ScheduleState, now_ms: int) -> StoredSchedule:
    """``schedule`` with ``state``, due when the planner would want it."""
    work_now = bool(state.triggers or state.backfills
                    or (state.waiting and not schedule.running))
    due = due_at(schedule.schedule_id, schedule.spec, state, now_ms, work_now)
    return schedule.with_state(replace(state, due_at_ms=due))


def new_schedule(schedule_id: str, spec: ScheduleSpec, paused: bool, note: str | None,
                 now_ms: int) -> StoredSchedule:
    """A schedule as created: its first tick is the first after now."""
    state = ScheduleState(paused=paused, note=note,
                          next_tick_ms=first_tick_after(spec, now_ms))
    fresh = StoredSchedule(schedule_id, spec, state, created_at_ms=now_ms,
                           updated_at_ms=now_ms)
    return _redue(fresh, state, now_ms)


def update(fields: dict[str, Any]) -> ScheduleChange:
    """New spec fields (validated against the stored ones). A change of timing (cron,
    every_ms, timezone) restarts the clock at the first new tick after now; other changes
    keep the next tick, so an overdue one still fires."""
    def change(current: StoredSchedule, now_ms: int) -> StoredSchedule:
        spec = updated_spec(current.spec, fields)
        state = current.state
        if any(getattr(spec, name) != getattr(current.spec, name) for name in TIMING_FIELDS):
            state = replace(state, next_tick_ms=first_tick_after(spec, now_ms))
        return _redue(replace(current, spec=spec), state, now_ms)
    return change


def pause(note: str | None) -> ScheduleChange:
    """No more own ticks (triggers, backfills and waiting ticks still start)."""
    def change(current: StoredSchedule, now_ms: int) -> StoredSchedule:
        return _redue(current, replace(current.state, paused=True, note=note), now_ms)
    return change


def resume() -> ScheduleChange:
    """Ticks again from the first one after now: ticks that fell while paused neither fire
    nor count as missed (they were not wanted)."""
    def change(current: StoredSchedule, now_ms: int) -> StoredSchedule:
        state = current.state
        if state.paused:
            state = replace(state, paused=False, note=None,
                            next_tick_ms=first_tick_after(current.spec, now_ms))
        return _redue(current, state, now_ms)
    return change


def trigger() -> ScheduleChange:
    """A tick now (at the current second), through the schedule's overlap policy."""
    def change(current: StoredSchedule, now_ms: int) -> StoredSchedule:
        tick = Tick(now_ms - now_ms % 1000, current.spec.overlap)
        state = replace(current.state, triggers=(*current.state.triggers, tick))
        return _redue(current, state, now_ms)
    return change


def backfill(start_ms: int, end_ms: int, overlap: str | None) -> ScheduleChange:
    """Every tick in ``[start_ms, end_ms)``, oldest first, through ``overlap`` (default: the
    schedule's policy)."""
    for name, value in (("start_ms", start_ms), ("end_ms", end_ms)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidScheduleError(name, f"must be epoch milliseconds, got {value!r}")
    if end_ms <= start_ms:
        raise InvalidScheduleError("end_ms", f"must be after start_ms ({end_ms} <= {start_ms})")
    if overlap is not None and overlap not in OVERLAP_POLICIES:
        raise InvalidScheduleError("overlap", f"unknown policy {overlap!r}; one of "
                                              f"{', '.join(OVERLAP_POLICIES)}")

    def change(current: StoredSchedule, now_ms: int) -> StoredSchedule:
        policy = overlap or current.spec.overlap
        state = replace(current.state, backfills=(*current.state.backfills,
                                                  Backfill(start_ms, end_ms, policy)))
        return _redue(current, state, now_ms)
    return change
