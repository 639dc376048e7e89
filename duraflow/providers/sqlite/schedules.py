"""Durable schedules on SQLite: the admin writes, the reads, and firing due ticks.

The twin of ``postgres/schedules.py``. Each function runs on the database thread as one
transaction; ``BEGIN IMMEDIATE`` takes the write lock first, so firing (read the due rows,
plan them, store the plans) cannot interleave with another process's fire or with the turn
that ends a run: a tick fires once, and a run's end sees the tick a fire left waiting. The
runs' ends are recorded by triggers (``migrations.py``), in the transaction that ends them.
"""

from __future__ import annotations

import json
import sqlite3

from duraflow.providers.errors import ScheduleExistsError, ScheduleNotFoundError
from duraflow.providers.schedule_items import (
    NEXT_DUE_TIMES,
    DueTimes,
    FirePlan,
    FireResult,
    Planner,
    ScheduleChange,
    StoredSchedule,
)
from duraflow.providers.schedule_rows import (
    CHANGED_COLUMNS,
    RUN_COLUMNS,
    RUNS_KEPT,
    SCHEDULE_COLUMNS,
    schedule_from_row,
    schedule_params,
)
from duraflow.providers.sqlite.db import transaction
from duraflow.providers.sqlite.orchestrator_queue import INSERT_ORCH

_COLUMNS = ", ".join(SCHEDULE_COLUMNS)
_SELECT = f"SELECT {_COLUMNS} FROM schedules"
_SETS = ", ".join(f"{c} = ?" for c in CHANGED_COLUMNS)


def _load(conn: sqlite3.Connection, row: sqlite3.Row | tuple[object, ...],
          runs: int) -> StoredSchedule:
    schedule_id = row[0]
    running = [str(r[0]) for r in conn.execute(
        "SELECT instance_id FROM schedule_runs WHERE schedule_id = ? AND ended_at IS NULL"
        " ORDER BY scheduled_at", (schedule_id,)).fetchall()]
    recent = conn.execute(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM schedule_runs WHERE schedule_id = ?"
        " ORDER BY scheduled_at DESC LIMIT ?", (schedule_id, runs)).fetchall() if runs else []
    return schedule_from_row(tuple(row), running, recent)


def create(conn: sqlite3.Connection, schedule: StoredSchedule) -> None:
    with transaction(conn, write=True):
        inserted = conn.execute(
            f"INSERT INTO schedules ({_COLUMNS}) VALUES ({', '.join('?' * len(SCHEDULE_COLUMNS))})"
            " ON CONFLICT (schedule_id) DO NOTHING", schedule_params(schedule)).rowcount
    if not inserted:
        raise ScheduleExistsError("create_schedule", schedule.schedule_id)


def change(conn: sqlite3.Connection, schedule_id: str, change: ScheduleChange,
           now_ms: int) -> StoredSchedule:
    with transaction(conn, write=True):
        row = conn.execute(f"{_SELECT} WHERE schedule_id = ?", (schedule_id,)).fetchone()
        if row is None:
            raise ScheduleNotFoundError("change_schedule", schedule_id)
        new = change(_load(conn, row, 0), now_ms)
        params = schedule_params(new)
        conn.execute(f"UPDATE schedules SET {_SETS}, updated_at = ? WHERE schedule_id = ?",
                     (*params[1:len(CHANGED_COLUMNS) + 1], now_ms, schedule_id))
    return new


def delete(conn: sqlite3.Connection, schedule_id: str) -> bool:
    with transaction(conn, write=True):
        return conn.execute("DELETE FROM schedules WHERE schedule_id = ?",
                            (schedule_id,)).rowcount > 0


def read(conn: sqlite3.Connection, schedule_id: str | None, runs: int) -> list[StoredSchedule]:
    with transaction(conn, write=False):
        if schedule_id is None:
            rows = conn.execute(f"{_SELECT} ORDER BY schedule_id").fetchall()
        else:
            rows = conn.execute(f"{_SELECT} WHERE schedule_id = ?", (schedule_id,)).fetchall()
        return [_load(conn, row, runs) for row in rows]


