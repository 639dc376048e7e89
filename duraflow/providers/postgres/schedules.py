"""Durable schedules on PostgreSQL: the admin writes, the reads, and firing due ticks.

Firing is ONE transaction per batch (``fire_due``): ``due_schedules`` locks the due rows
(``FOR UPDATE SKIP LOCKED``, so runtimes firing at once take different schedules), the
runtime's planner decides each one in Python (cron and time zones live above the provider),
and ``apply_schedule_fires`` stores every plan's starts, cancellations and new state. A crash
anywhere rolls all of it back; the row lock makes a second runtime skip what the first holds;
and a start is idempotent on the tick (see the SQL files), so a tick fires once.

Every other change goes through ``change``: the row is read ``FOR UPDATE``, the client's pure
change computes the new schedule, and the row is rewritten, in one transaction. A write that
makes a schedule due announces it to the other processes (``Notice``), which is how a
runtime learns of a schedule created elsewhere without polling for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from duraflow.providers.errors import ScheduleExistsError, ScheduleNotFoundError
from duraflow.providers.postgres.db import Conn, Database
from duraflow.providers.schedule_items import (
    FirePlan,
    FireResult,
    Planner,
    ScheduleChange,
    StoredSchedule,
)
from duraflow.providers.schedule_rows import (
    CHANGED_COLUMNS,
    RUN_COLUMNS,
    SCHEDULE_COLUMNS,
    schedule_from_row,
    schedule_params,
)

_COLUMNS = ", ".join(SCHEDULE_COLUMNS)
_PLACEHOLDERS = ", ".join(f"${n}" for n in range(1, len(SCHEDULE_COLUMNS) + 1))
_SETS = ", ".join(f"{c} = ${n}" for n, c in enumerate(CHANGED_COLUMNS, start=2))
_RUNS = ", ".join(f"'{c}', r.{c}" for c in RUN_COLUMNS)
_DUE_COLUMNS = ", ".join(f"(d.sched).{c}" for c in SCHEDULE_COLUMNS)


@dataclass(frozen=True, slots=True)
class Notice:
    """A notification to send in a write's transaction: ``pg_notify(channel, payload)``."""

    channel: str
    payload: str


def _select(s: str, where: str, runs: int) -> str:
    """Schedules with their active runs and their newest ``runs`` runs (a JSON text)."""
    return (
        f"SELECT {', '.join('s.' + c for c in SCHEDULE_COLUMNS)},"
        f" ARRAY(SELECT r.instance_id FROM {s}.schedule_runs r"
        "        WHERE r.schedule_id = s.schedule_id AND r.ended_at IS NULL"
        "        ORDER BY r.scheduled_at) AS running,"
        f" (SELECT COALESCE(json_agg(json_build_object({_RUNS})), '[]')::TEXT FROM"
        f"   (SELECT * FROM {s}.schedule_runs r WHERE r.schedule_id = s.schedule_id"
        f"    ORDER BY r.scheduled_at DESC LIMIT {int(runs)}) AS r) AS runs"
        f" FROM {s}.schedules s {where}"
    )


def _decode(row: asyncpg.Record) -> StoredSchedule:
    runs = [[run[c] for c in RUN_COLUMNS] for run in json.loads(row["runs"])]
    return schedule_from_row(list(row)[:len(SCHEDULE_COLUMNS)], row["running"], runs)


async def _notify(conn: Conn, notice: Notice | None) -> None:
    if notice is not None:
        await conn.execute("SELECT pg_notify($1, $2)", notice.channel, notice.payload)


async def create(db: Database, schedule: StoredSchedule, notice: Notice | None) -> None:
    """Insert ``schedule``; ``ScheduleExistsError`` when its id is taken."""
    s = db.s

    async def go(conn: Conn) -> bool:
        async with conn.transaction():
            inserted = await conn.fetchval(
                f"INSERT INTO {s}.schedules ({_COLUMNS}) VALUES ({_PLACEHOLDERS})"
                " ON CONFLICT (schedule_id) DO NOTHING RETURNING TRUE",
                *schedule_params(schedule),
            )
            if inserted:
                await _notify(conn, notice)
            return bool(inserted)

    if not await db.run("create_schedule", go, idempotent=False):
        raise ScheduleExistsError("create_schedule", schedule.schedule_id)


