"""Firing a due schedule: which ticks start an instance, wait, or are missed. Pure.

``plan_fire(schedule, now_ms)`` is called by a provider inside the transaction that holds
the schedule, and its ``FirePlan`` (the starts, the cancellations, the new state) is stored
in that same transaction: a tick's start and the schedule's advance past it commit
together or not at all, which is half of "exactly once"; the other half is that the start is
idempotent on the run's instance id ``<schedule id>-<tick time, UTC>``.

What a tick does (its *arrival*) while a run of the schedule is active, by overlap policy:

============  =========================================================================
skip          nothing; counted in ``missed``
buffer_one    waits for the active runs to end; if a tick waits already, counted missed
buffer_all    waits, in order (at most ``MAX_WAITING``; beyond that counted missed)
cancel_other  the active runs are cancelled and the tick waits for them to end (a tick
              that was waiting is replaced, and counted missed)
allow_all     starts at once
============  =========================================================================

With no active run a tick starts. Ticks arrive in this order: waiting ticks (they start
as soon as nothing runs), triggers, backfills (oldest tick first), then the schedule's own
ticks that are due. A due tick more than ``catchup_window_ms`` late (the runtimes were
down) is counted missed instead. A backfill under ``buffer_all`` does not queue its whole
range: it stops at its first tick that would wait behind another, and goes on when runs
end. One plan does a bounded amount of work (``MAX_STARTS`` starts, ``MAX_STEPS`` ticks
looked at); the rest is left due now, for the next round.

Jitter delays a tick by a pseudo-random offset derived from the schedule id and the tick's
time, so every runtime computes the same due time without sharing any state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from duraflow.core import workitems as wi
from duraflow.providers.schedule_items import (
    ALLOW_ALL,
    BUFFER_ALL,
    BUFFER_ONE,
    CANCEL_OTHER,
    SKIP,
    Backfill,
    FirePlan,
    ScheduleSpec,
    ScheduleState,
    StoredSchedule,
    Tick,
    TickStart,
)
from duraflow.schedules.ticks import EveryTicks, TickSource, tick_source, utc_stamp

MAX_STARTS = 100
MAX_STEPS = 10_000
MAX_WAITING = 1_000


def run_instance_id(schedule_id: str, at_ms: int) -> str:
    """The instance a tick starts: ``<schedule id>-YYYYMMDDTHHMMSSZ`` (its scheduled time)."""
    return f"{schedule_id}-{utc_stamp(at_ms)}"


def jitter_offset(schedule_id: str, at_ms: int, jitter_ms: int) -> int:
    """A tick's delay in ``[0, jitter_ms]``: a hash, so stable for the tick on any runtime."""
    if jitter_ms <= 0:
        return 0
    digest = hashlib.sha256(f"{schedule_id}\0{at_ms}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (jitter_ms + 1)


def due_of(schedule_id: str, spec: ScheduleSpec, at_ms: int) -> int:
    """When a runtime fires the tick scheduled at ``at_ms``."""
    return at_ms + jitter_offset(schedule_id, at_ms, spec.jitter_ms)


def due_at(schedule_id: str, spec: ScheduleSpec, state: ScheduleState, now_ms: int,
           work_now: bool) -> int | None:
    """When the schedule needs a runtime next: its next own tick (unless paused), or now
    when ``work_now`` (triggers, backfills or a waiting tick that can start)."""
    dues = [now_ms] if work_now else []
    if not state.paused and state.next_tick_ms is not None:
        dues.append(due_of(schedule_id, spec, state.next_tick_ms))
    return min(dues) if dues else None


@dataclass(slots=True)
class _Plan:
    """One plan being built (see the module docstring for the rules)."""

    schedule: StoredSchedule
    active: list[str]
    waiting: list[Tick]
    missed: int
    starts: list[TickStart] = field(default_factory=list)
    cancels: dict[str, wi.WorkItem] = field(default_factory=dict)
    steps: int = 0

    @property
    def exhausted(self) -> bool:
        return len(self.starts) >= MAX_STARTS or self.steps >= MAX_STEPS

    def start(self, at_ms: int) -> None:
        schedule = self.schedule
        if any(s.at_ms == at_ms for s in self.starts):
            return  # a trigger in the second of a tick: one run
        instance_id = run_instance_id(schedule.schedule_id, at_ms)
        spec = schedule.spec
        item = wi.start_orchestration(instance_id, spec.orchestration, spec.input, spec.version)
        self.starts.append(TickStart(at_ms, instance_id, item))
        self.active.append(instance_id)

    def arrive(self, tick: Tick) -> None:
        self.steps += 1
        if not self.active or tick.overlap == ALLOW_ALL:
            self.start(tick.at_ms)
        elif tick.overlap == SKIP or (tick.overlap == BUFFER_ONE and self.waiting):
            self.missed += 1
        elif tick.overlap == CANCEL_OTHER:
            reason = f"replaced by a newer run of schedule {self.schedule.schedule_id!r}"
            for instance_id in self.active:
                self.cancels.setdefault(instance_id, wi.cancel_instance(instance_id, reason))
            self.missed += len(self.waiting)
            self.waiting = [tick]
        elif len(self.waiting) >= MAX_WAITING:
            self.missed += 1
        else:  # buffer_one (nothing waits yet), buffer_all
            self.waiting.append(tick)

    def would_queue(self, overlap: str) -> bool:
        """A backfill's tick would wait behind another: stop the backfill there."""
        return overlap == BUFFER_ALL and bool(self.active) and bool(self.waiting)


def plan_fire(schedule: StoredSchedule, now_ms: int) -> FirePlan:
    """What firing ``schedule`` at ``now_ms`` does (module docstring)."""
    state, spec = schedule.state, schedule.spec
    source = tick_source(spec.cron, spec.every_ms, spec.timezone)
    plan = _Plan(schedule, list(schedule.running), list(state.waiting), state.missed)
    while plan.waiting and not plan.active and not plan.exhausted:
        plan.start(plan.waiting.pop(0).at_ms)
    triggers = list(state.triggers)
    while triggers and not plan.exhausted:
        plan.arrive(triggers.pop(0))
    backfills, blocked = _backfill(plan, source, state.backfills)
    next_tick = state.next_tick_ms
    if not state.paused:
        next_tick = _own_ticks(plan, source, next_tick, now_ms)
    new_state = ScheduleState(
        paused=state.paused, note=state.note, next_tick_ms=next_tick,
        waiting=tuple(plan.waiting), triggers=tuple(triggers), backfills=tuple(backfills),
        missed=plan.missed, wake_on_end=bool(plan.waiting) or blocked,
    )
    due = due_at(schedule.schedule_id, spec, new_state, now_ms, plan.exhausted)
    return FirePlan(
        state=replace(new_state, due_at_ms=due),
        starts=tuple(plan.starts),
        cancels=tuple(plan.cancels.items()),
    )


def _backfill(plan: _Plan, source: TickSource,
              backfills: tuple[Backfill, ...]) -> tuple[list[Backfill], bool]:
    """Let the backfills' ticks arrive, oldest backfill first; returns what is left of them
    and whether one stopped behind a waiting tick (it goes on when a run ends)."""
    left: list[Backfill] = []
    blocked = False
    for backfill in backfills:
        if plan.exhausted or blocked:  # backfills keep their order
            left.append(backfill)
            continue
        for at_ms in source.after(backfill.next_ms - 1):
            if at_ms >= backfill.end_ms:
                break
            blocked = plan.would_queue(backfill.overlap)
            if plan.exhausted or blocked:
                left.append(Backfill(at_ms, backfill.end_ms, backfill.overlap))
                break
            plan.arrive(Tick(at_ms, backfill.overlap))
    return left, blocked


def _own_ticks(plan: _Plan, source: TickSource, next_tick: int | None, now_ms: int) -> int | None:
    """Let the schedule's due ticks arrive (or count them missed when they are later than
    the catch-up window); returns the first tick not due yet."""
    schedule_id, spec = plan.schedule.schedule_id, plan.schedule.spec
    window = spec.catchup_window_ms
    if next_tick is not None and isinstance(source, EveryTicks):
        # Ticks before this are missed whatever their jitter: count them without a walk.
        horizon = now_ms - window - spec.jitter_ms
        if next_tick < horizon:
            skipped = -(-(horizon - next_tick) // source.every_ms)
            plan.missed += skipped
            next_tick += skipped * source.every_ms
    later = None
    while next_tick is not None and not plan.exhausted:
        due = due_of(schedule_id, spec, next_tick)
        if due > now_ms:
            break
        if now_ms - due > window:
            plan.missed += 1
            plan.steps += 1
        else:
            plan.arrive(Tick(next_tick, spec.overlap))
        if later is None:
            later = source.after(next_tick)
        next_tick = next(later, None)
    return next_tick
