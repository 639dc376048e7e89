"""Committing one orchestration turn: every write of the turn in one ``BEGIN IMMEDIATE``.

This is the path every turn takes, so the order of the writes is deliberate: validate the
lock first (nothing is written on a lost lock), create the instance before anything that
references it, append history (a duplicate event id aborts the whole turn), then enqueue,
then cancel (so an activity scheduled and cancelled in the same turn leaves no row), and
only then consume the fetched messages and release the lock.

JSON encoding happens before the thread hop (``prepare_commit``): a value that cannot be
encoded fails in the caller, and the write lock is held only for SQL.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from duraflow.core.models import RUNNING
from duraflow.providers.common import encode_item
from duraflow.providers.errors import LockLostError, ProviderError
from duraflow.providers.items import TurnCommit, WorkLease
from duraflow.providers.sqlite.db import transaction
from duraflow.providers.sqlite.orchestrator_queue import INSERT_ORCH, TERMINAL_STATUSES, new_token

_INSERT_WORKER = """
    INSERT INTO worker_queue (work_item, visible_at, created_at, instance_id, execution_id,
                              activity_id, session_id, tag, lock_token, locked_until,
                              attempt_count)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


@dataclass(frozen=True, slots=True)
class PreparedCommit:
    """A ``TurnCommit`` with everything already encoded, ready to bind as SQL parameters."""

    commit: TurnCommit
    events: list[tuple[int, str, str]]  # (event_id, kind, json)
    worker_rows: list[tuple[str, str, int, int, str | None, str | None]]
    orchestrator_rows: list[tuple[str, str, int | None]]  # (instance, json, visible_at)
    claim_tokens: list[str | None]  # per worker row: the lock token when claimed

    @property
    def writes_instance_state(self) -> bool:
        c = self.commit
        return (
            bool(self.events)
            or c.status is not None
            or c.output is not None
            or (c.custom_status_set)
            or bool(c.kv_mutations)
        )


def prepare_commit(commit: TurnCommit) -> PreparedCommit:
    op = "ack_orchestration_item"
    events = [(e.event_id, e.kind, e.to_json()) for e in commit.history_delta]
    workers = [
        (
            encode_item(op, w.item),
            w.instance_id,
            w.execution_id,
            w.activity_id,
            w.session_id,
            w.tag,
        )
        for w in commit.worker_items
    ]
    outbound = [
        (m.instance_id, encode_item(op, m.item), m.visible_at_ms) for m in commit.orchestrator_items
    ]
    tokens = [
        new_token() if w.claim and commit.claim_lock_ms else None for w in commit.worker_items
    ]
    return PreparedCommit(commit, events, workers, outbound, tokens)


def claimed_leases(prepared: PreparedCommit) -> list[WorkLease]:
    """The leases of the worker items the commit inserted locked (attempt 1), in order."""
    return [
        WorkLease(token, 1, w.item, w.instance_id, w.execution_id, w.activity_id,
                  w.session_id, w.tag)
        for w, token in zip(prepared.commit.worker_items, prepared.claim_tokens, strict=True)
        if token is not None
    ]


def ack(conn: sqlite3.Connection, token: str, prepared: PreparedCommit) -> tuple[str, bool]:
    """Commit one turn; returns the instance id and whether its lock is still held.
    Raises before writing anything on error."""
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
                 None if claim is None else claim_until, 0 if claim is None else 1)
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
    return instance_id, held


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
        "INSERT INTO executions (instance_id, execution_id, status, started_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (instance_id, execution_id) DO NOTHING",
        (instance_id, c.execution_id, RUNNING, now),
    )
    conn.execute(
        "UPDATE instances SET current_execution_id = MAX(current_execution_id, ?),"
        " updated_at = ? WHERE instance_id = ?",
        (c.execution_id, now, instance_id),
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
            (c.status, c.output, c.status in TERMINAL_STATUSES, now, instance_id, c.execution_id),
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
