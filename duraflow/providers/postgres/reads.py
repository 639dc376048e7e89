"""Read-only queries: instance status, history and the management views.

Each read is ONE statement, so it sees one snapshot without an explicit transaction (a
metrics row can never count an instance without its execution) and costs one round trip.
"Current execution" always means ``instances.current_execution_id``, the highest execution
an ack has written. All reads are idempotent, so ``Database.run`` retries them through a
dropped connection.
"""

from __future__ import annotations

from duraflow.core.events import HistoryEvent, HistoryFormatError
from duraflow.core.models import (
    COMPLETED,
    FAILED,
    RUNNING,
    ExecutionInfo,
    InstanceInfo,
    InstanceStatus,
    QueueDepths,
    SystemMetrics,
    SystemStats,
)
from duraflow.providers.common import (
    execution_row,
    instance_info_row,
    instance_status_row,
    missing_execution,
)
from duraflow.providers.errors import ProviderError
from duraflow.providers.postgres.db import Database


def _current(s: str) -> str:
    return (
        f" FROM {s}.instances i LEFT JOIN {s}.executions e"
        " ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id"
    )


async def history_texts(db: Database, instance_id: str, execution_id: int) -> list[str]:
    rows = await db.fetch(
        "read_history",
        f"SELECT event_data FROM {db.s}.history WHERE instance_id = $1 AND execution_id = $2"
        " ORDER BY event_id",
        instance_id,
        execution_id,
    )
    return [str(r[0]) for r in rows]


async def instance_status(db: Database, instance_id: str) -> InstanceStatus | None:
    row = await db.fetchrow(
        "get_instance_status",
        "SELECT i.orchestration_name, i.orchestration_version, i.current_execution_id,"
        " COALESCE(e.status, $2) AS status, e.output, i.custom_status,"
        " i.custom_status_version, i.parent_instance_id"
        + _current(db.s)
        + " WHERE i.instance_id = $1",
        instance_id,
        RUNNING,
        idempotent=True,
    )
    if row is None:
        return None
    return instance_status_row(instance_id, row)


async def custom_status(
    db: Database, instance_id: str, last_seen_version: int
) -> tuple[str | None, int] | None:
    row = await db.fetchrow(
        "get_custom_status",
        f"SELECT custom_status, custom_status_version FROM {db.s}.instances WHERE instance_id = $1",
        instance_id,
        idempotent=True,
    )
    if row is None or int(row[1]) <= last_seen_version:
        return None
    return row[0], int(row[1])


async def read_history(
    db: Database, instance_id: str, execution_id: int | None
) -> list[HistoryEvent]:
    s = db.s
    if execution_id is None:
        rows = await db.fetch(
            "read_history",
            f"SELECT h.event_data FROM {s}.instances i JOIN {s}.history h"
            " ON h.instance_id = i.instance_id AND h.execution_id = i.current_execution_id"
            " WHERE i.instance_id = $1 ORDER BY h.event_id",
            instance_id,
        )
        texts = [str(r[0]) for r in rows]
    else:
        texts = await history_texts(db, instance_id, execution_id)
    try:
        return [HistoryEvent.from_json(text) for text in texts]
    except HistoryFormatError as exc:
        raise ProviderError(
            "read_history",
            f"history of '{instance_id}' execution {execution_id or 'current'} cannot be "
            f"decoded: {exc}",
            retryable=False,
        ) from exc


async def list_instances(db: Database, status: str | None) -> list[str]:
    if status is None:
        rows = await db.fetch(
            "list_instances",
            f"SELECT instance_id FROM {db.s}.instances ORDER BY created_at DESC, seq DESC",
        )
    else:
        rows = await db.fetch(
            "list_instances_by_status",
            "SELECT i.instance_id" + _current(db.s) + " WHERE e.status = $1"
            " ORDER BY i.created_at DESC, i.seq DESC",
            status,
        )
    return [str(r[0]) for r in rows]


async def list_executions(db: Database, instance_id: str) -> list[int]:
    rows = await db.fetch(
        "list_executions",
        f"SELECT execution_id FROM {db.s}.executions WHERE instance_id = $1 ORDER BY execution_id",
        instance_id,
    )
    return [int(r[0]) for r in rows]


