"""Builds on PostgreSQL: registering, listing and changing build states, moving an instance,
retirement, and the claim and finish of a replay-verified upgrade (``build_rules`` has the
rules; docs/rollouts.md the why).

State changes are rare (a runtime start, an operator's command), so they are plain
statements in one transaction that first takes ``SHARE ROW EXCLUSIVE`` on ``builds``: two
runtimes of two new builds starting at once promote one after the other instead of both
demoting the same current build (the partial unique index would refuse the second anyway).
Readers (the fetch, ``start_with_turn``) take no lock that conflicts with it. The upgrade's
claim and finish are functions (``functions/claim_upgrade.sql``, ``finish_upgrade.sql``),
one round trip each, because they follow the instance lock protocol of a turn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from duraflow.core.events import HistoryEvent, HistoryFormatError
from duraflow.core.models import WORKER_GONE_AFTER_HEARTBEATS, BuildInfo
from duraflow.providers import build_rules as rules
from duraflow.providers.errors import InstanceNotFoundError, UnknownBuildError
from duraflow.providers.items import UpgradeClaim
from duraflow.providers.postgres.db import Conn, Database
from duraflow.providers.postgres.sql import Channels
from duraflow.providers.wakeups import Notifier

#: Something still needs build ``b.build_id``: a running execution or an activity row.
_PINNED = (
    "(EXISTS (SELECT 1 FROM {s}.executions e WHERE e.build_id = b.build_id"
    " AND e.status = 'Running')"
    " OR EXISTS (SELECT 1 FROM {s}.worker_queue w WHERE w.build_id = b.build_id))"
)


async def _locked_state(conn: Conn, s: str, operation: str, build_id: str,
                        required: bool = True) -> str | None:
    """Serialise with every other state change, then read ``build_id``'s state."""
    await conn.execute(f"LOCK TABLE {s}.builds IN SHARE ROW EXCLUSIVE MODE")
    state = await conn.fetchval(f"SELECT state FROM {s}.builds WHERE build_id = $1", build_id)
    if state is None and required:
        known = [str(r[0]) for r in await conn.fetch(
            f"SELECT build_id FROM {s}.builds ORDER BY build_id")]
        raise UnknownBuildError(operation, build_id, known)
    return None if state is None else str(state)


async def _promote(conn: Conn, s: str, channels: Channels, build_id: str) -> None:
    """``build_id`` becomes current, the current one drains; dispatchers that may take the
    unpinned work now are woken."""
    await conn.execute(
        f"UPDATE {s}.builds SET state = $1, state_changed_at = {s}.now_ms() WHERE state = $2",
        rules.DRAINING, rules.CURRENT)
    await conn.execute(
        f"UPDATE {s}.builds SET state = $1, state_changed_at = {s}.now_ms()"
        " WHERE build_id = $2", rules.CURRENT, build_id)
    await conn.execute("SELECT pg_notify($1, $2)", channels.orchestrator,
                       json.dumps({"o": None, "w": 1}))


async def register(db: Database, channels: Channels, build_id: str, auto_promote: bool) -> str:
    s = db.s

    async def go(conn: Conn) -> str:
        async with conn.transaction():
            state = await _locked_state(conn, s, "register_build", build_id, required=False)
            if state is not None:
                return state
            await conn.execute(
                f"INSERT INTO {s}.builds (build_id, state, first_seen_at, state_changed_at)"
                f" VALUES ($1, $2, {s}.now_ms(), {s}.now_ms())", build_id, rules.PENDING)
            if not auto_promote:
                return rules.PENDING
            await _promote(conn, s, channels, build_id)
            return rules.CURRENT

    return await db.run("register_build", go, idempotent=True)


async def list_builds(db: Database) -> list[BuildInfo]:
    s = db.s
    rows = await db.fetch(
        "list_builds",
        "SELECT b.build_id, b.state, b.first_seen_at,"
        f" (SELECT count(*) FROM {s}.workers w WHERE w.build_id = b.build_id"
        f"  AND w.last_seen_at >= {s}.now_ms() - $1 * w.heartbeat_interval_ms),"
        f" (SELECT count(*) FROM {s}.executions e WHERE e.build_id = b.build_id"
        "  AND e.status = 'Running')"
        f" FROM {s}.builds b ORDER BY b.first_seen_at, b.seq",
        WORKER_GONE_AFTER_HEARTBEATS,
    )
    return [rules.build_info(row) for row in rows]


