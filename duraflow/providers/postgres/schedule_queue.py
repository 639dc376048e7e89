"""``PostgresProvider``'s schedule operations, retention's lease and the store's next due
times: the provider's face of ``schedules.py``, with its wake-ups.

A write that makes a schedule due wakes this process's ticker directly (the notifier) and the
others with ``{"s": due}``; firing announces the starts it queued like any enqueue (the
announcer's payload rides in the fire's own transaction when the interval allows).
"""

from __future__ import annotations

import json

from duraflow.core.models import InstanceFilter
from duraflow.providers.admin_rules import DeletePage
from duraflow.providers.clock import now_ms
from duraflow.providers.postgres import admin, schedules
from duraflow.providers.postgres.announce import Announcement
from duraflow.providers.postgres.queue_base import QueueBase
from duraflow.providers.postgres.schedules import Notice
from duraflow.providers.schedule_items import (
    NEXT_DUE_TIMES,
    DueTimes,
    FireResult,
    Planner,
    ScheduleChange,
    StoredSchedule,
)
from duraflow.providers.schedule_rows import RUNS_KEPT


class ScheduleQueue(QueueBase):
    """Schedules, leases and due times of ``PostgresProvider``."""

    def _notice(self, schedule: StoredSchedule) -> Notice | None:
        due = schedule.state.due_at_ms
        if due is None or not self.notify_peers:
            return None
        return Notice(self.channels.orchestrator, json.dumps({"s": due}))

    async def create_schedule(self, schedule: StoredSchedule) -> None:
        await schedules.create(self._db, schedule, self._notice(schedule))
        if schedule.state.due_at_ms is not None:
            self.notifier.notify_schedules(schedule.state.due_at_ms)

    async def change_schedule(self, schedule_id: str, change: ScheduleChange) -> StoredSchedule:
        new = await schedules.change(self._db, schedule_id, change, now_ms(), self._notice)
        if new.state.due_at_ms is not None:
            self.notifier.notify_schedules(new.state.due_at_ms)
        return new

    async def delete_schedule(self, schedule_id: str) -> bool:
        return await schedules.delete(self._db, schedule_id)

    async def get_schedule(self, schedule_id: str, runs: int = RUNS_KEPT) -> StoredSchedule | None:
        found = await schedules.read(self._db, schedule_id, runs)
        return found[0] if found else None

    async def list_schedules(self, runs: int = RUNS_KEPT) -> list[StoredSchedule]:
        return await schedules.read(self._db, None, runs)

    async def fire_due_schedules(self, now_ms: int, limit: int, planner: Planner) -> FireResult:
        taken = self._announcer.take() if self.notify_peers else None
        payload = None
        if taken is not None:  # what is pending, plus "orchestrator work now"
            announcing = Announcement(taken.due, taken.worker, dict(taken.instances),
                                      taken.sender)
            announcing.merge(now_ms, False, ())
            payload = announcing.payload()
        try:
            result, plans = await schedules.fire_due(self._db, now_ms, limit, planner, payload)
        except BaseException:
            if taken is not None:
                self._announcer.restore(taken)
            raise
        queued = result.started > 0 or any(plan.cancels for plan in plans)
        if taken is not None:
            if queued:
                self._announcer.sent_in_commit()
            else:  # the commit sent nothing: what was pending goes back
                self._announcer.restore(taken)
        elif queued and self.notify_peers:
            self._announcer.defer(now_ms, False, ())
        if queued:
            self.notifier.notify_orchestrator()
        return result

    async def next_due_ms(self) -> DueTimes:
        s = self._s
        rows = await self._db.fetch(
            "next_due_ms",
            # Rows, not an array: asyncpg would introspect the array type on every new
            # connection. (SELECT now_ms()) is evaluated once, so it bounds the index scan.
            f"SELECT 1 AS k, min(due_at) AS due FROM {s}.schedules UNION ALL"
            f" (SELECT 0, visible_at FROM {s}.orchestrator_queue"
            f"  WHERE visible_at > (SELECT {s}.now_ms()) ORDER BY visible_at LIMIT $1)",
            NEXT_DUE_TIMES,
            idempotent=True,
        )
        dues = tuple(sorted(int(row[1]) for row in rows if row[0] == 0))
        schedule = next((row[1] for row in rows if row[0] == 1), None)
        return DueTimes(dues[0] if dues else None,
                        None if schedule is None else int(schedule), dues)

    async def try_lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        return await schedules.try_lease(self._db, name, holder, ttl_ms)

    async def delete_finished_instances(
        self, completed_before_ms: int, limit: int, after: tuple[int, int] | None = None
    ) -> DeletePage:
        page = await admin.delete_bulk_page(
            self._db, InstanceFilter(completed_before=completed_before_ms, limit=limit),
            False, after)
        for gone in page.deleted:
            self.notifier.notify_instance(gone)
        return page
