"""Deleting instance trees and pruning old executions on PostgreSQL, each tree or instance
atomically.

What may be deleted and how much a bulk call takes are rules both providers share
(``providers.admin_rules``). Unlike SQLite, PostgreSQL has many concurrent writers, so a delete
first takes the advisory lock of every instance in the tree (in key order, so two deletes
cannot deadlock) and then re-reads the tree: a child that committed in the meantime is locked
and deleted too, and no turn of any tree member can be mid-commit while its rows go. The
instance's ``instance_locks`` row is deleted as well, so a turn that fetched before the
delete fails its ack with ``LockLostError`` instead of resurrecting the instance.
"""

from __future__ import annotations

import asyncpg

from duraflow.core.models import (
    RUNNING,
    DeleteInstanceResult,
    InstanceFilter,
    PruneOptions,
    PruneResult,
)
from duraflow.core.status import Status
from duraflow.providers import admin_rules as rules
from duraflow.providers.errors import InstanceNotFoundError, ProviderError
from duraflow.providers.postgres.db import Conn, Database


def _count(status: str) -> int:
    """Row count from a command tag such as ``DELETE 3``."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


async def _tree(conn: Conn, s: str, root: str) -> list[str]:
    rows = await conn.fetch(
        f"WITH RECURSIVE t(id) AS (SELECT $1::TEXT UNION SELECT i.instance_id"
        f" FROM {s}.instances i JOIN t ON i.parent_instance_id = t.id) SELECT id FROM t",
        root,
    )
    return [str(r[0]) for r in rows]


async def _delete_tree_tx(
    conn: Conn, s: str, instance_id: str, force: bool
) -> tuple[DeleteInstanceResult, list[str]]:
    op = "delete_instance"

    async def root_row() -> asyncpg.Record | None:
        row: asyncpg.Record | None = await conn.fetchrow(
            f"SELECT i.parent_instance_id, p.instance_id FROM {s}.instances i"
            f" LEFT JOIN {s}.instances p ON p.instance_id = i.parent_instance_id"
            " WHERE i.instance_id = $1",
            instance_id,
        )
        return row

    row = await root_row()
    if row is None:
        raise InstanceNotFoundError(op, instance_id)
    if row[1] is not None:
        raise rules.not_a_root(op, instance_id, row[0])
    locked: set[str] = set()
    ids = await _tree(conn, s, instance_id)
    while True:  # lock, re-read; children created meanwhile get locked on the next pass
        fresh = [i for i in ids if i not in locked]
        if not fresh:
            break
        await conn.execute(f"SELECT {s}.lock_instances($1)", fresh)
        locked.update(fresh)
        ids = await _tree(conn, s, instance_id)
    if await root_row() is None:  # deleted by someone else while we waited
        raise InstanceNotFoundError(op, instance_id)
    if not force:
        running = await conn.fetchval(
            f"SELECT i.instance_id FROM {s}.instances i JOIN {s}.executions e"
            " ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id"
            " WHERE i.instance_id = ANY($1) AND e.status = $2"
            " ORDER BY i.created_at, i.seq LIMIT 1",
            ids,
            RUNNING,
        )
        if running is not None:
            raise rules.still_running(op, running)
    counts: dict[str, int] = {}
    for table in (
        "history",
        "executions",
        "orchestrator_queue",
        "worker_queue",
        "instance_locks",
        "kv_store",
        "build_verdicts",
        "instances",
    ):
        counts[table] = _count(
            await conn.execute(f"DELETE FROM {s}.{table} WHERE instance_id = ANY($1)", ids)
        )
    result = DeleteInstanceResult(
        instances_deleted=counts["instances"],
        executions_deleted=counts["executions"],
        events_deleted=counts["history"],
        queue_messages_deleted=counts["orchestrator_queue"] + counts["worker_queue"],
    )
    return result, ids


async def delete_tree(
    db: Database, instance_id: str, force: bool
) -> tuple[DeleteInstanceResult, list[str]]:
    """Delete ``instance_id`` and its descendants; returns the counts and the deleted ids."""

    async def go(conn: Conn) -> tuple[DeleteInstanceResult, list[str]]:
        async with conn.transaction():
            return await _delete_tree_tx(conn, db.s, instance_id, force)

    return await db.run("delete_instance", go, idempotent=False)


async def delete_bulk(
    db: Database, filter: InstanceFilter, force: bool = True
) -> tuple[DeleteInstanceResult, list[str]]:
    """Delete the trees of terminal roots matching every given filter (AND). With ``force``
    (the admin call) a tree goes whole; without it (retention) a tree in which an instance
    still runs (a sub-orchestration the finished root left running) is skipped."""
    page = await delete_bulk_page(db, filter, force, None)
    return page.result, page.deleted


async def delete_bulk_page(
    db: Database, filter: InstanceFilter, force: bool, after: tuple[int, int] | None
) -> rules.DeletePage:
    """``delete_bulk`` over the roots created after the cursor ``after`` (created_at, seq),
    oldest first. Retention pages through its candidates with it, so roots it has to skip
    (a sub-orchestration still runs) never hide the ones behind them."""
    s = db.s
    rows = await db.fetch(
        "delete_instance_bulk",
        f"SELECT i.instance_id, i.created_at, i.seq FROM {s}.instances i JOIN {s}.executions e"
        " ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id"
        " WHERE (i.parent_instance_id IS NULL OR NOT EXISTS"
        f"        (SELECT 1 FROM {s}.instances p WHERE p.instance_id = i.parent_instance_id))"
        "   AND e.status = ANY($1)"
        "   AND ($2::TEXT[] IS NULL OR i.instance_id = ANY($2))"
        "   AND ($3::BIGINT IS NULL OR (e.completed_at IS NOT NULL AND e.completed_at < $3))"
        "   AND ($5::BIGINT IS NULL OR (i.created_at, i.seq) > ($5, $6::BIGINT))"
        " ORDER BY i.created_at, i.seq LIMIT $4",
        sorted(Status.EXECUTION_ENDED),
        None if filter.instance_ids is None else list(filter.instance_ids),
        filter.completed_before,
        rules.bulk_limit(filter),
        None if after is None else after[0],
        None if after is None else after[1],
    )
    page = rules.DeletePage()
    for root, created_at, seq in rows:
        page.scanned += 1
        page.last = (int(created_at), int(seq))
        if root in page.deleted:
            continue
        try:
            part, ids = await delete_tree(db, str(root), force)
        except InstanceNotFoundError:
            continue  # deleted concurrently
        except ProviderError:
            if force:
                raise
            continue  # still running somewhere in the tree: not finished yet
        rules.add_counts(page.result, part)
        page.deleted.extend(ids)
    return page


def _prune_sql(s: str) -> str:
    return (
        "WITH victims AS ("
        f" SELECT execution_id FROM {s}.executions"
        " WHERE instance_id = $1 AND execution_id <> $2 AND status <> $3"
        f"   AND execution_id NOT IN (SELECT execution_id FROM {s}.executions"
        "        WHERE instance_id = $1 ORDER BY execution_id DESC LIMIT $4)"
        "   AND ($5::BIGINT IS NULL OR (completed_at IS NOT NULL AND completed_at < $5))"
        f"), h AS (DELETE FROM {s}.history WHERE instance_id = $1"
        "   AND execution_id IN (SELECT execution_id FROM victims) RETURNING 1"
        f"), x AS (DELETE FROM {s}.executions WHERE instance_id = $1"
        "   AND execution_id IN (SELECT execution_id FROM victims) RETURNING 1"
        ") SELECT (SELECT count(*) FROM x), (SELECT count(*) FROM h)"
    )


async def prune(db: Database, instance_id: str, options: PruneOptions) -> PruneResult:
    """Delete old terminal executions of one instance; never the current one."""
    s = db.s
    keep = rules.executions_to_keep(options)

    async def go(conn: Conn) -> PruneResult:
        async with conn.transaction():
            # Serialise with this instance's turns: a continue-as-new commit moves "current".
            await conn.execute(f"SELECT pg_advisory_xact_lock({s}.lock_key($1))", instance_id)
            current = await conn.fetchval(
                f"SELECT current_execution_id FROM {s}.instances WHERE instance_id = $1",
                instance_id,
            )
            if current is None:
                raise InstanceNotFoundError("prune_executions", instance_id)
            row = await conn.fetchrow(
                _prune_sql(s),
                instance_id,
                int(current),
                RUNNING,
                keep,
                options.completed_before,
            )
            assert row is not None
            return PruneResult(
                instances_processed=1, executions_deleted=int(row[0]), events_deleted=int(row[1])
            )

    return await db.run("prune_executions", go, idempotent=True)


async def prune_bulk(db: Database, filter: InstanceFilter, options: PruneOptions) -> PruneResult:
    """Prune every matching instance, Running ones included (their current run is safe)."""
    s = db.s
    rows = await db.fetch(
        "prune_executions_bulk",
        f"SELECT i.instance_id FROM {s}.instances i LEFT JOIN {s}.executions e"
        " ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id"
        " WHERE ($1::TEXT[] IS NULL OR i.instance_id = ANY($1))"
        "   AND ($2::BIGINT IS NULL OR (e.completed_at IS NOT NULL AND e.completed_at < $2))"
        " ORDER BY i.created_at, i.seq LIMIT $3",
        None if filter.instance_ids is None else list(filter.instance_ids),
        filter.completed_before,
        rules.bulk_limit(filter),
    )
    total = PruneResult()
    for (instance_id,) in rows:
        try:
            part = await prune(db, str(instance_id), options)
        except InstanceNotFoundError:
            continue
        rules.add_counts(total, part)
    return total
