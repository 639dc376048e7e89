"""The orchestrator queue and instance locks: enqueue, fetch, commit a turn, abandon, renew.

Each public function here runs on the database thread and is one complete operation in one
transaction. The instance lock (a row in ``instance_locks``) is the unit of exclusion;
messages carry the lock's token only so that the commit deletes exactly the batch that was
handed out. A message that arrives while an instance is locked has no token, so it survives
the commit and starts the next turn. Expired locks need no sweeper: the next fetch simply
overwrites them.

The turn commit (``commit_turn``) lives here, as PostgreSQL's does in its
``orchestrator_queue.py``, because it is the second half of the lock protocol the fetch
starts: it validates the lock the fetch took, consumes the messages the fetch tagged, and
releases or holds the lock, so the whole life of an instance lock reads in one module.
Encoding the turn before the thread hop is ``codec``'s job.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from duraflow.core.events import HistoryEvent, HistoryFormatError
from duraflow.core.models import RUNNING
from duraflow.core.status import Status
from duraflow.core.workitems import WorkItem
from duraflow.providers.clock import now_ms
from duraflow.providers.common import decode_item
from duraflow.providers.errors import LockLostError, ProviderError
from duraflow.providers.items import OrchestrationItem, OutboundMessage
from duraflow.providers.sqlite.codec import PreparedCommit, new_token
from duraflow.providers.sqlite.db import transaction

_CANDIDATE = """
    SELECT q.instance_id FROM orchestrator_queue q
    LEFT JOIN instance_locks l ON l.instance_id = q.instance_id
    WHERE q.visible_at <= :now AND (l.instance_id IS NULL OR l.locked_until <= :now)
      AND (:max_v IS NULL OR NOT EXISTS (
          SELECT 1 FROM instances pv WHERE pv.instance_id = q.instance_id
          AND pv.pinned_version NOT BETWEEN :min_v AND :max_v))
    {build}ORDER BY q.visible_at, q.id
    LIMIT 1
"""
#: Builds: a runtime with a build takes instances pinned to it, and unpinned ones (new
#: instances, the next execution after a continue-as-new) only while its build is current.
#: A runtime without one takes everything: its statement has no such clause at all.
_BUILD_RULE = """AND COALESCE(
          (SELECT pb.pinned_build FROM instances pb WHERE pb.instance_id = q.instance_id),
          (SELECT b.build_id FROM builds b WHERE b.build_id = :build AND b.state = 'current')
      ) = :build
    """
_CANDIDATES = {False: _CANDIDATE.format(build=""), True: _CANDIDATE.format(build=_BUILD_RULE)}
_TAKE_LOCK = """
    INSERT INTO instance_locks (instance_id, lock_token, locked_until, locked_at)
    VALUES (:instance, :token, :until, :now)
    ON CONFLICT (instance_id) DO UPDATE
        SET lock_token = excluded.lock_token,
            locked_until = excluded.locked_until,
            locked_at = excluded.locked_at
        WHERE instance_locks.locked_until <= :now
"""
_TAG_MESSAGES = """
    UPDATE orchestrator_queue
    SET lock_token = :token, locked_until = :until, attempt_count = attempt_count + 1
    WHERE instance_id = :instance AND visible_at <= :now
"""
_INSTANCE_STATE = """
    SELECT i.orchestration_name, i.orchestration_version, i.current_execution_id,
           i.parent_instance_id, e.status, e.event_count
    FROM instances i
    LEFT JOIN executions e
        ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
    WHERE i.instance_id = ?
"""
INSERT_ORCH = """
    INSERT INTO orchestrator_queue (instance_id, work_item, visible_at, created_at)
    VALUES (?, ?, ?, ?)
