"""A schedule's row as both providers store it: the column order, and rows to and from
``StoredSchedule``. Written once because neither provider may import the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from duraflow.providers.schedule_items import (
    RunRecord,
    ScheduleSpec,
    ScheduleState,
    StoredSchedule,
)

#: The columns of the ``schedules`` table, in the order ``schedule_params`` fills them.
SCHEDULE_COLUMNS = (
    "schedule_id", "orchestration", "version", "input", "cron", "every_ms", "timezone",
    "overlap", "catchup_window_ms", "jitter_ms", "paused", "note", "next_tick_at", "pending",
    "wake_on_end", "missed", "due_at", "created_at", "updated_at",
)
#: The columns a change rewrites (all but the id and the creation time).
CHANGED_COLUMNS = SCHEDULE_COLUMNS[1:17]
#: The columns of ``schedule_runs`` that describe a run, in ``RunRecord``'s order.
RUN_COLUMNS = ("instance_id", "scheduled_at", "started_at", "status", "ended_at")
#: How many ended runs a schedule keeps (and ``describe_schedule`` shows at most).
RUNS_KEPT = 10


def schedule_params(schedule: StoredSchedule) -> tuple[Any, ...]:
    """The values of ``SCHEDULE_COLUMNS`` for ``schedule``."""
    spec, state = schedule.spec, schedule.state
    return (
        schedule.schedule_id, spec.orchestration, spec.version, spec.input, spec.cron,
        spec.every_ms, spec.timezone, spec.overlap, spec.catchup_window_ms, spec.jitter_ms,
        state.paused, state.note, state.next_tick_ms, state.pending_json(), state.wake_on_end,
        state.missed, state.due_at_ms, schedule.created_at_ms, schedule.updated_at_ms,
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def schedule_from_row(
    row: Sequence[Any], running: Sequence[str] = (), runs: Sequence[Sequence[Any]] = ()
) -> StoredSchedule:
    """A ``StoredSchedule`` from a row in ``SCHEDULE_COLUMNS`` order, the instance ids of its
    active runs and its newest runs (rows in ``RUN_COLUMNS`` order)."""
    spec = ScheduleSpec(
        orchestration=str(row[1]), input=str(row[3]),
        version=None if row[2] is None else str(row[2]),
        cron=None if row[4] is None else str(row[4]), every_ms=_int(row[5]),
        timezone=str(row[6]), overlap=str(row[7]), catchup_window_ms=int(row[8]),
        jitter_ms=int(row[9]),
    )
    state = ScheduleState(
        paused=bool(row[10]), note=None if row[11] is None else str(row[11]),
        next_tick_ms=_int(row[12]), missed=int(row[15]), due_at_ms=_int(row[16]),
        wake_on_end=bool(row[14]), **ScheduleState.pending_from_json(row[13]),
    )
    return StoredSchedule(
        schedule_id=str(row[0]), spec=spec, state=state,
        running=tuple(str(i) for i in running), created_at_ms=int(row[17]),
        updated_at_ms=int(row[18]),
        runs=tuple(RunRecord(str(r[0]), int(r[1]), int(r[2]), str(r[3]), _int(r[4]))
                   for r in runs),
    )
