"""Session leases on SQLite: renewal by the owning runtime, release, and cleanup.

The claim itself happens inside the worker fetch (``worker_queue.fetch``); these are the
periodic and shutdown operations of the runtime's session manager, each one short write
transaction.
"""

from __future__ import annotations

import json
import sqlite3

from duraflow.providers.sqlite.db import transaction


def renew(
    conn: sqlite3.Connection, owners: list[str], extend_ms: int, idle_timeout_ms: int
) -> list[str]:
    mine = json.dumps(owners)
    with transaction(conn, write=True) as now:
        conn.execute(
            "DELETE FROM sessions WHERE worker_id IN (SELECT value FROM json_each(?))"
            " AND locked_until > ? AND last_activity_at <= ?",
            (mine, now, now - idle_timeout_ms),
        )
        conn.execute(
            "UPDATE sessions SET locked_until = ?"
            " WHERE worker_id IN (SELECT value FROM json_each(?)) AND locked_until > ?",
            (now + extend_ms, mine, now),
        )
        rows = conn.execute(
            "SELECT session_id FROM sessions"
            " WHERE worker_id IN (SELECT value FROM json_each(?)) AND locked_until > ?"
            " ORDER BY session_id",
            (mine, now),
        ).fetchall()
    return [str(row[0]) for row in rows]


def release(conn: sqlite3.Connection, owners: list[str]) -> int:
    with transaction(conn, write=True):
        cur = conn.execute(
            "DELETE FROM sessions WHERE worker_id IN (SELECT value FROM json_each(?))",
            (json.dumps(owners),),
        )
    return cur.rowcount


def cleanup(conn: sqlite3.Connection) -> int:
    with transaction(conn, write=True) as now:
        cur = conn.execute(
            "DELETE FROM sessions WHERE locked_until <= ? AND NOT EXISTS"
            " (SELECT 1 FROM worker_queue w WHERE w.session_id = sessions.session_id)",
            (now,),
        )
    return cur.rowcount