async def instance_info(db: Database, instance_id: str) -> InstanceInfo:
    row = await db.fetchrow(
        "get_instance_info",
        "SELECT i.orchestration_name, i.orchestration_version, i.current_execution_id,"
        " COALESCE(e.status, $2), e.output, i.created_at, i.updated_at, i.parent_instance_id,"
        " e.build_id" + _current(db.s)
        + " WHERE i.instance_id = $1",
        instance_id,
        RUNNING,
        idempotent=True,
    )
    return instance_info_row(instance_id, row)


async def execution_info(db: Database, instance_id: str, execution_id: int) -> ExecutionInfo:
    s = db.s
    row = await db.fetchrow(
        "get_execution_info",
        f"SELECT e.status, e.output, e.started_at, e.completed_at, e.event_count, e.build_id,"
        f" EXISTS (SELECT 1 FROM {s}.instances WHERE instance_id = $1) AS found"
        f" FROM (SELECT 1) AS one LEFT JOIN {s}.executions e"
        " ON e.instance_id = $1 AND e.execution_id = $2",
        instance_id,
        execution_id,
        idempotent=True,
    )
    if row is None or row["status"] is None:
        raise missing_execution(row is not None and bool(row["found"]), instance_id, execution_id)
    return execution_row(execution_id, row)


async def system_metrics(db: Database) -> SystemMetrics:
    s = db.s
    row = await db.fetchrow(
        "get_system_metrics",
        "SELECT count(*),"
        " count(*) FILTER (WHERE e.status = $1),"
        " count(*) FILTER (WHERE e.status = $2),"
        " count(*) FILTER (WHERE e.status = $3),"
        f" (SELECT count(*) FROM {s}.executions),"
        f" (SELECT count(*) FROM {s}.history)" + _current(s),
        RUNNING,
        COMPLETED,
        FAILED,
        idempotent=True,
    )
    assert row is not None
    return SystemMetrics(
        total_instances=int(row[0]),
        total_executions=int(row[4]),
        running_instances=int(row[1]),
        completed_instances=int(row[2]),
        failed_instances=int(row[3]),
        total_events=int(row[5]),
    )


async def queue_depths(db: Database) -> QueueDepths:
    s = db.s
    row = await db.fetchrow(
        "get_queue_depths",
        f"SELECT (SELECT count(*) FROM {s}.orchestrator_queue WHERE lock_token IS NULL),"
        f" (SELECT count(*) FROM {s}.worker_queue WHERE lock_token IS NULL)",
        idempotent=True,
    )
    assert row is not None
    return QueueDepths(orchestrator_queue=int(row[0]), worker_queue=int(row[1]), timer_queue=0)


async def instance_stats(db: Database, instance_id: str) -> SystemStats | None:
    s = db.s
    row = await db.fetchrow(
        "get_instance_stats",
        "SELECT COALESCE(e.event_count, 0), COALESCE(e.history_bytes, 0),"
        f" (SELECT count(*) FROM {s}.orchestrator_queue q WHERE q.instance_id = i.instance_id),"
        f" (SELECT count(*) FROM {s}.kv_store k WHERE k.instance_id = i.instance_id),"
        f" (SELECT COALESCE(sum(octet_length(k.value)), 0) FROM {s}.kv_store k"
        "  WHERE k.instance_id = i.instance_id)" + _current(s) + " WHERE i.instance_id = $1",
        instance_id,
        idempotent=True,
    )
    if row is None:
        return None
    return SystemStats(
        history_event_count=int(row[0]),
        history_size_bytes=int(row[1]),
        queue_pending_count=int(row[2]),
        kv_user_key_count=int(row[3]),
        kv_total_value_bytes=int(row[4]),
    )


async def kv_value(db: Database, instance_id: str, key: str) -> str | None:
    value = await db.fetchval(
        "get_kv_value",
        f"SELECT value FROM {db.s}.kv_store WHERE instance_id = $1 AND key = $2",
        instance_id,
        key,
        idempotent=True,
    )
    return None if value is None else str(value)


async def kv_all_values(db: Database, instance_id: str) -> dict[str, str]:
    rows = await db.fetch(
        "get_kv_all_values",
        f"SELECT key, value FROM {db.s}.kv_store WHERE instance_id = $1 ORDER BY key",
        instance_id,
    )
    return {str(r[0]): str(r[1]) for r in rows}


async def list_children(db: Database, instance_id: str) -> list[str]:
    rows = await db.fetch(
        "list_children",
        f"SELECT instance_id FROM {db.s}.instances WHERE parent_instance_id = $1"
        " ORDER BY created_at, seq",
        instance_id,
    )
    return [str(r[0]) for r in rows]
