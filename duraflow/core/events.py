"""History events: the durable record an orchestration is replayed from.

An event is a small envelope (id, kind, source id, timestamp) around a JSON-able ``data`` dict.
Kinds and field names follow duroxide's ``EventKind`` so that histories read through the admin
API look the same to a duroxide-python program. Events are immutable once written; the
provider stores them as JSON text and never looks inside.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from duraflow.core.version import ENGINE_VERSION

# Orchestration lifecycle
ORCHESTRATION_STARTED = "OrchestrationStarted"
ORCHESTRATION_COMPLETED = "OrchestrationCompleted"
ORCHESTRATION_FAILED = "OrchestrationFailed"
ORCHESTRATION_CONTINUED_AS_NEW = "OrchestrationContinuedAsNew"
ORCHESTRATION_CANCEL_REQUESTED = "OrchestrationCancelRequested"
# Activities
ACTIVITY_SCHEDULED = "ActivityScheduled"
ACTIVITY_COMPLETED = "ActivityCompleted"
ACTIVITY_FAILED = "ActivityFailed"
ACTIVITY_CANCEL_REQUESTED = "ActivityCancelRequested"
# Timers
TIMER_CREATED = "TimerCreated"
TIMER_FIRED = "TimerFired"
# External (positional) events
EXTERNAL_SUBSCRIBED = "ExternalSubscribed"
EXTERNAL_EVENT = "ExternalEvent"
EXTERNAL_SUBSCRIBED_CANCELLED = "ExternalSubscribedCancelled"
# Event queues (FIFO mailbox)
QUEUE_SUBSCRIBED = "QueueSubscribed"
QUEUE_EVENT_DELIVERED = "QueueEventDelivered"
QUEUE_SUBSCRIPTION_CANCELLED = "QueueSubscriptionCancelled"
# Sub-orchestrations and detached starts
SUB_ORCHESTRATION_SCHEDULED = "SubOrchestrationScheduled"
SUB_ORCHESTRATION_COMPLETED = "SubOrchestrationCompleted"
SUB_ORCHESTRATION_FAILED = "SubOrchestrationFailed"
SUB_ORCHESTRATION_CANCEL_REQUESTED = "SubOrchestrationCancelRequested"
ORCHESTRATION_CHAINED = "OrchestrationChained"
# Custom status and KV
CUSTOM_STATUS_UPDATED = "CustomStatusUpdated"
KEY_VALUE_SET = "KeyValueSet"
KEY_VALUE_CLEARED = "KeyValueCleared"
KEY_VALUES_CLEARED = "KeyValuesCleared"

ALL_KINDS = frozenset(
    {
        ORCHESTRATION_STARTED,
        ORCHESTRATION_COMPLETED,
        ORCHESTRATION_FAILED,
        ORCHESTRATION_CONTINUED_AS_NEW,
        ORCHESTRATION_CANCEL_REQUESTED,
        ACTIVITY_SCHEDULED,
        ACTIVITY_COMPLETED,
        ACTIVITY_FAILED,
        ACTIVITY_CANCEL_REQUESTED,
        TIMER_CREATED,
        TIMER_FIRED,
        EXTERNAL_SUBSCRIBED,
        EXTERNAL_EVENT,
        EXTERNAL_SUBSCRIBED_CANCELLED,
        QUEUE_SUBSCRIBED,
        QUEUE_EVENT_DELIVERED,
        QUEUE_SUBSCRIPTION_CANCELLED,
        SUB_ORCHESTRATION_SCHEDULED,
        SUB_ORCHESTRATION_COMPLETED,
        SUB_ORCHESTRATION_FAILED,
        SUB_ORCHESTRATION_CANCEL_REQUESTED,
        ORCHESTRATION_CHAINED,
        CUSTOM_STATUS_UPDATED,
        KEY_VALUE_SET,
        KEY_VALUE_CLEARED,
        KEY_VALUES_CLEARED,
    }
)

TERMINAL_KINDS = frozenset(
    {ORCHESTRATION_COMPLETED, ORCHESTRATION_FAILED, ORCHESTRATION_CONTINUED_AS_NEW}
)


class HistoryFormatError(ValueError):
    """Stored history cannot be decoded (corrupt row, or written by a newer engine)."""


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One durable history event of one execution.

    ``event_id`` is 1-based and dense per execution; ``OrchestrationStarted`` is always 1.
    ``source_event_id`` links a completion to the event that scheduled it.
    """

    event_id: int
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    source_event_id: int | None = None
    timestamp_ms: int = 0
    engine_version: str = ENGINE_VERSION

    def to_json(self) -> str:
        return json.dumps(
            {
                "event_id": self.event_id,
                "kind": self.kind,
                "source_event_id": self.source_event_id,
                "timestamp_ms": self.timestamp_ms,
                "engine_version": self.engine_version,
                "data": self.data,
            },
            separators=(",", ":"),
        )

    @staticmethod
    def from_json(text: str) -> HistoryEvent:
        try:
            raw = json.loads(text)
            kind = raw["kind"]
            if kind not in ALL_KINDS:
                raise HistoryFormatError(f"unknown event kind {kind!r}")
            data = raw.get("data") or {}
            if not isinstance(data, dict):
                raise HistoryFormatError("event data must be an object")
            return HistoryEvent(
                event_id=int(raw["event_id"]),
                kind=kind,
                data=data,
                source_event_id=raw.get("source_event_id"),
                timestamp_ms=int(raw.get("timestamp_ms", 0)),
                engine_version=str(raw.get("engine_version", "0.0.0")),
            )
        except HistoryFormatError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise HistoryFormatError(f"undecodable history event: {exc}") from exc