"""
_INSERT_WORKER = """
    INSERT INTO worker_queue (work_item, visible_at, created_at, instance_id, execution_id,
                              activity_id, session_id, tag, lock_token, locked_until,
                              attempt_count, build_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def load_history(conn: sqlite3.Connection, instance_id: str, execution_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT event_data FROM history WHERE instance_id = ? AND execution_id = ?"
        " ORDER BY event_id",
        (instance_id, execution_id),
    ).fetchall()
    return [str(row[0]) for row in rows]


# ─── Fetch ───────────────────────────────────────────────────────────────────


def fetch(
    conn: sqlite3.Connection,
    lock_timeout_ms: int,
    cached: Mapping[str, tuple[int, int]] | None,
    replay_range: tuple[int, int] | None = None,
    build_id: str | None = None,
) -> OrchestrationItem | None:
    # A lock-free probe first: idle pollers in other processes must not queue up on the
    # write lock just to learn that there is nothing to do.
    low, high = replay_range if replay_range is not None else (None, None)
    probe = {"now": now_ms(), "min_v": low, "max_v": high, "build": build_id}
    candidate = _CANDIDATES[build_id is not None]
    if conn.execute(candidate, probe).fetchone() is None:
        return None
    with transaction(conn, write=True) as now:
        row = conn.execute(candidate, {**probe, "now": now}).fetchone()
        if row is None:
            return None
        instance_id = str(row[0])
        token = new_token()
        until = now + max(int(lock_timeout_ms), 0)
        params = {"instance": instance_id, "token": token, "until": until, "now": now}
        if conn.execute(_TAKE_LOCK, params).rowcount == 0:
            return None  # unreachable while we hold the write lock; kept as a guard
        conn.execute(_TAG_MESSAGES, params)
        return _build_item(conn, instance_id, token, cached)


def fetch_many(
    conn: sqlite3.Connection,
    lock_timeout_ms: int,
    cached: Mapping[str, tuple[int, int]] | None,
    max_items: int,
    replay_range: tuple[int, int] | None = None,
    build_id: str | None = None,
) -> list[OrchestrationItem]:
    """Up to ``max_items`` fetches in one hop to the database thread (each its own short
    write transaction, so the write lock is never held across instances)."""
    items: list[OrchestrationItem] = []
    for _ in range(max(int(max_items), 1)):
        item = fetch(conn, lock_timeout_ms, cached, replay_range, build_id)
        if item is None:
            break
        items.append(item)
    return items


def _build_item(
    conn: sqlite3.Connection,
    instance_id: str,
    token: str,
    cached: Mapping[str, tuple[int, int]] | None,
) -> OrchestrationItem:
    rows = conn.execute(
        "SELECT id, work_item, attempt_count FROM orchestrator_queue WHERE lock_token = ?"
        " ORDER BY id",
        (token,),
    ).fetchall()
    messages: list[WorkItem] = []
    errors: list[str] = []
    for message_id, text, _ in rows:
        try:
            messages.append(decode_item(text))
        except ValueError as exc:
            # Poison the instance rather than the queue: the batch stays locked and counted,
            # so the runtime eventually fails it instead of every fetch erroring forever.
            errors.append(f"undecodable queue message {message_id}: {exc}")
    attempt_count = max((int(r[2]) for r in rows), default=1)

    state = conn.execute(_INSTANCE_STATE, (instance_id,)).fetchone()
    if state is None:
        name = version = parent = status = None
        execution_id, history_len = 1, 0
    else:
        name, version, execution_id, parent, status, history_len = state
        execution_id = int(execution_id)
        history_len = int(history_len or 0)

    history: list[HistoryEvent] | None
    if cached is not None and cached.get(instance_id) == (execution_id, history_len):
        history = None
    elif state is None:
        history = []
    else:
        try:
            history = [
                HistoryEvent.from_json(text)
                for text in load_history(conn, instance_id, execution_id)
            ]
        except HistoryFormatError as exc:
            history = []
            errors.append(str(exc))
    return OrchestrationItem(
        instance_id=instance_id,
        lock_token=token,
        attempt_count=attempt_count,
        messages=messages,
        orchestration_name=name,
        orchestration_version=version,
        execution_id=execution_id,
        execution_status=status,
        history_len=history_len,
        history=history,
        parent_instance_id=parent,
        history_error="; ".join(errors) if errors else None,
    )


# ─── Commit ──────────────────────────────────────────────────────────────────


def commit_turn(
    conn: sqlite3.Connection, token: str, prepared: PreparedCommit
) -> tuple[str, bool, int | None]:
    """Commit one turn, every write of it in one ``BEGIN IMMEDIATE``; returns the instance
    id, whether its lock is still held and, when the turn ended an instance a schedule
    started, that schedule's due time (a trigger may have made it due now: a tick waited for
    this run). Raises before writing anything on error.

    This is the path every turn takes, so the order of the writes is deliberate: validate
    the lock first (nothing is written on a lost lock), create the instance before anything
    that references it, append history (a duplicate event id aborts the whole turn), then
    enqueue, then cancel (so an activity scheduled and cancelled in the same turn leaves no
    row), and only then consume the fetched messages and release the lock.
    """
    op = "ack_orchestration_item"
    c = prepared.commit
    with transaction(conn, write=True) as now:
        lock = conn.execute(
            "SELECT instance_id, locked_until FROM instance_locks WHERE lock_token = ?", (token,)
        ).fetchone()
        if lock is None:
            raise LockLostError(op, "Invalid lock token (lock lost or instance deleted)")
        # A continuation (completed_work) may find its hold expired; an unchanged token
        # still proves nobody took the instance over.
        if int(lock[1]) <= now and not c.completed_work:
            raise LockLostError(op, "Instance lock expired")
        instance_id = str(lock[0])
        for work_token in c.completed_work:
            if conn.execute(
                "DELETE FROM worker_queue WHERE lock_token = ?", (work_token,)
            ).rowcount != 1:
                raise LockLostError(op, "work item not found (cancelled or re-locked)")

        exists = (
            conn.execute("SELECT 1 FROM instances WHERE instance_id = ?", (instance_id,)).fetchone()
            is not None
        )
        if not exists and c.orchestration_name is not None:
            conn.execute(
                "INSERT INTO instances (instance_id, orchestration_name, orchestration_version,"
                " current_execution_id, parent_instance_id, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    instance_id,
                    c.orchestration_name,
                    c.orchestration_version,
                    c.execution_id,
                    c.parent_instance_id,
                    now,
                    now,
                ),
            )
            exists = True
        if exists:
            _write_instance_state(conn, instance_id, prepared, now)
        elif prepared.writes_instance_state:
            raise ProviderError(
                op,
                f"instance '{instance_id}' does not exist and the commit names no "
                "orchestration_name, so its history and status cannot be stored",
                retryable=False,
            )

        claim_until = now + (c.claim_lock_ms or 0)
        conn.executemany(
            _INSERT_WORKER,
            [
                (item, now, now, inst, ex, act, ses, tag, claim,
                 None if claim is None else claim_until, 0 if claim is None else 1, c.build_id)
                for (item, inst, ex, act, ses, tag), claim in zip(
                    prepared.worker_rows, prepared.claim_tokens, strict=True)
            ],
        )
        conn.executemany(
            INSERT_ORCH,
            [
                (inst, item, now if at is None else at, now)
                for inst, item, at in prepared.orchestrator_rows
            ],
        )
        # After the inserts: an activity scheduled and cancelled in one turn leaves no row.
        conn.executemany(
            "DELETE FROM worker_queue WHERE instance_id = ? AND execution_id = ?"
            " AND activity_id = ?",
            [(a.instance_id, a.execution_id, a.activity_id) for a in c.cancelled_activities],
        )
        conn.execute("DELETE FROM orchestrator_queue WHERE lock_token = ?", (token,))
        # Visible messages end a hold: they need a turn, which any dispatcher may run.
        waiting = conn.execute(
            "SELECT 1 FROM orchestrator_queue WHERE instance_id = ? AND visible_at <= ?"
            " LIMIT 1",
            (instance_id, now),
        ).fetchone()
        held = c.hold_ms is not None and waiting is None
        if held:
            conn.execute(
                "UPDATE instance_locks SET locked_until = ? WHERE lock_token = ?",
                (now + int(c.hold_ms or 0), token),
            )
        else:
            conn.execute("DELETE FROM instance_locks WHERE lock_token = ?", (token,))
        schedule_due = _schedule_due(conn, instance_id) if c.status in Status.TERMINAL else None
    return instance_id, held, schedule_due


