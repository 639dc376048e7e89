"""What one turn produces for the runtime to commit, besides the messages it consumed."""

from __future__ import annotations

from dataclasses import dataclass, field

from duraflow.core import workitems as wi
from duraflow.core.events import HistoryEvent


@dataclass(slots=True)
class ScheduledActivity:
    activity_id: int
    item: wi.WorkItem
    session_id: str | None
    tag: str | None
    retry: bool = False  # a retry policy's second or later attempt (for the retries metric)


@dataclass(slots=True)
class Outgoing:
    instance_id: str
    item: wi.WorkItem
    visible_at_ms: int | None = None


@dataclass(slots=True)
class TurnOutput:
    """What one turn must commit, besides consuming its messages."""

    new_events: list[HistoryEvent] = field(default_factory=list)
    activities: list[ScheduledActivity] = field(default_factory=list)
    messages: list[Outgoing] = field(default_factory=list)
    cancelled_activity_ids: list[int] = field(default_factory=list)
    status: str | None = None
    output: str | None = None
    custom_status_changed: bool = False
    custom_status: str | None = None
    kv_mutations: list[tuple[str, str | None, str | None, int]] = field(default_factory=list)
    traces: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
