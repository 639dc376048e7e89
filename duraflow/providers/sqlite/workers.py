"""The worker registry on SQLite: one row per runtime, one UPSERT per heartbeat.

A heartbeat is a single short write transaction (the UPSERT plus a DELETE of rows unseen for
longer than the retention, which finds nothing almost always), so many runtimes sharing a
file add a handful of writes per interval, not per activity.
"""

from __future__ import annotations

import sqlite3

from duraflow.core.models import WORKER_GONE_AFTER_HEARTBEATS, WorkerInfo
from duraflow.providers.common import WORKER_COLUMNS, worker_params, worker_row
from duraflow.providers.sqlite.db import transaction

_UPSERT = (
    f"INSERT INTO workers ({WORKER_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (worker_node_id, runtime_id) DO UPDATE SET"
    " host = excluded.host, pid = excluded.pid, tag_filter = excluded.tag_filter,"
    " tags = excluded.tags, orchestrations = excluded.orchestrations,"
    " activities = excluded.activities,"
    " orchestration_concurrency = excluded.orchestration_concurrency,"
    " worker_concurrency = excluded.worker_concurrency, max_sessions = excluded.max_sessions,"
    " sessions_held = excluded.sessions_held, started_at = excluded.started_at,"
    " last_seen_at = excluded.last_seen_at,"
    " heartbeat_interval_ms = excluded.heartbeat_interval_ms, build_id = excluded.build_id"
)


def heartbeat(conn: sqlite3.Connection, worker: WorkerInfo, retention_ms: int) -> None:
    params = worker_params(worker)
    with transaction(conn, write=True) as now:
        # last_seen_at sits between started_at and heartbeat_interval_ms in WORKER_COLUMNS
        conn.execute(_UPSERT, (*params[:13], now, *params[13:]))
        conn.execute("DELETE FROM workers WHERE last_seen_at < ?", (now - retention_ms,))


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