def _schedule_due(conn: sqlite3.Connection, instance_id: str) -> int | None:
    row = conn.execute(
        "SELECT MIN(s.due_at) FROM schedule_runs r JOIN schedules s"
        " ON s.schedule_id = r.schedule_id WHERE r.instance_id = ?", (instance_id,)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _write_instance_state(
    conn: sqlite3.Connection, instance_id: str, prepared: PreparedCommit, now: int
) -> None:
    c = prepared.commit
    if c.orchestration_version is not None:
        # Filled in when unknown, and replaced when a new execution starts (a versioned
        # continue-as-new moves the instance to the new version).
        conn.execute(
            "UPDATE instances SET orchestration_version = ? WHERE instance_id = ?"
            " AND (orchestration_version IS NULL OR current_execution_id < ?)",
            (c.orchestration_version, instance_id, c.execution_id),
        )
    conn.execute(
        "INSERT INTO executions (instance_id, execution_id, status, started_at, build_id)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (instance_id, execution_id) DO NOTHING",
        (instance_id, c.execution_id, RUNNING, now, c.build_id),
    )
    if c.build_id is not None:  # an execution started before builds is pinned now
        conn.execute(
            "UPDATE executions SET build_id = ? WHERE instance_id = ? AND execution_id = ?"
            " AND build_id IS NULL",
            (c.build_id, instance_id, c.execution_id),
        )
    # The instance carries its running execution's pin (what the fetch filters on); an
    # execution that ends leaves it unpinned, so the next one pins on its own first turn.
    conn.execute(
        "UPDATE instances SET current_execution_id = MAX(current_execution_id, ?),"
        " updated_at = ?, pinned_build = CASE WHEN ? THEN NULL"
        " ELSE COALESCE(pinned_build, ?) END WHERE instance_id = ?",
        (c.execution_id, now, c.status in Status.EXECUTION_ENDED, c.build_id, instance_id),
    )
    if prepared.events:
        try:
            conn.executemany(
                "INSERT INTO history (instance_id, execution_id, event_id, event_type,"
                " event_data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (instance_id, c.execution_id, eid, kind, text, now)
                    for eid, kind, text in prepared.events
                ],
            )
        except sqlite3.IntegrityError as exc:
            ids = [eid for eid, _, _ in prepared.events]
            raise ProviderError(
                "ack_orchestration_item",
                f"duplicate history event id for instance '{instance_id}' execution "
                f"{c.execution_id} (delta ids {ids}); history is append-only: {exc}",
                retryable=False,
            ) from exc
        conn.execute(
            "UPDATE executions SET last_event_id = MAX(last_event_id, ?),"
            " event_count = event_count + ? WHERE instance_id = ? AND execution_id = ?",
            (max(e[0] for e in prepared.events), len(prepared.events), instance_id, c.execution_id),
        )
    if c.status is not None:
        conn.execute(
            "UPDATE executions SET status = ?, output = ?,"
            " completed_at = CASE WHEN ? THEN ? ELSE completed_at END"
            " WHERE instance_id = ? AND execution_id = ?",
            (c.status, c.output, c.status in Status.EXECUTION_ENDED, now, instance_id,
             c.execution_id),
        )
    elif c.output is not None:
        conn.execute(
            "UPDATE executions SET output = ? WHERE instance_id = ? AND execution_id = ?",
            (c.output, instance_id, c.execution_id),
        )
    if c.custom_status_set:
        conn.execute(
            "UPDATE instances SET custom_status = ?,"
            " custom_status_version = custom_status_version + 1 WHERE instance_id = ?",
            (c.custom_status, instance_id),
        )
    for m in c.kv_mutations:
        if m.action == "set":
            conn.execute(
                "INSERT INTO kv_store (instance_id, key, value, updated_at_ms) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (instance_id, key) DO UPDATE SET value = excluded.value,"
                " updated_at_ms = excluded.updated_at_ms",
                (instance_id, m.key, m.value, m.updated_at_ms),
            )
        elif m.action == "clear":
            conn.execute(
                "DELETE FROM kv_store WHERE instance_id = ? AND key = ?", (instance_id, m.key)
            )
        else:
            conn.execute("DELETE FROM kv_store WHERE instance_id = ?", (instance_id,))


