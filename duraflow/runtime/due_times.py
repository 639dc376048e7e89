"""The store's earliest due times, read once and shared by everything that sleeps on them.

Timers (future orchestrator messages) and schedule ticks are both "work that becomes due at
a known time", and both are announced with that time when they are written (in process and,
on PostgreSQL, in the write's notification). What was written before this runtime started,
or while a notification could not reach it, is found by reading the store's earliest due
times: ONE statement for both (``Provider.next_due_ms``), at most once a second while the
runtime idles, however many timers and schedules exist. The orchestration dispatcher and the
schedule ticker share the read, so schedules add no query of their own to an idle runtime.
"""

from __future__ import annotations

import asyncio
import time

from duraflow.providers.errors import ProviderError
from duraflow.providers.protocol import Provider
from duraflow.providers.schedule_items import DueTimes

#: How long a read is trusted while idling: the store is read at most once a second.
READ_TTL_S = 1.0


class StoredDueTimes:
    """The last ``next_due_ms`` read and when it was taken (monotonic seconds)."""

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self.value = DueTimes()
        self.read_at = float("-inf")
        self._lock = asyncio.Lock()
        self._announced: int | None = None

    async def read(self, max_age_s: float) -> DueTimes:
        """The due times, read again when the last read is older than ``max_age_s``. A new
        schedule due time is handed to the notifier, so the ticker hears what the
        dispatcher's read found. A failed read says nothing (and is tried again next time)."""
        async with self._lock:  # concurrent callers share one read
            if time.monotonic() - self.read_at < max_age_s:
                return self.value
            try:
                value = await self._provider.next_due_ms()
            except ProviderError:
                return DueTimes()
            self.value, self.read_at = value, time.monotonic()
        due = value.schedules_ms
        if due is not None and due != self._announced:
            self._announced = due
            self._provider.notifier.notify_schedules(due)
        return value

    def expire(self) -> None:
        """The next ``read`` goes to the store (a due time read has passed)."""
        self.read_at = float("-inf")
