"""Builds on SQLite: registering, listing and changing build states, moving an instance,
retirement, and the claim and finish of a replay-verified upgrade (``build_rules`` has the
rules; docs/rollouts.md the why). Each function is one transaction on the database thread;
SQLite has one writer at a time, so a state change needs no lock of its own.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from duraflow.core.events import HistoryEvent, HistoryFormatError
from duraflow.core.models import WORKER_GONE_AFTER_HEARTBEATS, BuildInfo
from duraflow.providers import build_rules as rules
from duraflow.providers.errors import InstanceNotFoundError, LockLostError, UnknownBuildError
from duraflow.providers.items import UpgradeClaim
from duraflow.providers.sqlite.codec import new_token
from duraflow.providers.sqlite.db import Database, transaction
from duraflow.providers.sqlite.orchestrator_queue import load_history
from duraflow.providers.wakeups import Notifier

#: Something still needs build ``b.build_id``: a running execution or an activity row.
_PINNED = (
    "(EXISTS (SELECT 1 FROM executions e WHERE e.build_id = b.build_id"
    " AND e.status = 'Running')"
    " OR EXISTS (SELECT 1 FROM worker_queue w WHERE w.build_id = b.build_id))"
)


def _state(conn: sqlite3.Connection, operation: str, build_id: str) -> str:
    row = conn.execute("SELECT state FROM builds WHERE build_id = ?", (build_id,)).fetchone()
    if row is None:
        known = [str(r[0]) for r in conn.execute("SELECT build_id FROM builds ORDER BY 1")]
        raise UnknownBuildError(operation, build_id, known)
    return str(row[0])


def _promote(conn: sqlite3.Connection, build_id: str, now: int) -> None:
    conn.execute("UPDATE builds SET state = ?, state_changed_at = ? WHERE state = ?",
                 (rules.DRAINING, now, rules.CURRENT))
    conn.execute("UPDATE builds SET state = ?, state_changed_at = ? WHERE build_id = ?",
                 (rules.CURRENT, now, build_id))


def register(conn: sqlite3.Connection, build_id: str, auto_promote: bool) -> str:
    with transaction(conn, write=True) as now:
        row = conn.execute("SELECT state FROM builds WHERE build_id = ?", (build_id,)).fetchone()
        if row is not None:
            return str(row[0])
        conn.execute("INSERT INTO builds (build_id, state, first_seen_at, state_changed_at)"
                     " VALUES (?, ?, ?, ?)", (build_id, rules.PENDING, now, now))
        if auto_promote:
            _promote(conn, build_id, now)
            return rules.CURRENT
    return rules.PENDING


def list_builds(conn: sqlite3.Connection) -> list[BuildInfo]:
    with transaction(conn, write=False) as now:
        rows = conn.execute(
            "SELECT b.build_id, b.state, b.first_seen_at,"
            " (SELECT count(*) FROM workers w WHERE w.build_id = b.build_id"
            "  AND w.last_seen_at >= ? - ? * w.heartbeat_interval_ms),"
            " (SELECT count(*) FROM executions e WHERE e.build_id = b.build_id"
            "  AND e.status = 'Running')"
            " FROM builds b ORDER BY b.first_seen_at, b.rowid",
            (now, WORKER_GONE_AFTER_HEARTBEATS),
        ).fetchall()
    return [rules.build_info(row) for row in rows]


def set_current(conn: sqlite3.Connection, build_id: str) -> None:
    with transaction(conn, write=True) as now:
        if _state(conn, "set_current_build", build_id) != rules.CURRENT:
            _promote(conn, build_id, now)


def drain(conn: sqlite3.Connection, build_id: str) -> None:
    with transaction(conn, write=True) as now:
        if _state(conn, "drain_build", build_id) in rules.DRAINABLE:
            conn.execute("UPDATE builds SET state = ?, state_changed_at = ? WHERE build_id = ?",
                         (rules.DRAINING, now, build_id))


def move_instance(conn: sqlite3.Connection, instance_id: str, build_id: str) -> None:
    """Re-pin the running execution (and its activities not running now) and drop the
    instance's lock: a turn of the old build in flight cannot commit, and its messages are
    processed again by the new build."""
    op = "move_instance"
    with transaction(conn, write=True) as now:
        state = _state(conn, op, build_id)
        row = conn.execute(
            "SELECT i.current_execution_id, e.status FROM instances i LEFT JOIN executions e"
            " ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id"
            " WHERE i.instance_id = ?", (instance_id,)).fetchone()
        if row is None:
            raise InstanceNotFoundError(op, instance_id)
        execution_id, status = int(row[0]), row[1]
        if status != "Running":
            raise rules.not_running(op, instance_id, status)
        conn.execute("UPDATE executions SET build_id = ? WHERE instance_id = ?"
                     " AND execution_id = ?", (build_id, instance_id, execution_id))
        conn.execute("UPDATE instances SET pinned_build = ? WHERE instance_id = ?",
                     (build_id, instance_id))
        conn.execute("UPDATE worker_queue SET build_id = ? WHERE instance_id = ?"
                     " AND execution_id = ? AND (lock_token IS NULL OR locked_until <= ?)",
                     (build_id, instance_id, execution_id, now))
        conn.execute("DELETE FROM instance_locks WHERE instance_id = ?", (instance_id,))
        if state == rules.RETIRED:
            conn.execute("UPDATE builds SET state = ?, state_changed_at = ? WHERE build_id = ?",
                         (rules.DRAINING, now, build_id))


def adopt_unpinned(conn: sqlite3.Connection, build_id: str) -> int:
    """Register ``build_id`` if unknown (``rules.adopted_state``) and pin to it the running
    executions no build is pinned to, with their activity rows of no build (one writer at
    a time: no turn commits in between)."""
    with transaction(conn, write=True) as now:
        if conn.execute("SELECT 1 FROM builds WHERE build_id = ?", (build_id,)).fetchone() is None:
            current = conn.execute("SELECT count(*) FROM builds WHERE state = ?",
                                   (rules.CURRENT,)).fetchone()[0]
            conn.execute("INSERT INTO builds (build_id, state, first_seen_at, state_changed_at)"
                         " VALUES (?, ?, ?, ?)",
                         (build_id, rules.adopted_state(bool(current)), now, now))
        rows = conn.execute("SELECT instance_id, execution_id FROM executions"
                            " WHERE build_id IS NULL AND status = 'Running'").fetchall()
        for instance_id, execution_id in rows:
            conn.execute("UPDATE executions SET build_id = ? WHERE instance_id = ?"
                         " AND execution_id = ?", (build_id, instance_id, execution_id))
            conn.execute("UPDATE instances SET pinned_build = ? WHERE instance_id = ?",
                         (build_id, instance_id))
            conn.execute("UPDATE worker_queue SET build_id = ? WHERE instance_id = ?"
                         " AND execution_id = ? AND build_id IS NULL",
                         (build_id, instance_id, execution_id))
    return len(rows)


def refresh_states(conn: sqlite3.Connection, retire_after_ms: int) -> list[tuple[str, str]]:
    """Retire drained builds, bring back retired ones something is pinned to again; returns
    ``(build, new state)`` of each change."""
    with transaction(conn, write=True) as now:
        rows = conn.execute(
            f"SELECT b.build_id, b.state, {_PINNED} FROM builds b WHERE b.state IN (?, ?)"
            " AND (b.state = ? OR b.state_changed_at <= ?)",
            (rules.DRAINING, rules.RETIRED, rules.RETIRED, now - max(retire_after_ms, 0)),
        ).fetchall()
        # A draining build that nothing needs retires; a retired one something needs again
        # drains: the state flips exactly when "pinned" equals "retired".
        changes = [(str(b), rules.RETIRED if state == rules.DRAINING else rules.DRAINING)
                   for b, state, pinned in rows if bool(pinned) == (state == rules.RETIRED)]
        conn.executemany(
            "UPDATE builds SET state = ?, state_changed_at = ? WHERE build_id = ?",
            [(state, now, build) for build, state in changes])
    return changes


_CANDIDATE = (
    "SELECT e.instance_id, e.execution_id, e.build_id, i.orchestration_name,"
    " i.orchestration_version"
    " FROM executions e"
    " JOIN builds b ON b.build_id = e.build_id AND b.state IN (?, ?)"
    " JOIN instances i ON i.instance_id = e.instance_id"
    "  AND i.current_execution_id = e.execution_id"
    " JOIN json_each(?) r ON json_extract(r.value, '$[0]') = i.orchestration_name"
    "  AND json_extract(r.value, '$[1]') = i.orchestration_version"
    " WHERE e.build_id IS NOT NULL AND e.status = 'Running'"
    "  AND NOT EXISTS (SELECT 1 FROM build_verdicts v WHERE v.instance_id = e.instance_id"
    "   AND v.execution_id = e.execution_id AND v.from_build = e.build_id AND v.to_build = ?)"
    "  AND NOT EXISTS (SELECT 1 FROM instance_locks l WHERE l.instance_id = e.instance_id"
    "   AND l.locked_until > ?)"
    "  AND NOT EXISTS (SELECT 1 FROM worker_queue w WHERE w.instance_id = e.instance_id"
    "   AND w.execution_id = e.execution_id AND w.lock_token IS NOT NULL"
    "   AND w.locked_until > ?)"
    " LIMIT 1"
)


def claim_upgrade(conn: sqlite3.Connection, to_build: str,
                  registered: Sequence[tuple[str, str]], lock_ms: int) -> UpgradeClaim | None:
    """Lock one running execution of ``registered`` (name, version) pinned to a draining or
    retired build, with no verdict for its move to ``to_build`` yet, not locked, no
    activity of it running; only while ``to_build`` is current."""
    with transaction(conn, write=True) as now:
        if _state_or_none(conn, to_build) != rules.CURRENT:
            return None
        while True:
            row = conn.execute(_CANDIDATE, (rules.DRAINING, rules.RETIRED,
                                            json.dumps([list(r) for r in registered]),
                                            to_build, now, now)).fetchone()
            if row is None:
                return None
            instance_id, execution_id, from_build, name, version = row
            try:
                history = [HistoryEvent.from_json(text)
                           for text in load_history(conn, instance_id, int(execution_id))]
            except HistoryFormatError as exc:  # it cannot be replayed: it stays where it is
                _record(conn, instance_id, int(execution_id), from_build, to_build,
                        rules.DIVERGED, f"history cannot be decoded: {exc}", now)
                continue
            token = new_token()
            conn.execute(
                "INSERT INTO instance_locks (instance_id, lock_token, locked_until, locked_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (instance_id) DO UPDATE SET"
                " lock_token = excluded.lock_token, locked_until = excluded.locked_until,"
                " locked_at = excluded.locked_at", (instance_id, token, now + lock_ms, now))
            return UpgradeClaim(str(instance_id), int(execution_id), token, str(from_build),
                                to_build, str(name), str(version or ""), history)


def _state_or_none(conn: sqlite3.Connection, build_id: str) -> str | None:
    row = conn.execute("SELECT state FROM builds WHERE build_id = ?", (build_id,)).fetchone()
    return None if row is None else str(row[0])


def _record(conn: sqlite3.Connection, instance_id: str, execution_id: int, from_build: str,
            to_build: str, verdict: str, detail: str | None, now: int) -> None:
    conn.execute(
        "INSERT INTO build_verdicts (instance_id, execution_id, from_build, to_build, verdict,"
        " detail, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (instance_id, execution_id, from_build, to_build, verdict, detail, now))


def finish_upgrade(conn: sqlite3.Connection, claim: UpgradeClaim, moved: bool,
                   detail: str | None) -> str:
    """Move (``moved``) or leave the claimed execution, record the verdict, release the
    lock; ``LockLostError`` when the claim's lock is gone or expired (nothing changes)."""
    with transaction(conn, write=True) as now:
        lock = conn.execute("SELECT locked_until FROM instance_locks WHERE lock_token = ?",
                            (claim.lock_token,)).fetchone()
        if lock is None or int(lock[0]) <= now:
            raise LockLostError("finish_upgrade", "upgrade lock lost or expired")
        key = (claim.instance_id, claim.execution_id)
        outcome = rules.DIVERGED
        if moved:
            outcome = rules.MOVED
            if conn.execute("SELECT 1 FROM worker_queue WHERE instance_id = ? AND execution_id"
                            " = ? AND lock_token IS NOT NULL AND locked_until > ? LIMIT 1",
                            (*key, now)).fetchone() is not None:
                outcome = rules.BUSY
            elif conn.execute("UPDATE executions SET build_id = ? WHERE instance_id = ? AND"
                              " execution_id = ? AND build_id = ? AND status = 'Running'",
                              (claim.to_build, *key, claim.from_build)).rowcount == 0:
                outcome = rules.GONE
            else:
                conn.execute("UPDATE instances SET pinned_build = ? WHERE instance_id = ?"
                             " AND current_execution_id = ?", (claim.to_build, *key))
                conn.execute("UPDATE worker_queue SET build_id = ? WHERE instance_id = ?"
                             " AND execution_id = ? AND build_id = ?",
                             (claim.to_build, *key, claim.from_build))
        if outcome in rules.VERDICTS:
            _record(conn, *key, claim.from_build, claim.to_build, outcome, detail, now)
        conn.execute("DELETE FROM instance_locks WHERE lock_token = ?", (claim.lock_token,))
    return outcome


