"""The determinism check: on replay, the code must emit again what history recorded.

Replaying an orchestration re-runs its code. Every action the code emits must be the next
scheduling event of the recorded history: same kind, same source, and the same values of
the fields that define it (an activity's name and input, a child's name and input, ...).
These rules, and the messages that name the expected and the actual action when they are
broken, live here; the replay driver (replay.py) only decides when to check.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from duraflow.core import events as ev
from duraflow.core.errors import ErrorDetails, NondeterminismError
from duraflow.core.events import HistoryEvent

# Scheduling events, each with the fields an emitted action must agree on.
MATCH_FIELDS: dict[str, tuple[str, ...]] = {
    ev.ACTIVITY_SCHEDULED: ("name", "input", "session_id", "tag"),
    ev.TIMER_CREATED: (),
    ev.EXTERNAL_SUBSCRIBED: ("name",),
    ev.QUEUE_SUBSCRIBED: ("name",),
    ev.SUB_ORCHESTRATION_SCHEDULED: ("name", "input"),
    ev.ORCHESTRATION_CHAINED: ("name", "instance", "input"),
    ev.CUSTOM_STATUS_UPDATED: (),
    ev.KEY_VALUE_SET: ("key", "value"),
    ev.KEY_VALUE_CLEARED: ("key",),
    ev.KEY_VALUES_CLEARED: (),
    ev.ACTIVITY_CANCEL_REQUESTED: (),
    ev.SUB_ORCHESTRATION_CANCEL_REQUESTED: (),
    ev.EXTERNAL_SUBSCRIBED_CANCELLED: (),
    ev.QUEUE_SUBSCRIPTION_CANCELLED: (),
}


def recorded_actions(history: list[HistoryEvent]) -> deque[HistoryEvent]:
    """The scheduling events of ``history`` in order: what the code must emit again."""
    return deque(e for e in history if e.kind in MATCH_FIELDS)


def match(
    recorded: HistoryEvent, kind: str, data: dict[str, Any], source: int | None
) -> HistoryEvent:
    """``recorded`` if the emitted action (``kind``, ``data``, ``source``) is the one it
    records; raises ``NondeterminismError`` naming both otherwise."""
    fields = MATCH_FIELDS[kind]
    if (
        recorded.kind != kind
        or recorded.source_event_id != source
        or any(recorded.data.get(f) != data.get(f) for f in fields)
    ):
        raise NondeterminismError(
            f"schedule mismatch: action={_describe(kind, data, fields)} vs "
            f"event={_describe(recorded.kind, recorded.data, fields)} "
            f"(event_id={recorded.event_id})",
            expected_event_id=recorded.event_id,
            expected=describe_event(recorded),
            got=describe_action(kind, data),
        )
    return recorded


def not_emitted(event: HistoryEvent) -> NondeterminismError:
    """History scheduled ``event``, but the code, replayed past it, did not emit it."""
    return NondeterminismError(
        f"history schedule but no emitted action: {event.kind} "
        f"(event_id={event.event_id}, {_describe(event.kind, event.data, ('name',))})",
        expected_event_id=event.event_id,
        expected=describe_event(event),
        got="nothing: the code did not emit it before the next recorded event",
    )


def left_over(event: HistoryEvent) -> NondeterminismError:
    """The code finished while history still has ``event`` scheduled after that point."""
    return NondeterminismError(
        f"orchestration finished but history has more scheduled work: "
        f"{_describe(event.kind, event.data, ('name',))} (event_id={event.event_id})",
        expected_event_id=event.event_id,
        expected=describe_event(event),
        got="the orchestration finished (returned or continued as new) instead",
    )


#: What a person needs to recognise an event beyond the fields compared: how an execution
#: ended, which status was set.
_SHOWN_FIELDS: dict[str, tuple[str, ...]] = {
    ev.CUSTOM_STATUS_UPDATED: ("status",),
    ev.ORCHESTRATION_COMPLETED: ("output",),
    ev.ORCHESTRATION_CONTINUED_AS_NEW: ("input",),
}
#: Longest value shown in a description; a divergence must fit on a line of a report.
_VALUE_CHARS = 80


def describe_event(event: HistoryEvent) -> str:
    """A recorded event as a person reads it: ``ActivityScheduled(name='Charge', input='1')``,
    with the fields the determinism check compares (an ending: its output or error)."""
    return describe_action(event.kind, event.data)


def describe_action(kind: str, data: dict[str, Any]) -> str:
    """An action the code emitted (or an event it recorded), described like ``describe_event``."""
    if kind == ev.ORCHESTRATION_FAILED:  # the last line of a traceback says what went wrong
        lines = ErrorDetails.from_dict(data.get("details", {})).display_message().splitlines()
        return f"{kind}(error={_clip(lines[-1].strip() if lines else '')})"
    fields = MATCH_FIELDS.get(kind) or _SHOWN_FIELDS.get(kind) or ("name",)
    shown = ", ".join(f"{f}={_clip(data.get(f))}" for f in fields if data.get(f) is not None)
    return f"{kind}({shown})"


def _describe(kind: str, data: dict[str, Any], fields: tuple[str, ...]) -> str:
    shown = ", ".join(f"{f}={data.get(f)!r}" for f in fields if data.get(f) is not None)
    return f"{kind}({shown})"


def _clip(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 3] + "..."
