"""The worker registry on PostgreSQL: one statement per heartbeat, one per read.

The heartbeat is a single statement (a data-modifying CTE deletes long-gone rows, then the
UPSERT records this runtime), so it costs one round trip and one short transaction however
many runtimes share the schema. ``alive`` is computed by the database clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from duraflow.core.models import WORKER_GONE_AFTER_HEARTBEATS, WorkDemand, WorkerInfo
from duraflow.providers.common import (
    DRAIN_IDLE,
    WORKER_COLUMNS,
    demand_from_rows,
    worker_params,
    worker_row,
)
from duraflow.providers.postgres.db import Database


async def heartbeat(db: Database, worker: WorkerInfo, retention_ms: int) -> bool:
    s = db.s
    drain = await db.fetchval(
        "heartbeat_worker",
        f"WITH gone AS (DELETE FROM {s}.workers WHERE last_seen_at < {s}.now_ms() - $17"
        " AND NOT (worker_node_id = $1 AND runtime_id = $2))"
        f" INSERT INTO {s}.workers AS w ({WORKER_COLUMNS})"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, {s}.now_ms(), $14,"
        " $15, $16)"
        " ON CONFLICT (worker_node_id, runtime_id) DO UPDATE SET"
        " host = EXCLUDED.host, pid = EXCLUDED.pid, tag_filter = EXCLUDED.tag_filter,"
        " tags = EXCLUDED.tags, orchestrations = EXCLUDED.orchestrations,"
        " activities = EXCLUDED.activities,"
        " orchestration_concurrency = EXCLUDED.orchestration_concurrency,"
        " worker_concurrency = EXCLUDED.worker_concurrency,"
        " max_sessions = EXCLUDED.max_sessions, sessions_held = EXCLUDED.sessions_held,"
        " started_at = EXCLUDED.started_at, last_seen_at = EXCLUDED.last_seen_at,"
        " heartbeat_interval_ms = EXCLUDED.heartbeat_interval_ms, build_id = EXCLUDED.build_id,"
        " drain_state = EXCLUDED.drain_state"
        f" RETURNING EXISTS (SELECT 1 FROM {s}.worker_drains d"
        " WHERE d.worker_node_id = w.worker_node_id)",
        *worker_params(worker),
        int(retention_ms),
        idempotent=True,
    )
    return bool(drain)


async def remove(db: Database, worker_node_id: str, runtime_id: str) -> None:
    await db.fetchval(
        "remove_worker",
        f"DELETE FROM {db.s}.workers WHERE worker_node_id = $1 AND runtime_id = $2",
        worker_node_id,
        runtime_id,
        idempotent=True,
    )


async def list_workers(db: Database, include_gone: bool) -> list[WorkerInfo]:
    s = db.s
    rows = await db.fetch(
        "list_workers",
        f"SELECT {WORKER_COLUMNS}, alive FROM ("
        f" SELECT *, last_seen_at >= {s}.now_ms() - $1 * heartbeat_interval_ms AS alive"
        f" FROM {s}.workers) w"
        " WHERE alive OR $2 ORDER BY worker_node_id, started_at, runtime_id",
        WORKER_GONE_AFTER_HEARTBEATS,
        include_gone,
    )
    return [worker_row(row, bool(row[-1])) for row in rows]


async def activity_backlog(db: Database) -> dict[str | None, int]:
    # In-flight rows have visible_at moved to their lock expiry (fetch_work_item.sql), so
    # "visible now" is exactly "visible and unlocked (or lock expired)".
    rows = await db.fetch(
        "get_activity_backlog",
        f"SELECT tag, COUNT(*) FROM {db.s}.worker_queue"
        f" WHERE visible_at <= (SELECT {db.s}.now_ms()) GROUP BY tag",
    )
    return {row[0]: int(row[1]) for row in rows}


async def work_demand(db: Database) -> WorkDemand:
    # One statement, three groups: activities per tag (running = locked by a live lock;
    # everything else is waiting, retries' delayed rows too), instances with orchestration
    # messages visible or in a turn, and per owner the live session leases with no activity
    # (one with activities is counted by them; the lookup uses idx_worker_session).
    s = db.s
    rows = await db.fetch(
        "get_work_demand",
        f"WITH now AS (SELECT {s}.now_ms() AS t)"
        " SELECT 'a', tag, count(*) FILTER (WHERE lock_token IS NULL OR locked_until <= now.t),"
        "  count(*) FILTER (WHERE lock_token IS NOT NULL AND locked_until > now.t)"
        f" FROM {s}.worker_queue, now GROUP BY tag"
        " UNION ALL"
        " SELECT 'o', NULL, count(DISTINCT instance_id), 0"
        f" FROM {s}.orchestrator_queue, now"
        " WHERE visible_at <= now.t OR lock_token IS NOT NULL"
        " UNION ALL"
        f" SELECT 's', worker_id, count(*), 0 FROM {s}.sessions ss, now"
        " WHERE ss.locked_until > now.t AND NOT EXISTS"
        f" (SELECT 1 FROM {s}.worker_queue w WHERE w.session_id = ss.session_id)"
        " GROUP BY worker_id",
        idempotent=True,
    )
    return demand_from_rows(rows)


async def drain(db: Database, worker_node_ids: Sequence[str]) -> None:
    s = db.s
    await db.fetchval(
        "drain_workers",
        f"INSERT INTO {s}.worker_drains (worker_node_id, requested_at)"
        f" SELECT unnest($1::TEXT[]), {s}.now_ms() ON CONFLICT (worker_node_id) DO NOTHING",
        list(worker_node_ids),
        idempotent=True,
    )


async def undrain(db: Database, worker_node_ids: Sequence[str]) -> None:
    await db.fetchval(
        "undrain_workers",
        f"DELETE FROM {db.s}.worker_drains WHERE worker_node_id = ANY ($1::TEXT[])",
        list(worker_node_ids),
        idempotent=True,
    )


async def drained(db: Database) -> dict[str, bool]:
    s = db.s
    rows = await db.fetch(
        "get_drained_workers",
        f"WITH now AS (SELECT {s}.now_ms() AS t)"
        f" SELECT d.worker_node_id, {DRAIN_IDLE.format(s=f'{s}.', gone='$1')}"
        f" FROM {s}.worker_drains d, now",
        WORKER_GONE_AFTER_HEARTBEATS,
        idempotent=True,
    )
    return {str(row[0]): bool(row[1]) for row in rows}
