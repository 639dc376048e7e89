"""Read-only queries: instance status, history and the management views.

Anything that reads more than one statement runs in a read transaction, so in WAL mode it
sees one snapshot even while another process commits turns; a metrics row can never count
an instance without its execution. "Current execution" always means
``instances.current_execution_id``, the highest execution an ack has written.
"""

from __future__ import annotations

import sqlite3

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
from duraflow.providers.sqlite.db import transaction
from duraflow.providers.sqlite.orchestrator_queue import load_history

_CURRENT = """
    FROM instances i
    LEFT JOIN executions e
        ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
"""


def instance_status(conn: sqlite3.Connection, instance_id: str) -> InstanceStatus | None:
    row = conn.execute(
        "SELECT i.orchestration_name, i.orchestration_version, i.current_execution_id,"
        " COALESCE(e.status, ?), e.output, i.custom_status, i.custom_status_version,"
        " i.parent_instance_id" + _CURRENT + " WHERE i.instance_id = ?",
        (RUNNING, instance_id),
    ).fetchone()
    if row is None:
        return None
    return instance_status_row(instance_id, row)


def custom_status(
    conn: sqlite3.Connection, instance_id: str, last_seen_version: int
) -> tuple[str | None, int] | None:
    row = conn.execute(
        "SELECT custom_status, custom_status_version FROM instances WHERE instance_id = ?",
        (instance_id,),
    ).fetchone()
    if row is None or int(row[1]) <= last_seen_version:
        return None
    return row[0], int(row[1])


def read_history(
    conn: sqlite3.Connection, instance_id: str, execution_id: int | None
) -> list[HistoryEvent]:
    with transaction(conn, write=False):
        if execution_id is None:
            row = conn.execute(
                "SELECT current_execution_id FROM instances WHERE instance_id = ?",
                (instance_id,),
            ).fetchone()
            if row is None:
                return []
            execution_id = int(row[0])
        texts = load_history(conn, instance_id, execution_id)
    try:
        return [HistoryEvent.from_json(text) for text in texts]
    except HistoryFormatError as exc:
        raise ProviderError(
            "read_history",
            f"history of '{instance_id}' execution {execution_id} cannot be decoded: {exc}",
            retryable=False,
        ) from exc


def list_instances(conn: sqlite3.Connection, status: str | None) -> list[str]:
    if status is None:
        rows = conn.execute(
            "SELECT instance_id FROM instances ORDER BY created_at DESC, rowid DESC"
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT i.instance_id" + _CURRENT + " WHERE e.status = ?"
            " ORDER BY i.created_at DESC, i.rowid DESC",
            (status,),
        ).fetchall()
    return [str(r[0]) for r in rows]


def list_executions(conn: sqlite3.Connection, instance_id: str) -> list[int]:
    rows = conn.execute(
        "SELECT execution_id FROM executions WHERE instance_id = ? ORDER BY execution_id",
        (instance_id,),
    ).fetchall()
    return [int(r[0]) for r in rows]


def instance_info(conn: sqlite3.Connection, instance_id: str) -> InstanceInfo:
    row = conn.execute(
        "SELECT i.orchestration_name, i.orchestration_version, i.current_execution_id,"
        " COALESCE(e.status, ?), e.output, i.created_at, i.updated_at, i.parent_instance_id,"
        " e.build_id" + _CURRENT
        + " WHERE i.instance_id = ?",
        (RUNNING, instance_id),
    ).fetchone()
    return instance_info_row(instance_id, row)


def execution_info(conn: sqlite3.Connection, instance_id: str, execution_id: int) -> ExecutionInfo:
    exists = None
    with transaction(conn, write=False):
        row = conn.execute(
            "SELECT status, output, started_at, completed_at, event_count, build_id"
            " FROM executions"
            " WHERE instance_id = ? AND execution_id = ?",
            (instance_id, execution_id),
        ).fetchone()
        if row is None:
            exists = conn.execute(
                "SELECT 1 FROM instances WHERE instance_id = ?", (instance_id,)
            ).fetchone()
    if row is None:
        raise missing_execution(exists is not None, instance_id, execution_id)
    return execution_row(execution_id, row)


def system_metrics(conn: sqlite3.Connection) -> SystemMetrics:
    with transaction(conn, write=False):
        inst = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(e.status = ?), 0), COALESCE(SUM(e.status = ?), 0),"
            " COALESCE(SUM(e.status = ?), 0)" + _CURRENT,
            (RUNNING, COMPLETED, FAILED),
        ).fetchone()
        executions = conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0]
        events = conn.execute("SELECT COUNT(*) FROM history").fetchone()[0]
    return SystemMetrics(
        total_instances=int(inst[0]),
        total_executions=int(executions),
        running_instances=int(inst[1]),
        completed_instances=int(inst[2]),
        failed_instances=int(inst[3]),
        total_events=int(events),
    )


def queue_depths(conn: sqlite3.Connection) -> QueueDepths:
    with transaction(conn, write=False):
        orch = conn.execute(
            "SELECT COUNT(*) FROM orchestrator_queue WHERE lock_token IS NULL"
        ).fetchone()[0]
        work = conn.execute(
            "SELECT COUNT(*) FROM worker_queue WHERE lock_token IS NULL"
        ).fetchone()[0]
    return QueueDepths(orchestrator_queue=int(orch), worker_queue=int(work), timer_queue=0)


def instance_stats(conn: sqlite3.Connection, instance_id: str) -> SystemStats | None:
    with transaction(conn, write=False):
        row = conn.execute(
            "SELECT current_execution_id FROM instances WHERE instance_id = ?", (instance_id,)
        ).fetchone()
        if row is None:
            return None
        history = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(event_data AS BLOB))), 0) FROM history"
            " WHERE instance_id = ? AND execution_id = ?",
            (instance_id, int(row[0])),
        ).fetchone()
        pending = conn.execute(
            "SELECT COUNT(*) FROM orchestrator_queue WHERE instance_id = ?", (instance_id,)
        ).fetchone()[0]
        kv = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(value AS BLOB))), 0) FROM kv_store"
            " WHERE instance_id = ?",
            (instance_id,),
        ).fetchone()
    return SystemStats(
        history_event_count=int(history[0]),
        history_size_bytes=int(history[1]),
        queue_pending_count=int(pending),
        kv_user_key_count=int(kv[0]),
        kv_total_value_bytes=int(kv[1]),
    )


def kv_value(conn: sqlite3.Connection, instance_id: str, key: str) -> str | None:
    row = conn.execute(
        "SELECT value FROM kv_store WHERE instance_id = ? AND key = ?", (instance_id, key)
    ).fetchone()
    return None if row is None else str(row[0])


def kv_all_values(conn: sqlite3.Connection, instance_id: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT key, value FROM kv_store WHERE instance_id = ? ORDER BY key", (instance_id,)
    ).fetchall()
    return {str(k): str(v) for k, v in rows}


def list_children(conn: sqlite3.Connection, instance_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT instance_id FROM instances WHERE parent_instance_id = ? ORDER BY created_at, rowid",
        (instance_id,),
    ).fetchall()
    return [str(r[0]) for r in rows]
