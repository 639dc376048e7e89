"""Small pieces every provider needs identically: encoding work items, shaping admin rows."""

from __future__ import annotations

import json
from typing import Any

from duraflow.core.models import ExecutionInfo, InstanceInfo, InstanceStatus
from duraflow.core.workitems import WorkItem
from duraflow.providers.base import InstanceNotFoundError, ProviderError, describe


def encode_item(operation: str, item: WorkItem) -> str:
    try:
        return json.dumps(item, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ProviderError(
            operation, f"work item is not JSON-encodable: {describe(item)}", retryable=False
        ) from exc


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
    """``row`` = (status, output, started_at, completed_at, event_count)."""
    return ExecutionInfo(
        execution_id=execution_id,
        status=row[0],
        output=row[1],
        started_at=int(row[2]),
        completed_at=None if row[3] is None else int(row[3]),
        event_count=int(row[4]),
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
    updated_at, parent_instance_id), or None when the instance does not exist."""
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
    )