async def change(
    db: Database, schedule_id: str, change: ScheduleChange, now_ms: int,
    notice: Callable[[StoredSchedule], Notice | None],
) -> StoredSchedule:
    """Apply ``change`` to the stored schedule in one transaction (``ScheduleNotFoundError``
    when there is none); returns the schedule as written."""
    s = db.s

    async def go(conn: Conn) -> StoredSchedule:
        async with conn.transaction():
            row = await conn.fetchrow(_select(s, "WHERE s.schedule_id = $1 FOR UPDATE", 0),
                                      schedule_id)
            if row is None:
                raise ScheduleNotFoundError("change_schedule", schedule_id)
            new = change(_decode(row), now_ms)
            await conn.execute(
                f"UPDATE {s}.schedules SET {_SETS}, updated_at = $18 WHERE schedule_id = $1",
                *schedule_params(new)[:len(CHANGED_COLUMNS) + 1], now_ms,
            )
            await _notify(conn, notice(new))
            return new

    return await db.run("change_schedule", go, idempotent=False)


async def delete(db: Database, schedule_id: str) -> bool:
    deleted = await db.fetchval(
        "delete_schedule",
        f"DELETE FROM {db.s}.schedules WHERE schedule_id = $1 RETURNING TRUE",
        schedule_id, idempotent=True,
    )
    return bool(deleted)


async def read(db: Database, schedule_id: str | None, runs: int) -> list[StoredSchedule]:
    """One schedule (or every schedule, by id) with its active and newest runs."""
    where = "ORDER BY s.schedule_id" if schedule_id is None else "WHERE s.schedule_id = $1"
    args = () if schedule_id is None else (schedule_id,)
    rows = await db.fetch("read_schedules", _select(db.s, where, runs), *args)
    return [_decode(row) for row in rows]


def _fire_json(schedule: StoredSchedule, plan: FirePlan) -> dict[str, object]:
    state = plan.state
    return {
        "id": schedule.schedule_id, "next_tick": state.next_tick_ms,
        "pending": state.pending_json(), "wake": state.wake_on_end, "missed": state.missed,
        "due": state.due_at_ms,
        "starts": [{"at": t.at_ms, "instance": t.instance_id, "item": json.dumps(t.item)}
                   for t in plan.starts],
        "cancels": [{"instance": i, "item": json.dumps(item)} for i, item in plan.cancels],
    }


async def fire_due(
    db: Database, now_ms: int, limit: int, planner: Planner, payload: str | None
) -> tuple[FireResult, list[FirePlan]]:
    """Lock up to ``limit`` due schedules, plan them and store the plans, in ONE transaction.
    ``payload`` announces the queued starts to other processes. Returns what was stored."""
    s = db.s

    async def go(conn: Conn) -> tuple[FireResult, list[FirePlan]]:
        async with conn.transaction():
            rows = await conn.fetch(
                f"SELECT {_DUE_COLUMNS}, d.running, '[]' AS runs"
                f" FROM {s}.due_schedules($1, $2) AS d", now_ms, limit)
            if not rows:
                next_due = await conn.fetchval(f"SELECT min(due_at) FROM {s}.schedules")
                return FireResult(0, 0, None if next_due is None else int(next_due)), []
            schedules = [_decode(row) for row in rows]
            plans = [planner(schedule, now_ms) for schedule in schedules]
            result = await conn.fetchrow(
                f"SELECT * FROM {s}.apply_schedule_fires($1::jsonb, $2)",
                json.dumps([_fire_json(x, p) for x, p in zip(schedules, plans, strict=True)]),
                payload,
            )
            assert result is not None
            due = result["out_next_due"]
            return FireResult(len(rows), int(result["out_started"]),
                              None if due is None else int(due)), plans

    return await db.run("fire_due_schedules", go, idempotent=False)


async def try_lease(db: Database, name: str, holder: str, ttl_ms: int) -> bool:
    """Take or renew the lease ``name`` for ``holder`` until now + ``ttl_ms``, unless another
    holder's lease is live."""
    s = db.s
    taken = await db.fetchval(
        "try_lease",
        f"INSERT INTO {s}.leases AS l (name, holder, expires_at)"
        f" VALUES ($1, $2, {s}.now_ms() + $3)"
        " ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder,"
        "  expires_at = EXCLUDED.expires_at"
        f" WHERE l.holder = EXCLUDED.holder OR l.expires_at <= {s}.now_ms()"
        " RETURNING TRUE",
        name, holder, int(ttl_ms), idempotent=True,
    )
    return bool(taken)
