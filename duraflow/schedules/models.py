"""What ``describe_schedule`` and ``list_schedules`` return: ``ScheduleInfo``, ``ScheduleRun``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from duraflow.core.limits import decode_payload
from duraflow.providers.schedule_items import StoredSchedule
from duraflow.schedules.ticks import next_ticks, tick_source

#: How many future tick times ``ScheduleInfo.next_run_times_ms`` lists.
NEXT_RUNS = 5


@dataclass(frozen=True, slots=True)
class ScheduleRun:
    """One tick that started an instance. ``status``: the instance's ``Running``,
    ``Completed`` or ``Failed`` as the schedule saw it end, or ``Deleted``."""

    instance_id: str
    scheduled_at_ms: int
    started_at_ms: int
    status: str


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A schedule: its definition, state and recent runs. Times are epoch milliseconds.

    ``next_run_times_ms``: the next ticks it will handle (none while paused), before
    jitter. ``last_runs``: the newest runs, newest first (at most ten). ``running``:
    instance ids of its runs that have not ended. ``buffered``: ticks waiting for them to
    end. ``missed``: ticks that started nothing (skipped by the overlap policy, beyond the
    buffer, or later than the catch-up window).
    """

    schedule_id: str
    orchestration: str
    input: Any
    version: str | None
    cron: str | None
    every_ms: int | None
    timezone: str
    overlap: str
    catchup_window_ms: int
    jitter_ms: int
    paused: bool
    note: str | None
    next_run_times_ms: list[int]
    last_runs: list[ScheduleRun]
    running: list[str]
    buffered: int
    missed: int
    created_at_ms: int
    updated_at_ms: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (``duraflow schedules --json``)."""
        return asdict(self)


def schedule_info(schedule: StoredSchedule) -> ScheduleInfo:
    spec, state = schedule.spec, schedule.state
    upcoming: list[int] = []
    if not state.paused and state.next_tick_ms is not None:
        source = tick_source(spec.cron, spec.every_ms, spec.timezone)
        upcoming = [state.next_tick_ms, *next_ticks(source, state.next_tick_ms, NEXT_RUNS - 1)]
    return ScheduleInfo(
        schedule_id=schedule.schedule_id, orchestration=spec.orchestration,
        input=decode_payload(spec.input), version=spec.version, cron=spec.cron,
        every_ms=spec.every_ms, timezone=spec.timezone, overlap=spec.overlap,
        catchup_window_ms=spec.catchup_window_ms, jitter_ms=spec.jitter_ms,
        paused=state.paused, note=state.note, next_run_times_ms=upcoming,
        last_runs=[ScheduleRun(r.instance_id, r.scheduled_at_ms, r.started_at_ms, r.status)
                   for r in schedule.runs],
        running=list(schedule.running), buffered=len(state.waiting), missed=state.missed,
        created_at_ms=schedule.created_at_ms, updated_at_ms=schedule.updated_at_ms,
    )
