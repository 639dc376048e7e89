"""The worker queue: one row per activity execution, peek-locked by whichever worker takes it.

A row is the activity's only claim to exist. Cancelling an activity deletes its row, so a
worker learns of cancellation exactly when its renewal or ack finds the row gone; that is
why both report a missing row as ``LockLostError``. Tag routing is a predicate in the fetch
query (one fixed statement per filter mode, tags bound as a JSON array), never a filter
applied after locking, so a worker can never lock a row it will not run. Session affinity is
part of the same predicate, and the session claim happens in the fetch's own transaction.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from duraflow.providers.clock import now_ms
from duraflow.providers.errors import LockLostError
from duraflow.providers.items import SessionClaim, WorkerTagFilter, WorkLease
from duraflow.providers.sqlite.codec import new_token
from duraflow.providers.sqlite.db import transaction
from duraflow.providers.sqlite.orchestrator_queue import INSERT_ORCH

_ELIGIBLE = (
    "SELECT w.id, w.session_id, s.worker_id, s.locked_until"
    " FROM worker_queue w LEFT JOIN sessions s ON s.session_id = w.session_id"
    " WHERE w.visible_at <= :now AND (w.lock_token IS NULL OR w.locked_until <= :now)"
)
#: Session rows: only with a claim, and only of sessions leased to one of the owners or
#: (allow_new) of sessions nobody holds.
_SESSIONS = (
    " AND (w.session_id IS NULL OR (:claim AND ("
    "(s.locked_until > :now AND s.worker_id IN (SELECT value FROM json_each(:owners)))"
    " OR (:allow_new AND (s.session_id IS NULL OR s.locked_until <= :now)))))"
)
_ORDER = " ORDER BY w.id LIMIT 1"
#: Builds: a worker with a build takes the rows of its build and unpinned ones.
_BUILD = " AND (w.build_id IS NULL OR w.build_id = :build)"
_TAGS: dict[str, str] = {
    "any": "",
    "default_only": " AND w.tag IS NULL",
    "tags": " AND w.tag IN (SELECT value FROM json_each(:tags))",
    "default_and": " AND (w.tag IS NULL OR w.tag IN (SELECT value FROM json_each(:tags)))",
}
#: One complete statement per filter mode, with and without a build; only the fixed
#: fragments are concatenated (a worker without a build runs today's statement exactly).
_FETCH_BY_MODE: dict[tuple[str, bool], str] = {
    (mode, built): _ELIGIBLE + tags + (_BUILD if built else "") + _SESSIONS + _ORDER
    for mode, tags in _TAGS.items() for built in (False, True)
}
_CLAIM = (
    "INSERT INTO sessions (session_id, worker_id, locked_until, last_activity_at)"
    " VALUES (?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET"
    " worker_id = excluded.worker_id, locked_until = excluded.locked_until,"
    " last_activity_at = excluded.last_activity_at"
)


def fetch(
    conn: sqlite3.Connection,
    lock_timeout_ms: int,
    tag_filter: WorkerTagFilter,
    session: SessionClaim | None,
    build_id: str | None = None,
) -> WorkLease | None:
    sql = _FETCH_BY_MODE.get((tag_filter.mode, build_id is not None))
    if sql is None:  # "none", or a mode WorkerTagFilter.matches would reject everything for
        return None
    params: dict[str, Any] = {
        "build": build_id,
        "tags": json.dumps(list(tag_filter.tags)),
        "claim": session is not None,
        "owners": json.dumps(list(session.owners) if session is not None else []),
        "allow_new": session is not None and session.allow_new,
    }
    if conn.execute(sql, {**params, "now": now_ms()}).fetchone() is None:
        return None  # lock-free probe, as for the orchestrator queue
    with transaction(conn, write=True) as now:
        row = conn.execute(sql, {**params, "now": now}).fetchone()
        if row is None:
            return None
        row_id, session_id, holder, held_until = row
        owner = None
        if session_id is not None and session is not None:
            # We hold the write lock, so the lease read above cannot change under us.
            mine = holder in session.owners and held_until is not None and held_until > now
            owner = holder if mine else session.owners[0]
            conn.execute(
                _CLAIM, (session_id, owner, now + max(int(session.lock_timeout_ms), 0), now)
            )
        token = new_token()
        conn.execute(
            "UPDATE worker_queue SET lock_token = ?, locked_until = ?,"
            " attempt_count = attempt_count + 1 WHERE id = ?",
            (token, now + max(int(lock_timeout_ms), 0), row_id),
        )
        item = conn.execute(
            "SELECT work_item, attempt_count, instance_id, execution_id, activity_id,"
            " session_id, tag FROM worker_queue WHERE id = ?",
            (row_id,),
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
        session_owner=owner,
    )


def _touch_session(conn: sqlite3.Connection, token: str, now: int) -> None:
    """A session stays active while its activities are fetched, renewed and acked."""
    conn.execute(
        "UPDATE sessions SET last_activity_at = ? WHERE session_id ="
        " (SELECT session_id FROM worker_queue WHERE lock_token = ?)",
        (now, token),
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
        _touch_session(conn, token, now)
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
        _touch_session(conn, token, now)


def lost(conn: sqlite3.Connection, tokens: list[str]) -> set[str]:
    """The tokens that no longer name a live locked row (one query for all of them)."""
    live = conn.execute(
        "SELECT lock_token FROM worker_queue"
        " WHERE lock_token IN (SELECT value FROM json_each(?)) AND locked_until > ?",
        (json.dumps(tokens), now_ms()),
    ).fetchall()
    return set(tokens) - {str(row[0]) for row in live}


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
