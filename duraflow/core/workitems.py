"""Work items: the messages that travel through the orchestrator and worker queues.

Each item is a JSON object with a ``type`` and an ``instance`` (the routing key: the instance
whose orchestrator queue receives it). Builders here keep the field names in one place.
"""

from __future__ import annotations

from typing import Any

WorkItem = dict[str, Any]

START_ORCHESTRATION = "StartOrchestration"
ACTIVITY_COMPLETED = "ActivityCompleted"
ACTIVITY_FAILED = "ActivityFailed"
TIMER_FIRED = "TimerFired"
EXTERNAL_RAISED = "ExternalRaised"
QUEUE_MESSAGE = "QueueMessage"
SUB_ORCH_COMPLETED = "SubOrchCompleted"
SUB_ORCH_FAILED = "SubOrchFailed"
CANCEL_INSTANCE = "CancelInstance"
CONTINUE_AS_NEW = "ContinueAsNew"
ACTIVITY_EXECUTE = "ActivityExecute"

ORCHESTRATOR_ITEM_TYPES = frozenset(
    {
        START_ORCHESTRATION,
        ACTIVITY_COMPLETED,
        ACTIVITY_FAILED,
        TIMER_FIRED,
        EXTERNAL_RAISED,
        QUEUE_MESSAGE,
        SUB_ORCH_COMPLETED,
        SUB_ORCH_FAILED,
        CANCEL_INSTANCE,
        CONTINUE_AS_NEW,
    }
)


def start_orchestration(
    instance: str,
    orchestration: str,
    input: str,
    version: str | None = None,
    parent_instance: str | None = None,
    parent_execution_id: int | None = None,
    parent_id: int | None = None,
) -> WorkItem:
    return {
        "type": START_ORCHESTRATION,
        "instance": instance,
        "orchestration": orchestration,
        "input": input,
        "version": version,
        "parent_instance": parent_instance,
        "parent_execution_id": parent_execution_id,
        "parent_id": parent_id,
    }


def external_raised(instance: str, name: str, data: str, key: str | None = None) -> WorkItem:
    """``key``: an idempotency key; a second event with the same key in the same execution
    is dropped instead of recorded (``AsyncClient.raise_event(idempotency_key=...)``)."""
    item: WorkItem = {"type": EXTERNAL_RAISED, "instance": instance, "name": name, "data": data}
    if key is not None:
        item["key"] = key
    return item


def queue_message(instance: str, name: str, data: str) -> WorkItem:
    return {"type": QUEUE_MESSAGE, "instance": instance, "name": name, "data": data}


def cancel_instance(instance: str, reason: str) -> WorkItem:
    return {"type": CANCEL_INSTANCE, "instance": instance, "reason": reason}


def activity_completed(instance: str, execution_id: int, activity_id: int, result: str) -> WorkItem:
    return {
        "type": ACTIVITY_COMPLETED,
        "instance": instance,
        "execution_id": execution_id,
        "id": activity_id,
        "result": result,
    }


def activity_failed(
    instance: str, execution_id: int, activity_id: int, details: dict[str, Any]
) -> WorkItem:
    return {
        "type": ACTIVITY_FAILED,
        "instance": instance,
        "execution_id": execution_id,
        "id": activity_id,
        "details": details,
    }


def timer_fired(instance: str, execution_id: int, timer_id: int, fire_at_ms: int) -> WorkItem:
    return {
        "type": TIMER_FIRED,
        "instance": instance,
        "execution_id": execution_id,
        "id": timer_id,
        "fire_at_ms": fire_at_ms,
    }


def sub_orch_completed(
    parent_instance: str, parent_execution_id: int, parent_id: int, result: str
) -> WorkItem:
    return {
        "type": SUB_ORCH_COMPLETED,
        "instance": parent_instance,
        "parent_execution_id": parent_execution_id,
        "parent_id": parent_id,
        "result": result,
    }


def sub_orch_failed(
    parent_instance: str, parent_execution_id: int, parent_id: int, details: dict[str, Any]
) -> WorkItem:
    return {
        "type": SUB_ORCH_FAILED,
        "instance": parent_instance,
        "parent_execution_id": parent_execution_id,
        "parent_id": parent_id,
        "details": details,
    }


def continue_as_new(
    instance: str,
    orchestration: str,
    input: str,
    version: str | None,
    carry_forward_events: list[list[str]],
    initial_custom_status: str | None,
    parent_instance: str | None,
    parent_execution_id: int | None,
    parent_id: int | None,
    initial_kv: dict[str, list[Any]] | None = None,
) -> WorkItem:
    return {
        "type": CONTINUE_AS_NEW,
        "initial_kv": initial_kv or {},
        "instance": instance,
        "orchestration": orchestration,
        "input": input,
        "version": version,
        "carry_forward_events": carry_forward_events,
        "initial_custom_status": initial_custom_status,
        "parent_instance": parent_instance,
        "parent_execution_id": parent_execution_id,
        "parent_id": parent_id,
    }


def activity_execute(
    instance: str,
    execution_id: int,
    activity_id: int,
    name: str,
    input: str,
    orchestration_name: str,
    orchestration_version: str,
    session_id: str | None = None,
    tag: str | None = None,
) -> WorkItem:
    return {
        "type": ACTIVITY_EXECUTE,
        "instance": instance,
        "execution_id": execution_id,
        "id": activity_id,
        "name": name,
        "input": input,
        "orchestration_name": orchestration_name,
        "orchestration_version": orchestration_version,
        "session_id": session_id,
        "tag": tag,
    }
