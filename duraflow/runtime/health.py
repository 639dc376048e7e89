"""One shared view of "is the database reachable?", fed by every provider call of a runtime.

Why one shared state: during a database restart every concurrent operation of a runtime
fails (both fetch loops, each in-flight turn's commit, each activity's ack and lock renewal),
and each used to log its own ``retrying`` line, so one restart printed dozens of lines. Now
each failure is *reported* here and only the transitions are logged: ONE warning when the
outage starts and ONE line when the database answers again, with how long it lasted and how
many operations failed meanwhile. Individual failures go to DEBUG.

Operations overlap in time, so a failure that *started* before the recovery was declared does
not open a new outage, and a success that started before the last failure does not close one;
both compare start times on a monotonic clock. ``/readyz`` of ``duraflow worker`` reads
``healthy``; ``DatabaseProbe`` keeps it current while the runtime is idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("duraflow.runtime")

#: How often the worker's probe pings the database, and how long one ping may take.
PROBE_INTERVAL_S = 2.0
PROBE_TIMEOUT_S = 5.0


class DatabaseHealth:
    """Healthy until an operation fails; healthy again when a later-started one succeeds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.healthy = True
        self.last_error: str | None = None
        self._outage_started = 0.0
        self._last_failure = float("-inf")
        self._recovered_at = float("-inf")
        self._failures_in_outage = 0

    def now(self) -> float:
        """The clock to stamp an operation's start with (pass it to ``failed``/``succeeded``)."""
        return self._clock()

    def failed(self, operation: str, exc: BaseException, started: float | None = None) -> None:
        """An operation that began at ``started`` (default: now) failed with ``exc``."""
        now = self._clock()
        started = now if started is None else started
        self.last_error = f"{operation}: {exc}"
        if started < self._recovered_at:
            log.debug("%s failed (began before the database came back): %s", operation, exc)
            return
        self._last_failure = max(self._last_failure, started)
        if not self.healthy:
            self._failures_in_outage += 1
            log.debug("%s failed during the database outage: %s", operation, exc)
            return
        self.healthy = False
        self._outage_started = now
        self._failures_in_outage = 1
        log.warning("database unavailable (%s failed: %s); retrying until it is back",
                    operation, exc)

    def succeeded(self, started: float) -> None:
        """An operation that began at ``started`` completed: the database answered."""
        if self.healthy or started <= self._last_failure:
            return
        now = self._clock()
        self.healthy = True
        self._recovered_at = now
        log.info("database available again after %.1f s; recovered (%d failed operations "
                 "during the outage)", now - self._outage_started, self._failures_in_outage)

    def level(self, normal: int) -> int:
        """The level for a per-operation failure line: ``normal``, or DEBUG in an outage
        (the outage has its own warning already)."""
        return normal if self.healthy else logging.DEBUG


class DatabaseProbe:
    """Pings the database every ``interval_s`` so ``health`` is current even when idle.

    An idle runtime only queries every few seconds (its fallback poll), so without the probe
    an outage would show up late in ``/readyz``, and the recovery would wait for the next
    fetch. A ping is one trivial statement (``SELECT 1``).
    """

    def __init__(
        self,
        ping: Callable[[], Awaitable[None]],
        health: DatabaseHealth,
        report_failure: Callable[[BaseException, float], None] | None = None,
        interval_s: float = PROBE_INTERVAL_S,
        timeout_s: float = PROBE_TIMEOUT_S,
    ) -> None:
        self._ping = ping
        self._health = health
        self._report_failure = report_failure
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="duraflow-db-probe")

    async def check(self) -> bool:
        """Ping once, report the outcome to ``health``, return whether it answered."""
        started = self._health.now()
        try:
            await asyncio.wait_for(self._ping(), self._timeout_s)
        except Exception as exc:
            if isinstance(exc, TimeoutError) and not str(exc):
                exc = TimeoutError(f"no answer within {self._timeout_s:g} s")
            if self._report_failure is not None:  # counts it, and tells ``health``
                self._report_failure(exc, started)
            else:
                self._health.failed("ping", exc, started)
            return False
        self._health.succeeded(started)
        return True

    async def _run(self) -> None:
        while not self._stopping.is_set():
            await self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_s)

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
