"""The plain data a provider keeps for a durable schedule, and what firing one writes.

A provider stores a schedule and applies changes to it atomically, but never computes a tick:
the cron arithmetic, time zones and overlap rules live above it (``duraflow.schedules``),
which hands the provider a ``ScheduleChange`` or a ``FirePlan`` to store. Kept apart from
``items`` (the orchestration turn's vocabulary) because the two never meet.

Times are milliseconds since the Unix epoch. A tick is identified by its *scheduled* time
(``at_ms``, before jitter); the instance it starts is ``<schedule id>-<that time in UTC>``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from duraflow.core.workitems import WorkItem

#: Overlap policies: what a tick does while an earlier run of its schedule still runs.
SKIP = "skip"
BUFFER_ONE = "buffer_one"
BUFFER_ALL = "buffer_all"
CANCEL_OTHER = "cancel_other"
ALLOW_ALL = "allow_all"
OVERLAP_POLICIES = (SKIP, BUFFER_ONE, BUFFER_ALL, CANCEL_OTHER, ALLOW_ALL)

#: The status of a run whose instance was deleted before it finished.
RUN_DELETED = "Deleted"


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """What a schedule starts and when: the fields a client sets. ``input`` is the encoded
    JSON payload; exactly one of ``cron`` / ``every_ms`` is set."""

    orchestration: str
    input: str
    version: str | None
    cron: str | None
    every_ms: int | None
    timezone: str
    overlap: str
    catchup_window_ms: int
    jitter_ms: int


@dataclass(frozen=True, slots=True)
class Tick:
    """A tick waiting to start: buffered behind a running run, or requested (a trigger)."""

    at_ms: int
    overlap: str


@dataclass(frozen=True, slots=True)
class Backfill:
    """The ticks of ``[next_ms, end_ms)`` not yet handled, each going through ``overlap``."""

    next_ms: int
    end_ms: int
    overlap: str


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """Where a schedule stands; every write replaces it whole.

    ``next_tick_ms``: the next regular tick not yet handled (None: the expression never
    matches again). ``waiting``: ticks buffered until no run is active, oldest first.
    ``triggers`` and ``backfills``: requested by clients, not yet handled. ``due_at_ms``:
    when a runtime must look at the schedule next (None: nothing to do until a change);
    the store's index on it is how runtimes find due schedules. ``wake_on_end``: a run's
    end must make the schedule due now (something waits for it), which the store does in
    the same transaction as that end.
    """

    paused: bool = False
    note: str | None = None
    next_tick_ms: int | None = None
    waiting: tuple[Tick, ...] = ()
    triggers: tuple[Tick, ...] = ()
    backfills: tuple[Backfill, ...] = ()
    missed: int = 0
    due_at_ms: int | None = None
    wake_on_end: bool = False

    def pending_json(self) -> str:
        """``waiting``, ``triggers`` and ``backfills`` as the one JSON column that keeps them."""
        return json.dumps({
            "waiting": [[t.at_ms, t.overlap] for t in self.waiting],
            "triggers": [[t.at_ms, t.overlap] for t in self.triggers],
            "backfills": [[b.next_ms, b.end_ms, b.overlap] for b in self.backfills],
        }, separators=(",", ":"))

    @staticmethod
    def pending_from_json(text: str | None) -> dict[str, Any]:
        """The keyword arguments ``pending_json`` stored (for ``ScheduleState(...)``)."""
        data = json.loads(text) if text else {}
        return {
            "waiting": tuple(Tick(int(a), str(o)) for a, o in data.get("waiting", [])),
            "triggers": tuple(Tick(int(a), str(o)) for a, o in data.get("triggers", [])),
            "backfills": tuple(Backfill(int(n), int(e), str(o))
                               for n, e, o in data.get("backfills", [])),
        }


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One tick that started an instance. ``status`` is ``Running`` until the instance ends
    (then its final status, or ``Deleted``)."""

    instance_id: str
    scheduled_at_ms: int
    started_at_ms: int
    status: str
    ended_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class StoredSchedule:
    """A schedule as stored. ``running``: instance ids of its runs that have not ended, by
    scheduled time. ``runs``: its newest runs, newest first (filled by the reads that
    describe a schedule; empty where only the state matters)."""

    schedule_id: str
    spec: ScheduleSpec
    state: ScheduleState
    running: tuple[str, ...] = ()
    created_at_ms: int = 0
    updated_at_ms: int = 0
    runs: tuple[RunRecord, ...] = ()

    def with_state(self, state: ScheduleState) -> StoredSchedule:
        return replace(self, state=state)


@dataclass(frozen=True, slots=True)
class TickStart:
    """A tick that starts an instance: the StartOrchestration message to enqueue."""

    at_ms: int
    instance_id: str
    item: WorkItem


@dataclass(frozen=True, slots=True)
class FirePlan:
    """What firing a due schedule writes, in ONE transaction with the new state.

    The provider records each start as a run and enqueues its message, unless the tick
    already has a run or an instance with that id exists (the start is idempotent on the
    tick), enqueues the cancellations (``cancels``: instance id and message), and replaces
    the state.
    """

    state: ScheduleState
    starts: tuple[TickStart, ...] = ()
    cancels: tuple[tuple[str, WorkItem], ...] = ()


#: Plans one due schedule at ``now_ms`` (the runtime's planner; a provider calls it inside
#: the transaction that holds the schedule, so the plan sees the state it replaces).
Planner = Callable[[StoredSchedule, int], FirePlan]

#: Changes a schedule a client names (pause, trigger, update ...): the new stored schedule
#: from the current one and the store's ``now_ms``, applied in one transaction.
ScheduleChange = Callable[[StoredSchedule, int], StoredSchedule]


@dataclass(frozen=True, slots=True)
class FireResult:
    """What one ``fire_due_schedules`` call did. ``next_due_ms``: the earliest ``due_at`` in
    the store after it (None: no schedule is due ever), which tells the runtime when to
    look again. ``taken``: how many due schedules it held and planned."""

    taken: int = 0
    started: int = 0
    next_due_ms: int | None = None


@dataclass(frozen=True, slots=True)
class DueTimes:
    """The store's earliest due times, read in one statement: the earliest orchestrator
    message not visible yet (timers, delayed retries) and the earliest due schedule.
    ``orchestrator_next``: the due times of the next ``NEXT_DUE_TIMES`` such messages,
    ascending (the first is ``orchestrator_ms``), so that a dispatcher woken by one timer
    of a burst knows when the next ones come due without reading again."""

    orchestrator_ms: int | None = None
    schedules_ms: int | None = None
    orchestrator_next: tuple[int, ...] = ()


#: How many of the next orchestrator due times ``next_due_ms`` returns.
NEXT_DUE_TIMES = 64
