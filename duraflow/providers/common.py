"""Small pieces both providers need identically: encoding and decoding work items, the
leases of the activities a turn claimed, shaping rows into the admin read types.

Written once here because neither provider may import the other (the rules of the admin
operations have their own module, ``admin_rules``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from duraflow.core.models import (
    ExecutionInfo,
    InstanceInfo,
    InstanceStatus,
    TagDemand,
    WorkDemand,
    WorkerInfo,
)
from duraflow.core.workitems import WorkItem
from duraflow.providers.errors import InstanceNotFoundError, ProviderError, describe
from duraflow.providers.items import TurnCommit, WorkLease


def encode_item(operation: str, item: WorkItem) -> str:
    try:
        return json.dumps(item, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ProviderError(
            operation, f"work item is not JSON-encodable: {describe(item)}", retryable=False
        ) from exc


def decode_item(text: str) -> WorkItem:
    """A stored work item; ``ValueError`` when it is not JSON or not a JSON object."""
    decoded: Any = json.loads(text)
    if not isinstance(decoded, dict):
        raise ValueError("not a JSON object")
    return decoded


def claimed_leases(commit: TurnCommit, tokens: Sequence[str | None]) -> list[WorkLease]:
    """The leases of the worker items a commit inserted locked (attempt 1), in order;
    ``tokens`` has one entry per worker item, None for those queued unlocked."""
    return [
        WorkLease(token, 1, w.item, w.instance_id, w.execution_id, w.activity_id,
                  w.session_id, w.tag)
        for w, token in zip(commit.worker_items, tokens, strict=True)
        if token is not None
    ]


def missing_execution(instance_exists: bool, instance_id: str, execution_id: int) -> ProviderError:
    """The error for ``get_execution_info`` of an unknown instance or execution."""
    if not instance_exists:
        return InstanceNotFoundError("get_execution_info", instance_id)
    return ProviderError(
        "get_execution_info",
        f"execution {execution_id} of instance '{instance_id}' not found",
        retryable=False,
    )


def execution_row(execution_id: int, row: Any) -> ExecutionInfo:
    """``row`` = (status, output, started_at, completed_at, event_count, build_id)."""
    return ExecutionInfo(
        execution_id=execution_id,
        status=row[0],
        output=row[1],
        started_at=int(row[2]),
        completed_at=None if row[3] is None else int(row[3]),
        event_count=int(row[4]),
        build_id=row[5],
    )


def instance_status_row(instance_id: str, row: Any) -> InstanceStatus:
    """``row`` = (name, version, execution_id, status, output, custom_status,
    custom_status_version, parent_instance_id)."""
    return InstanceStatus(
        instance_id=instance_id,
        orchestration_name=row[0],
        orchestration_version=row[1],
        execution_id=int(row[2]),
        status=row[3],
        output=row[4],
        custom_status=row[5],
        custom_status_version=int(row[6]),
        parent_instance_id=row[7],
    )


def instance_info_row(instance_id: str, row: Any) -> InstanceInfo:
    """``row`` = (name, version, current_execution_id, status, output, created_at,
    updated_at, parent_instance_id, build_id), or None when the instance does not exist."""
    if row is None:
        raise InstanceNotFoundError("get_instance_info", instance_id)
    return InstanceInfo(
        instance_id=instance_id,
        orchestration_name=row[0],
        orchestration_version=row[1],
        current_execution_id=int(row[2]),
        status=row[3],
        output=row[4],
        created_at=int(row[5]),
        updated_at=int(row[6]),
        parent_instance_id=row[7],
        build_id=row[8],
    )


#: Column order of every worker-registry read, in both providers (a read adds ``alive``
#: after them).
WORKER_COLUMNS = (
    "worker_node_id, runtime_id, host, pid, tag_filter, tags, orchestrations, activities,"
    " orchestration_concurrency, worker_concurrency, max_sessions, sessions_held,"
    " started_at, last_seen_at, heartbeat_interval_ms, build_id, drain_state"
)


def worker_params(worker: WorkerInfo) -> tuple[Any, ...]:
    """The values of ``WORKER_COLUMNS`` except ``last_seen_at`` (the store's clock sets it):
    the 13 before it, then ``heartbeat_interval_ms``, ``build_id`` and ``drain_state``."""
    return (
        worker.worker_node_id,
        worker.runtime_id,
        worker.host,
        int(worker.pid),
        worker.tag_filter,
        json.dumps(list(worker.tags)),
        json.dumps({name: list(v) for name, v in worker.orchestrations.items()}),
        json.dumps(list(worker.activities)),
        int(worker.orchestration_concurrency),
        int(worker.worker_concurrency),
        int(worker.max_sessions),
        int(worker.sessions_held),
        int(worker.started_at_ms),
        int(worker.heartbeat_interval_ms),
        worker.build_id,
        worker.drain_state,
    )


def worker_row(row: Any, alive: bool) -> WorkerInfo:
    """A ``WORKER_COLUMNS`` row as ``WorkerInfo``."""
    orchestrations = json.loads(row[6])
    return WorkerInfo(
        worker_node_id=str(row[0]),
        runtime_id=str(row[1]),
        host=str(row[2]),
        pid=int(row[3]),
        tag_filter=str(row[4]),
        tags=tuple(json.loads(row[5])),
        orchestrations={str(k): tuple(v) for k, v in orchestrations.items()},
        activities=tuple(json.loads(row[7])),
        orchestration_concurrency=int(row[8]),
        worker_concurrency=int(row[9]),
        max_sessions=int(row[10]),
        sessions_held=int(row[11]),
        started_at_ms=int(row[12]),
        last_seen_at_ms=int(row[13]),
        heartbeat_interval_ms=int(row[14]),
        alive=alive,
        build_id=row[15],
        drain_state=row[16],
    )


#: Whether the drained node ``d`` (a ``worker_drains`` row) is idle, as an SQL expression
#: over ``d`` and ``now.t`` (``{s}``: the schema prefix; ``{gone}``: the parameter holding
#: the number of heartbeat intervals after which a runtime is gone). Idle: every live
#: runtime of the node reported ``drained`` in a heartbeat after the request (a report older
#: than it belongs to an earlier drain), and the node holds no live session lease. A node
#: without a live runtime runs nothing: idle.
DRAIN_IDLE = (
    "NOT EXISTS (SELECT 1 FROM {s}workers w WHERE w.worker_node_id = d.worker_node_id"
    " AND w.last_seen_at >= now.t - {gone} * w.heartbeat_interval_ms"
    " AND (w.drain_state IS NULL OR w.drain_state <> 'drained'"
    " OR w.last_seen_at < d.requested_at))"
    " AND NOT EXISTS (SELECT 1 FROM {s}sessions ss WHERE ss.worker_id = d.worker_node_id"
    " AND ss.locked_until > now.t)"
)


def demand_from_rows(rows: Iterable[Any]) -> WorkDemand:
    """A ``WorkDemand`` from the demand statement's rows ``(kind, key, a, b)``: ``a`` for
    activities of tag ``key`` waiting and ``b`` running, ``o`` for the turns, ``s`` for the
    live sessions of owner ``key``."""
    activities: dict[str | None, TagDemand] = {}
    sessions: dict[str, int] = {}
    turns = 0
    for kind, key, first, second in rows:
        if kind == "a":
            activities[key] = TagDemand(int(first), int(second))
        elif kind == "o":
            turns = int(first)
        else:
            sessions[str(key)] = int(first)
    return WorkDemand(activities, turns, sessions)