class BuildOperations:
    """``SqliteProvider``'s build methods: each hops to the database thread once, and wakes
    this process's dispatchers when the change may hand them work."""

    _db: Database
    notifier: Notifier

    async def register_build(self, build_id: str, auto_promote: bool) -> str:
        state = await self._db.run("register_build", register, build_id, auto_promote)
        self.notifier.notify_orchestrator()  # unpinned work may be this build's now
        return state

    async def list_builds(self) -> list[BuildInfo]:
        return await self._db.run("list_builds", list_builds)

    async def set_current_build(self, build_id: str) -> None:
        await self._db.run("set_current_build", set_current, build_id)
        self.notifier.notify_orchestrator()

    async def drain_build(self, build_id: str) -> None:
        await self._db.run("drain_build", drain, build_id)

    async def move_instance(self, instance_id: str, build_id: str) -> None:
        await self._db.run("move_instance", move_instance, instance_id, build_id)
        self.notifier.notify_orchestrator()
        self.notifier.notify_worker()

    async def adopt_unpinned(self, build_id: str) -> int:
        pinned = await self._db.run("adopt_unpinned", adopt_unpinned, build_id)
        self.notifier.notify_orchestrator()
        return pinned

    async def refresh_build_states(self, retire_after_ms: int) -> list[tuple[str, str]]:
        return await self._db.run("refresh_build_states", refresh_states, retire_after_ms)

    async def claim_upgrade(self, to_build: str, registered: Sequence[tuple[str, str]],
                            lock_timeout_ms: int) -> UpgradeClaim | None:
        return await self._db.run("claim_upgrade", claim_upgrade, to_build, list(registered),
                                  max(int(lock_timeout_ms), 0))

    async def finish_upgrade(self, claim: UpgradeClaim, moved: bool,
                             detail: str | None = None) -> str:
        outcome = await self._db.run("finish_upgrade", finish_upgrade, claim, moved, detail)
        self.notifier.notify_orchestrator()  # messages that waited while it was locked
        if outcome == rules.MOVED:
            self.notifier.notify_worker()
        return outcome
