"""Recorded histories in the forms people hand them over, turned into executions to replay.

A history reaches the replay checker as the ``Event`` objects the client returns, as the JSON
``duraflow history ID --json`` prints (one execution, every event with its ``recorded``
form: the event exactly as stored, which is what replay needs; the duroxide-shaped ``data``
beside it leaves out sessions, tags, KV values and more), as that JSON's text, or as plain
``HistoryEvent`` lists. A list may hold several executions of one instance one after the
other (continue-as-new): each begins with its ``OrchestrationStarted``, event id 1.

Anything else is refused with ``HistoryFormatError`` (a ``ValueError``) saying what was
found, so a CLI can print one line instead of a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from duraflow.core import events as ev
from duraflow.core.events import HistoryEvent, HistoryFormatError
from duraflow.core.models import Event


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution's recorded events, and which execution of which instance it is."""

    execution_id: int
    events: list[HistoryEvent]
    instance_id: str | None = None


def executions_of(history: Any) -> list[Execution]:
    """The executions ``history`` records, in order (never empty)."""
    instance_id: str | None = None
    first_id = 1
    if isinstance(history, (str, bytes)):
        try:
            history = json.loads(history)
        except ValueError as exc:
            raise HistoryFormatError(f"not JSON: {exc}") from None
    if isinstance(history, dict):
        instance_id = _text(history.get("instance_id"))
        first_id = _positive(history.get("execution_id"), 1)
        if "events" in history:
            history = history["events"]
        elif "history" in history:
            history = history["history"]
        else:
            raise HistoryFormatError(
                "not a history: expected the JSON of `duraflow history ID --json` (an object "
                f"with \"events\"), found keys {', '.join(sorted(map(str, history))) or 'none'}")
    if not isinstance(history, (list, tuple)):
        raise HistoryFormatError(f"not a history: expected a list of events, got "
                                 f"{type(history).__name__}")
    events = [_event(item, position) for position, item in enumerate(history)]
    return _split(events, instance_id, first_id)


def _split(events: list[HistoryEvent], instance_id: str | None,
           first_id: int) -> list[Execution]:
    if not events:
        raise HistoryFormatError("the history has no events")
    runs: list[list[HistoryEvent]] = []
    for event in events:
        if event.kind == ev.ORCHESTRATION_STARTED and event.event_id == 1:
            runs.append([])
        elif not runs:
            raise HistoryFormatError(
                f"the history begins with {event.kind} (event {event.event_id}); an "
                "execution's history begins with OrchestrationStarted")
        runs[-1].append(event)
    return [Execution(first_id + n, run, instance_id) for n, run in enumerate(runs)]


def _event(item: Any, position: int) -> HistoryEvent:
    if isinstance(item, HistoryEvent):
        return item
    if isinstance(item, Event):
        if item.recorded is None:
            raise HistoryFormatError(
                f"event {item.event_id} carries only its display form; replay needs the events "
                "the client read (read_execution_history) or `duraflow history --json`")
        return item.recorded
    if isinstance(item, dict):
        # An exported event carries its stored form under "recorded"; a stored event itself
        # has an engine version. An event with neither is the display form alone, whose
        # "data" differs from what was recorded (payloads decoded, sessions and tags left
        # out): replaying it would report differences that are not there.
        raw = item.get("recorded", item if "engine_version" in item else None)
        if not isinstance(raw, dict):
            raise HistoryFormatError(
                f"event at position {position} has no recorded form (the \"recorded\" object "
                "`duraflow history ID --json` writes beside each event's display data)")
        return HistoryEvent.from_json(json.dumps(raw))
    raise HistoryFormatError(f"event at position {position} is a {type(item).__name__}, "
                             "not an event")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _positive(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else default
