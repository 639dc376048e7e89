"""The worker registry on SQLite: one row per runtime, one UPSERT per heartbeat.

A heartbeat is a single short write transaction (the UPSERT plus a DELETE of rows unseen for
longer than the retention, which finds nothing almost always), so many runtimes sharing a
file add a handful of writes per interval, not per activity.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from duraflow.core.models import WORKER_GONE_AFTER_HEARTBEATS, WorkDemand, WorkerInfo
from duraflow.providers.common import (
    DRAIN_IDLE,
    WORKER_COLUMNS,
    demand_from_rows,
    worker_params,
    worker_row,
)
from duraflow.providers.sqlite.db import transaction

_UPSERT = (
    f"INSERT INTO workers ({WORKER_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (worker_node_id, runtime_id) DO UPDATE SET"
    " host = excluded.host, pid = excluded.pid, tag_filter = excluded.tag_filter,"
    " tags = excluded.tags, orchestrations = excluded.orchestrations,"
    " activities = excluded.activities,"
    " orchestration_concurrency = excluded.orchestration_concurrency,"
    " worker_concurrency = excluded.worker_concurrency, max_sessions = excluded.max_sessions,"
    " sessions_held = excluded.sessions_held, started_at = excluded.started_at,"
    " last_seen_at = excluded.last_seen_at,"
    " heartbeat_interval_ms = excluded.heartbeat_interval_ms, build_id = excluded.build_id,"
    " drain_state = excluded.drain_state"
)


def heartbeat(conn: sqlite3.Connection, worker: WorkerInfo, retention_ms: int) -> bool:
    params = worker_params(worker)
    with transaction(conn, write=True) as now:
        # last_seen_at sits between started_at and heartbeat_interval_ms in WORKER_COLUMNS
        conn.execute(_UPSERT, (*params[:13], now, *params[13:]))
        conn.execute("DELETE FROM workers WHERE last_seen_at < ?", (now - retention_ms,))
        row = conn.execute("SELECT 1 FROM worker_drains WHERE worker_node_id = ?",
                           (worker.worker_node_id,)).fetchone()
    return row is not None


def remove(conn: sqlite3.Connection, worker_node_id: str, runtime_id: str) -> None:
    with transaction(conn, write=True):
        conn.execute(
            "DELETE FROM workers WHERE worker_node_id = ? AND runtime_id = ?",
            (worker_node_id, runtime_id),
        )


def list_workers(conn: sqlite3.Connection, include_gone: bool) -> list[WorkerInfo]:
    with transaction(conn, write=False) as now:
        rows = conn.execute(
            f"SELECT {WORKER_COLUMNS},"
            " last_seen_at >= ? - ? * heartbeat_interval_ms AS alive"
            " FROM workers ORDER BY worker_node_id, started_at, runtime_id",
            (now, WORKER_GONE_AFTER_HEARTBEATS),
        ).fetchall()
    workers = [worker_row(row, bool(row[-1])) for row in rows]
    return workers if include_gone else [w for w in workers if w.alive]


def activity_backlog(conn: sqlite3.Connection) -> dict[str | None, int]:
    with transaction(conn, write=False) as now:
        rows = conn.execute(
            "SELECT tag, COUNT(*) FROM worker_queue"
            " WHERE visible_at <= ? AND (lock_token IS NULL OR locked_until <= ?)"
            " GROUP BY tag",
            (now, now),
        ).fetchall()
    return {row[0]: int(row[1]) for row in rows}


def work_demand(conn: sqlite3.Connection) -> WorkDemand:
    # The statement of postgres/workers.py, in SQLite's words (see there).
    with transaction(conn, write=False) as now:
        rows = conn.execute(
            "SELECT 'a', tag,"
            " SUM(CASE WHEN lock_token IS NULL OR locked_until <= ?1 THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN lock_token IS NOT NULL AND locked_until > ?1 THEN 1 ELSE 0 END)"
            " FROM worker_queue GROUP BY tag"
            " UNION ALL"
            " SELECT 'o', NULL, COUNT(DISTINCT instance_id), 0 FROM orchestrator_queue"
            " WHERE visible_at <= ?1 OR lock_token IS NOT NULL"
            " UNION ALL"
            " SELECT 's', worker_id, COUNT(*), 0 FROM sessions ss WHERE locked_until > ?1"
            " AND NOT EXISTS (SELECT 1 FROM worker_queue w WHERE w.session_id = ss.session_id)"
            " GROUP BY worker_id",
            (now,),
        ).fetchall()
    return demand_from_rows(rows)


def drain(conn: sqlite3.Connection, worker_node_ids: Sequence[str]) -> None:
    with transaction(conn, write=True) as now:
        conn.executemany(
            "INSERT INTO worker_drains (worker_node_id, requested_at) VALUES (?, ?)"
            " ON CONFLICT (worker_node_id) DO NOTHING",
            [(node, now) for node in worker_node_ids],
        )


def undrain(conn: sqlite3.Connection, worker_node_ids: Sequence[str]) -> None:
    with transaction(conn, write=True):
        conn.executemany("DELETE FROM worker_drains WHERE worker_node_id = ?",
                         [(node,) for node in worker_node_ids])


def drained(conn: sqlite3.Connection) -> dict[str, bool]:
    with transaction(conn, write=False) as now:
        rows = conn.execute(
            f"WITH now AS (SELECT ? AS t) SELECT d.worker_node_id,"
            f" {DRAIN_IDLE.format(s='', gone='?')} FROM worker_drains d, now",
            (now, WORKER_GONE_AFTER_HEARTBEATS),
        ).fetchall()
    return {str(row[0]): bool(row[1]) for row in rows}
