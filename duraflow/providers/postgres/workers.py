"""The worker registry on PostgreSQL: one statement per heartbeat, one per read.

The heartbeat is a single statement (a data-modifying CTE deletes long-gone rows, then the
UPSERT records this runtime), so it costs one round trip and one short transaction however
many runtimes share the schema. ``alive`` is computed by the database clock.
"""

from __future__ import annotations

from duraflow.core.models import WORKER_GONE_AFTER_HEARTBEATS, WorkerInfo
from duraflow.providers.common import WORKER_COLUMNS, worker_params, worker_row
from duraflow.providers.postgres.db import Database


async def heartbeat(db: Database, worker: WorkerInfo, retention_ms: int) -> None:
    s = db.s
    await db.fetchval(
        "heartbeat_worker",
        f"WITH gone AS (DELETE FROM {s}.workers WHERE last_seen_at < {s}.now_ms() - $16"
        " AND NOT (worker_node_id = $1 AND runtime_id = $2))"
        f" INSERT INTO {s}.workers AS w ({WORKER_COLUMNS})"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, {s}.now_ms(), $14,"
        " $15)"
        " ON CONFLICT (worker_node_id, runtime_id) DO UPDATE SET"
        " host = EXCLUDED.host, pid = EXCLUDED.pid, tag_filter = EXCLUDED.tag_filter,"
        " tags = EXCLUDED.tags, orchestrations = EXCLUDED.orchestrations,"
        " activities = EXCLUDED.activities,"
        " orchestration_concurrency = EXCLUDED.orchestration_concurrency,"
        " worker_concurrency = EXCLUDED.worker_concurrency,"
        " max_sessions = EXCLUDED.max_sessions, sessions_held = EXCLUDED.sessions_held,"
        " started_at = EXCLUDED.started_at, last_seen_at = EXCLUDED.last_seen_at,"
        " heartbeat_interval_ms = EXCLUDED.heartbeat_interval_ms, build_id = EXCLUDED.build_id",
        *worker_params(worker),
        int(retention_ms),
        idempotent=True,
    )


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
