"""The worker queue: one row per activity execution, peek-locked by whichever worker takes it.

A row is the activity's only claim to exist. Cancelling an activity deletes its row, so a
worker learns of cancellation exactly when its renewal or ack finds the row gone; that is
why both report a missing row as ``LockLostError``. Tag routing is a predicate in the fetch
query (one fixed statement per filter mode, tags bound as a JSON array), never a filter
applied after locking, so a worker can never lock a row it will not run.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from duraflow.providers.base import LockLostError, TagFilter, WorkLease, now_ms
from duraflow.providers.sqlite.db import transaction
from duraflow.providers.sqlite.orchestration import INSERT_ORCH, new_token

_ELIGIBLE = (
    "SELECT id FROM worker_queue"
    " WHERE visible_at <= :now AND (lock_token IS NULL OR locked_until <= :now)"
)
_ORDER = " ORDER BY id LIMIT 1"
#: One complete statement per filter mode; only the fixed fragments are concatenated.
_FETCH_BY_MODE: dict[str, str] = {
    "any": _ELIGIBLE + _ORDER,
    "default_only": _ELIGIBLE + " AND tag IS NULL" + _ORDER,
    "tags": _ELIGIBLE + " AND tag IN (SELECT value FROM json_each(:tags))" + _ORDER,
    "default_and": _ELIGIBLE
    + " AND (tag IS NULL OR tag IN (SELECT value FROM json_each(:tags)))"
    + _ORDER,
}


def fetch(
    conn: sqlite3.Connection, lock_timeout_ms: int, tag_filter: TagFilter
) -> WorkLease | None:
    sql = _FETCH_BY_MODE.get(tag_filter.mode)
    if sql is None:  # "none", or a mode TagFilter.matches would reject everything for
        return None
    tags = json.dumps(list(tag_filter.tags))
    if conn.execute(sql, {"now": now_ms(), "tags": tags}).fetchone() is None:
        return None  # lock-free probe, as for the orchestrator queue
    with transaction(conn, write=True) as now:
        row = conn.execute(sql, {"now": now, "tags": tags}).fetchone()
        if row is None:
            return None
        token = new_token()
        conn.execute(
            "UPDATE worker_queue SET lock_token = ?, locked_until = ?,"
            " attempt_count = attempt_count + 1 WHERE id = ?",
            (token, now + max(int(lock_timeout_ms), 0), row[0]),
        )
        item = conn.execute(
            "SELECT work_item, attempt_count, instance_id, execution_id, activity_id,"
            " session_id, tag FROM worker_queue WHERE id = ?",
            (row[0],),
        ).fetchone()
    decoded: Any = json.loads(item[0])
    return WorkLease(
        lock_token=token,
        attempt_count=int(item[1]),
        item=decoded,
        instance_id=str(item[2]),
        execution_id=int(item[3]),
        activity_id=int(item[4]),
        session_id=item[5],
        tag=item[6],
    )


def _lost(conn: sqlite3.Connection, operation: str, token: str) -> LockLostError:
    exists = conn.execute("SELECT 1 FROM worker_queue WHERE lock_token = ?", (token,)).fetchone()
    if exists is None:
        return LockLostError(operation, "work item not found (cancelled, acked or re-locked)")
    return LockLostError(operation, "work item lock expired")


def ack(
    conn: sqlite3.Connection,
    token: str,
    completion: tuple[str, str, int | None] | None,
) -> int | None:
    """Delete the row and enqueue ``(instance, json, visible_at)``; returns its visible_at."""
    with transaction(conn, write=True) as now:
        cur = conn.execute(
            "DELETE FROM worker_queue WHERE lock_token = ? AND locked_until > ?", (token, now)
        )
        if cur.rowcount == 0:
            raise _lost(conn, "ack_work_item", token)
        if completion is None:
            return None
        instance_id, encoded, at = completion
        visible_at = now if at is None else at
        conn.execute(INSERT_ORCH, (instance_id, encoded, visible_at, now))
    return visible_at


def renew(conn: sqlite3.Connection, token: str, extend_ms: int) -> None:
    with transaction(conn, write=True) as now:
        cur = conn.execute(
            "UPDATE worker_queue SET locked_until = ? WHERE lock_token = ? AND locked_until > ?",
            (now + max(int(extend_ms), 0), token, now),
        )
        if cur.rowcount == 0:
            raise _lost(conn, "renew_work_item_lock", token)


def abandon(
    conn: sqlite3.Connection, token: str, delay_ms: int | None, ignore_attempt: bool
) -> int | None:
    """Unlock the row; returns when it becomes visible again (None: now)."""
    with transaction(conn, write=True) as now:
        visible_at = now + delay_ms if delay_ms is not None and delay_ms > 0 else None
        cur = conn.execute(
            "UPDATE worker_queue SET lock_token = NULL, locked_until = NULL,"
            " attempt_count = CASE WHEN ? THEN MAX(attempt_count - 1, 0) ELSE attempt_count END,"
            " visible_at = COALESCE(?, visible_at)"
            " WHERE lock_token = ?",
            (ignore_attempt, visible_at, token),
        )
        if cur.rowcount == 0:
            raise LockLostError("abandon_work_item", "Invalid lock token")
    return visible_at
