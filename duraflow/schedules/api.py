"""``AsyncClient``'s schedule calls: create, change, trigger, backfill, describe, delete.

A mixin so that ``client.py`` stays about instances. Each call validates everything first
(a bad value raises a ``ValueError`` subclass naming the field, and nothing is written),
then makes one provider call: the state transitions themselves are the pure functions of
``changes``, applied by the provider in the transaction that holds the schedule. No runtime
is needed to create or change a schedule; runtimes fire its ticks.
"""

from __future__ import annotations

from typing import Any

from duraflow.providers.clock import now_ms
from duraflow.providers.errors import ScheduleNotFoundError
from duraflow.providers.protocol import Provider
from duraflow.schedules import changes
from duraflow.schedules.models import ScheduleInfo, schedule_info
from duraflow.schedules.spec import build_spec, check_schedule_id


class ScheduleApi:
    """The schedule half of ``AsyncClient`` (its ``provider`` is the store)."""

    provider: Provider

    async def create_schedule(
        self,
        schedule_id: str,
        orchestration: str,
        input: Any = None,
        *,
        cron: str | None = None,
        every_ms: int | None = None,
        timezone: str = "UTC",
        overlap: str = "skip",
        catchup_window_ms: int = 60_000,
        jitter_ms: int = 0,
        paused: bool = False,
        version: str | None = None,
    ) -> ScheduleInfo:
        """Create a durable schedule that starts ``orchestration`` with ``input`` at every
        tick of ``cron`` (five fields, an alias such as ``@daily``, or ``@every 90s``) in
        ``timezone``, or every ``every_ms``. ``ScheduleExistsError`` if the id is taken."""
        check_schedule_id(schedule_id)
        spec = build_spec(orchestration, input, cron=cron, every_ms=every_ms,
                          timezone=timezone, overlap=overlap,
                          catchup_window_ms=catchup_window_ms, jitter_ms=jitter_ms,
                          version=version)
        schedule = changes.new_schedule(schedule_id, spec, bool(paused), None, now_ms())
        await self.provider.create_schedule(schedule)
        return schedule_info(schedule)

    async def update_schedule(self, schedule_id: str, **fields: Any) -> ScheduleInfo:
        """Change any of ``orchestration``, ``input``, ``cron``, ``every_ms``, ``timezone``,
        ``overlap``, ``catchup_window_ms``, ``jitter_ms``, ``version``."""
        await self.provider.change_schedule(check_schedule_id(schedule_id),
                                            changes.update(dict(fields)))
        return await self.describe_schedule(schedule_id)

    async def pause_schedule(self, schedule_id: str, note: str | None = None) -> None:
        """Stop the schedule's own ticks until ``resume_schedule``; ``note`` says why."""
        if note is not None and not isinstance(note, str):
            raise TypeError(f"note must be a str, got {type(note).__name__}")
        await self.provider.change_schedule(check_schedule_id(schedule_id),
                                            changes.pause(note))

    async def resume_schedule(self, schedule_id: str) -> None:
        """Tick again, from the first tick after now."""
        await self.provider.change_schedule(check_schedule_id(schedule_id), changes.resume())

    async def trigger_schedule(self, schedule_id: str) -> None:
        """Run now: a tick at the current second, through the overlap policy."""
        await self.provider.change_schedule(check_schedule_id(schedule_id),
                                            changes.trigger())

    async def backfill_schedule(self, schedule_id: str, start_ms: int, end_ms: int,
                                overlap: str | None = None) -> None:
        """Run every tick in ``[start_ms, end_ms)``, oldest first, each through ``overlap``
        (default: the schedule's own policy; ``allow_all`` starts them all at once,
        ``buffer_all`` one after the other). A tick whose instance exists already is not
        started again."""
        change = changes.backfill(start_ms, end_ms, overlap)
        await self.provider.change_schedule(check_schedule_id(schedule_id), change)

    async def delete_schedule(self, schedule_id: str) -> None:
        """Delete the schedule; its instances stay. ``ScheduleNotFoundError`` if none."""
        if not await self.provider.delete_schedule(check_schedule_id(schedule_id)):
            raise ScheduleNotFoundError("delete_schedule", schedule_id)

    async def describe_schedule(self, schedule_id: str) -> ScheduleInfo:
        schedule = await self.provider.get_schedule(check_schedule_id(schedule_id))
        if schedule is None:
            raise ScheduleNotFoundError("describe_schedule", schedule_id)
        return schedule_info(schedule)

    async def list_schedules(self) -> list[ScheduleInfo]:
        return [schedule_info(s) for s in await self.provider.list_schedules()]