# ─── Abandon, renew, enqueue, due time ───────────────────────────────────────


def abandon(
    conn: sqlite3.Connection, token: str, delay_ms: int | None, ignore_attempt: bool
) -> tuple[str, int | None]:
    """Release a lock; returns the instance and when its messages become visible again."""
    with transaction(conn, write=True) as now:
        lock = conn.execute(
            "SELECT instance_id FROM instance_locks WHERE lock_token = ?", (token,)
        ).fetchone()
        if lock is None:
            raise LockLostError("abandon_orchestration_item", "Invalid lock token")
        visible_at = now + delay_ms if delay_ms is not None and delay_ms > 0 else None
        conn.execute(
            "UPDATE orchestrator_queue SET lock_token = NULL, locked_until = NULL,"
            " attempt_count = CASE WHEN ? THEN MAX(attempt_count - 1, 0) ELSE attempt_count END,"
            " visible_at = COALESCE(?, visible_at)"
            " WHERE lock_token = ?",
            (ignore_attempt, visible_at, token),
        )
        conn.execute("DELETE FROM instance_locks WHERE lock_token = ?", (token,))
    return str(lock[0]), visible_at


def renew(conn: sqlite3.Connection, token: str, extend_ms: int) -> None:
    with transaction(conn, write=True) as now:
        until = now + max(int(extend_ms), 0)
        cur = conn.execute(
            "UPDATE instance_locks SET locked_until = ? WHERE lock_token = ? AND locked_until > ?",
            (until, token, now),
        )
        if cur.rowcount == 0:
            raise LockLostError("renew_orchestration_item_lock", "lock lost or expired")
        conn.execute(
            "UPDATE orchestrator_queue SET locked_until = ? WHERE lock_token = ?", (until, token)
        )


def enqueue(conn: sqlite3.Connection, message: OutboundMessage, encoded: str) -> int:
    """Insert one message (never creates an instance); returns its visible_at."""
    with transaction(conn, write=True) as now:
        visible_at = now if message.visible_at_ms is None else message.visible_at_ms
        conn.execute(INSERT_ORCH, (message.instance_id, encoded, visible_at, now))
    return visible_at


def next_due(conn: sqlite3.Connection) -> int | None:
    row = conn.execute(
        "SELECT MIN(visible_at) FROM orchestrator_queue WHERE visible_at > ?", (now_ms(),)
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])