async def set_current(db: Database, channels: Channels, build_id: str) -> None:
    s = db.s

    async def go(conn: Conn) -> None:
        async with conn.transaction():
            if await _locked_state(conn, s, "set_current_build", build_id) != rules.CURRENT:
                await _promote(conn, s, channels, build_id)

    await db.run("set_current_build", go, idempotent=True)


async def drain(db: Database, build_id: str) -> None:
    s = db.s

    async def go(conn: Conn) -> None:
        async with conn.transaction():
            if await _locked_state(conn, s, "drain_build", build_id) in rules.DRAINABLE:
                await conn.execute(
                    f"UPDATE {s}.builds SET state = $1, state_changed_at = {s}.now_ms()"
                    " WHERE build_id = $2", rules.DRAINING, build_id)

    await db.run("drain_build", go, idempotent=True)


async def move_instance(db: Database, channels: Channels, instance_id: str,
                        build_id: str) -> None:
    """Re-pin the running execution (and its activities not running now) and drop the
    instance's lock, after waiting for a commit in progress (its advisory lock): a turn of
    the old build in flight then cannot commit, and its messages run again on the new one."""
    s, op = db.s, "move_instance"

    async def go(conn: Conn) -> None:
        async with conn.transaction():
            state = await _locked_state(conn, s, op, build_id)
            await conn.execute(f"SELECT pg_advisory_xact_lock({s}.lock_key($1))", instance_id)
            row = await conn.fetchrow(
                f"SELECT i.current_execution_id, e.status FROM {s}.instances i"
                f" LEFT JOIN {s}.executions e ON e.instance_id = i.instance_id"
                " AND e.execution_id = i.current_execution_id WHERE i.instance_id = $1",
                instance_id)
            if row is None:
                raise InstanceNotFoundError(op, instance_id)
            if row[1] != "Running":
                raise rules.not_running(op, instance_id, row[1])
            execution_id = int(row[0])
            await conn.execute(
                f"UPDATE {s}.executions SET build_id = $3 WHERE instance_id = $1"
                " AND execution_id = $2", instance_id, execution_id, build_id)
            await conn.execute(f"UPDATE {s}.instances SET pinned_build = $2"
                               " WHERE instance_id = $1", instance_id, build_id)
            await conn.execute(
                f"UPDATE {s}.worker_queue SET build_id = $3 WHERE instance_id = $1"
                f" AND execution_id = $2 AND (lock_token IS NULL OR locked_until <= {s}.now_ms())",
                instance_id, execution_id, build_id)
            await conn.execute(f"DELETE FROM {s}.instance_locks WHERE instance_id = $1",
                               instance_id)
            if state == rules.RETIRED:
                await conn.execute(
                    f"UPDATE {s}.builds SET state = $1, state_changed_at = {s}.now_ms()"
                    " WHERE build_id = $2", rules.DRAINING, build_id)
            await conn.execute("SELECT pg_notify($1, $2)", channels.orchestrator,
                               json.dumps({"o": None, "w": 1}))

    await db.run(op, go, idempotent=True)


async def adopt_unpinned(db: Database, build_id: str) -> int:
    """Register ``build_id`` if unknown (``rules.adopted_state``) and pin to it the running
    executions no build is pinned to (run by runtimes without a build id) with their
    activity rows of no build. A build-less turn committing meanwhile keeps the pin
    (``commit_turn`` pins only an unpinned execution); one of a build that pins first wins
    (the re-checked ``build_id IS NULL``)."""
    s = db.s

    async def go(conn: Conn) -> int:
        async with conn.transaction():
            if await _locked_state(conn, s, "adopt_unpinned", build_id, required=False) is None:
                current = await conn.fetchval(
                    f"SELECT count(*) FROM {s}.builds WHERE state = $1", rules.CURRENT)
                await conn.execute(
                    f"INSERT INTO {s}.builds (build_id, state, first_seen_at, state_changed_at)"
                    f" VALUES ($1, $2, {s}.now_ms(), {s}.now_ms())",
                    build_id, rules.adopted_state(bool(current)))
            count = await conn.fetchval(
                f"WITH pinned AS (UPDATE {s}.executions SET build_id = $1"
                "  WHERE build_id IS NULL AND status = 'Running'"
                "  RETURNING instance_id, execution_id),"
                f" owners AS (UPDATE {s}.instances i SET pinned_build = $1 FROM pinned p"
                "  WHERE i.instance_id = p.instance_id),"
                f" acts AS (UPDATE {s}.worker_queue w SET build_id = $1 FROM pinned p"
                "  WHERE w.instance_id = p.instance_id AND w.execution_id = p.execution_id"
                "  AND w.build_id IS NULL)"
                " SELECT count(*) FROM pinned", build_id)
            return int(count)

    return await db.run("adopt_unpinned", go, idempotent=True)