def _min_due(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT MIN(due_at) FROM schedules").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def fire_due(conn: sqlite3.Connection, now_ms: int, limit: int,
             planner: Planner) -> tuple[FireResult, bool]:
    """Plan and store up to ``limit`` due schedules in one write transaction; returns what it
    did and whether it queued orchestrator messages."""
    due = "SELECT schedule_id FROM schedules WHERE due_at <= ? ORDER BY due_at LIMIT ?"
    # A lock-free probe first: other processes' idle tickers must not queue on the write lock.
    if conn.execute(due, (now_ms, 1)).fetchone() is None:
        return FireResult(0, 0, _min_due(conn)), False
    started, queued = 0, False
    with transaction(conn, write=True) as stamp:
        ids = [str(r[0]) for r in conn.execute(due, (now_ms, limit)).fetchall()]
        for schedule_id in ids:
            row = conn.execute(f"{_SELECT} WHERE schedule_id = ?", (schedule_id,)).fetchone()
            schedule = _load(conn, row, 0)
            plan = planner(schedule, now_ms)
            count = _apply(conn, schedule_id, plan, stamp)
            started += count
            queued = queued or count > 0 or bool(plan.cancels)
        next_due = _min_due(conn)
    return FireResult(len(ids), started, next_due), queued


def _apply(conn: sqlite3.Connection, schedule_id: str, plan: FirePlan, now: int) -> int:
    """Store one plan (see ``FirePlan``); returns how many ticks started."""
    state = plan.state
    conn.execute(
        "UPDATE schedules SET next_tick_at = ?, pending = ?, wake_on_end = ?, missed = ?,"
        " due_at = ?, updated_at = ? WHERE schedule_id = ?",
        (state.next_tick_ms, state.pending_json(), state.wake_on_end, state.missed,
         state.due_at_ms, now, schedule_id))
    started = 0
    for start in plan.starts:
        if conn.execute("SELECT 1 FROM instances WHERE instance_id = ?",
                        (start.instance_id,)).fetchone() is not None:
            continue
        if conn.execute(
                "INSERT INTO schedule_runs (schedule_id, scheduled_at, instance_id, started_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (schedule_id, start.at_ms, start.instance_id, now)).rowcount == 0:
            continue
        conn.execute(INSERT_ORCH, (start.instance_id, json.dumps(start.item), now, now))
        started += 1
    for instance_id, item in plan.cancels:
        conn.execute(INSERT_ORCH, (instance_id, json.dumps(item), now, now))
    if plan.starts:  # keep the newest ended runs only
        conn.execute(
            "DELETE FROM schedule_runs WHERE schedule_id = :id AND ended_at IS NOT NULL"
            " AND scheduled_at < COALESCE((SELECT scheduled_at FROM schedule_runs"
            "   WHERE schedule_id = :id AND ended_at IS NOT NULL"
            "   ORDER BY scheduled_at DESC LIMIT 1 OFFSET :keep), 0)",
            {"id": schedule_id, "keep": RUNS_KEPT - 1})
    return started


def next_due(conn: sqlite3.Connection, now_ms: int) -> DueTimes:
    dues = tuple(int(row[0]) for row in conn.execute(
        "SELECT visible_at FROM orchestrator_queue WHERE visible_at > ?"
        " ORDER BY visible_at LIMIT ?", (now_ms, NEXT_DUE_TIMES)))
    schedule = conn.execute("SELECT MIN(due_at) FROM schedules").fetchone()[0]
    return DueTimes(dues[0] if dues else None, None if schedule is None else int(schedule),
                    dues)


def try_lease(conn: sqlite3.Connection, name: str, holder: str, ttl_ms: int) -> bool:
    with transaction(conn, write=True) as now:
        return conn.execute(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
            "  expires_at = excluded.expires_at"
            " WHERE leases.holder = excluded.holder OR leases.expires_at <= ?",
            (name, holder, now + int(ttl_ms), now)).rowcount > 0
