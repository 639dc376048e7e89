"""The schedule ticker: every runtime that runs orchestrations fires due schedule ticks.

No extra process and no per-schedule polling. The ticker sleeps until the earliest due time
it knows, as the orchestration dispatcher sleeps until the next timer, and learns due times
the same ways: announced by the write that set them (a schedule created or changed here, or
in another process through the database's notification; a run's end that frees a waiting
tick), returned by its own last fire (the store's earliest ``due_at`` afterwards), or read
with the timers in the store's one next-due statement, shared with the dispatcher and taken
at most once per idle interval (``StoredDueTimes``). Then one call fires a batch: the
provider takes the due schedules no other runtime holds, plans each with
``duraflow.schedules.planner`` and stores starts and new states in one transaction.

However many runtimes run, each tick starts once: the transaction holds the schedules it
plans, and the start is idempotent on the tick's instance id. A runtime that finds the due
schedules held by another looks again shortly (``RETRY_MS``) rather than spinning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace

from duraflow.providers.clock import now_ms
from duraflow.providers.protocol import Provider
from duraflow.providers.schedule_items import FirePlan, StoredSchedule
from duraflow.runtime.due_times import READ_TTL_S, StoredDueTimes
from duraflow.runtime.metrics import Metrics
from duraflow.runtime.options import RuntimeOptions
from duraflow.runtime.resilience import Backoff
from duraflow.schedules.planner import plan_fire

log = logging.getLogger("duraflow.schedules")

#: Due schedules one fire takes (one transaction); a full batch is followed at once by the next.
BATCH = 100
#: How soon to look again when the due schedules were held by another runtime.
RETRY_MS = 50
#: A schedule whose plan fails (a bug, or a stored zone this runtime's tzdata lacks) is left
#: alone this long instead of blocking the others.
QUARANTINE_MS = 60_000


class ScheduleTicker:
    def __init__(self, provider: Provider, options: RuntimeOptions, metrics: Metrics,
                 due_times: StoredDueTimes) -> None:
        self.provider = provider
        self.metrics = metrics
        self.due_times = due_times
        # Without cross-process notifications (SQLite) other processes' schedules are found
        # by reading the store: once a second, shared with the dispatcher's read.
        self.fallback_s = (options.idle_poll_interval_ms / 1000
                           if provider.cross_process_notify else 1.0)
        # ... and never more often than the dispatcher reads it: the read is shared.
        self.read_every_s = max(self.fallback_s, READ_TTL_S)
        self._known: int | None = None  # the store's earliest due, as of the last fire/read
        self._fired_at = float("-inf")  # monotonic time of the last fire
        self._stopping = asyncio.Event()
        self._backoff = Backoff()

    async def run(self) -> None:
        notifier = self.provider.notifier
        while not self._stopping.is_set():
            unknown = notifier.take_schedules_unknown()
            if unknown or time.monotonic() - self.due_times.read_at >= self.read_every_s:
                await self._read_store(0.0 if unknown else self.read_every_s)
            now = now_ms()
            dues = [d for d in (notifier.take_earliest_schedule_due_ms(), self._known)
                    if d is not None]
            due = min(dues) if dues else None
            if due is not None and due <= now:
                await self._fire(now)
                continue
            timeout_s = self.fallback_s
            if due is not None:
                timeout_s = min(timeout_s, (due - now + 1) / 1000)
            if self._stopping.is_set():  # woken while reading (see the dispatcher's _idle)
                break
            await notifier.wait_schedules(timeout_s)

    async def _read_store(self, max_age_s: float) -> None:
        value = await self.due_times.read(max_age_s)
        if self.due_times.read_at > self._fired_at:  # not older than what the last fire said
            self._known = value.schedules_ms

    async def _fire(self, now: int) -> None:
        started = self.metrics.database.now()
        try:
            result = await self.provider.fire_due_schedules(now, BATCH, self._plan)
        except Exception as exc:
            self.metrics.provider_error(exc, "fire_due_schedules", started)
            log.log(self.metrics.database.level(logging.WARNING),
                    "could not fire due schedules: %s", exc)
            await self._sleep(self._backoff.next_delay_s())
            return
        self.metrics.provider_ok(started)
        self._backoff.reset()
        self._fired_at = time.monotonic()
        self._known = result.next_due_ms
        if result.started:
            self.metrics.prometheus.schedule_runs_started.inc(result.started)
        if result.taken == 0 and self._known is not None and self._known <= now_ms():
            self._known = now_ms() + RETRY_MS  # held by another runtime: it is firing them

    def _plan(self, schedule: StoredSchedule, now: int) -> FirePlan:
        try:
            return plan_fire(schedule, now)
        except Exception:
            log.exception("schedule %r cannot be planned; it is looked at again in %d s",
                          schedule.schedule_id, QUARANTINE_MS // 1000)
            return FirePlan(replace(schedule.state, due_at_ms=now + QUARANTINE_MS))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def stop(self) -> None:
        self._stopping.set()
        self.provider.notifier.notify_schedules()