async def refresh_states(db: Database, retire_after_ms: int) -> list[tuple[str, str]]:
    """Retire drained builds, bring back retired ones something is pinned to again. The
    ``b.state = f.was`` re-check makes a concurrent promotion win over a stale flip."""
    s = db.s
    pinned = _PINNED.format(s=s)
    rows = await db.fetch(
        "refresh_build_states",
        "WITH f AS (SELECT b.build_id, b.state AS was FROM"
        f" {s}.builds b WHERE (b.state = $1 AND b.state_changed_at <= {s}.now_ms() - $3"
        f" AND NOT {pinned}) OR (b.state = $2 AND {pinned}))"
        f" UPDATE {s}.builds b SET state = CASE WHEN f.was = $1 THEN $2 ELSE $1 END,"
        f" state_changed_at = {s}.now_ms() FROM f"
        " WHERE b.build_id = f.build_id AND b.state = f.was RETURNING b.build_id, b.state",
        rules.DRAINING, rules.RETIRED, max(int(retire_after_ms), 0), idempotent=True,
    )
    return [(str(r[0]), str(r[1])) for r in rows]


async def claim_upgrade(db: Database, to_build: str, registered: Sequence[tuple[str, str]],
                        lock_ms: int) -> UpgradeClaim | None:
    names = [name for name, _ in registered]
    versions = [version for _, version in registered]
    while True:
        row = await db.fetchrow(
            "claim_upgrade", f"SELECT * FROM {db.s}.claim_upgrade($1, $2, $3, $4)",
            to_build, names, versions, max(int(lock_ms), 0), idempotent=False)
        if row is None:
            return None
        claim = UpgradeClaim(str(row["out_instance_id"]), int(row["out_execution_id"]),
                             str(row["out_lock_token"]), str(row["out_from_build"]), to_build,
                             str(row["out_name"]), str(row["out_version"] or ""), [])
        try:
            claim.history = [HistoryEvent.from_json(t) for t in row["out_history"]]
        except HistoryFormatError as exc:  # it cannot be replayed: it stays where it is
            await finish_upgrade(db, claim, False, f"history cannot be decoded: {exc}")
            continue
        return claim


async def finish_upgrade(db: Database, claim: UpgradeClaim, moved: bool,
                         detail: str | None) -> str:
    outcome = await db.fetchval(
        "finish_upgrade", f"SELECT {db.s}.finish_upgrade($1, $2, $3, $4, $5, $6)",
        claim.lock_token, claim.execution_id, claim.from_build, claim.to_build, bool(moved),
        detail, idempotent=False)
    return str(outcome)


class BuildOperations:
    """``PostgresProvider``'s build methods (the functions above on its pool)."""

    _db: Database
    channels: Channels
    notifier: Notifier

    async def register_build(self, build_id: str, auto_promote: bool) -> str:
        state = await register(self._db, self.channels, build_id, auto_promote)
        self.notifier.notify_orchestrator()
        return state

    async def list_builds(self) -> list[BuildInfo]:
        return await list_builds(self._db)

    async def set_current_build(self, build_id: str) -> None:
        await set_current(self._db, self.channels, build_id)
        self.notifier.notify_orchestrator()

    async def drain_build(self, build_id: str) -> None:
        await drain(self._db, build_id)

    async def move_instance(self, instance_id: str, build_id: str) -> None:
        await move_instance(self._db, self.channels, instance_id, build_id)
        self.notifier.notify_orchestrator()
        self.notifier.notify_worker()

    async def adopt_unpinned(self, build_id: str) -> int:
        pinned = await adopt_unpinned(self._db, build_id)
        self.notifier.notify_orchestrator()
        return pinned

    async def refresh_build_states(self, retire_after_ms: int) -> list[tuple[str, str]]:
        return await refresh_states(self._db, retire_after_ms)

    async def claim_upgrade(self, to_build: str, registered: Sequence[tuple[str, str]],
                            lock_timeout_ms: int) -> UpgradeClaim | None:
        return await claim_upgrade(self._db, to_build, registered, lock_timeout_ms)

    async def finish_upgrade(self, claim: UpgradeClaim, moved: bool,
                             detail: str | None = None) -> str:
        outcome = await finish_upgrade(self._db, claim, moved, detail)
        self.notifier.notify_orchestrator()
        if outcome == rules.MOVED:
            self.notifier.notify_worker()
        return outcome
