"""Plain data returned by providers and the client's status and admin calls.

Field names match duroxide-python's result classes so programs reading
``info.current_execution_id`` or ``metrics.total_instances`` work unchanged.
Times are milliseconds since the Unix epoch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from duraflow.core import events as ev
from duraflow.core.errors import ErrorDetails
from duraflow.core.events import HistoryEvent
from duraflow.core.status import Status

# Short names for ``Status`` members, which many modules import from here. Typed ``str``, the
# type of every status field: a status read back from a store is a plain string.
RUNNING: str = Status.RUNNING
COMPLETED: str = Status.COMPLETED
FAILED: str = Status.FAILED
CONTINUED_AS_NEW: str = Status.CONTINUED_AS_NEW
NOT_FOUND: str = Status.NOT_FOUND


@dataclass(slots=True)
class InstanceStatus:
    """What a provider knows about an instance's current execution, read in one query."""

    instance_id: str
    orchestration_name: str
    orchestration_version: str | None
    execution_id: int
    status: str
    output: str | None
    custom_status: str | None
    custom_status_version: int
    parent_instance_id: str | None = None


@dataclass(slots=True)
class OrchestrationStatus:
    status: str
    output: str | None = None
    error: str | None = None
    custom_status: str | None = None
    custom_status_version: int = 0


@dataclass(slots=True)
class SystemMetrics:
    total_instances: int = 0
    total_executions: int = 0
    running_instances: int = 0
    completed_instances: int = 0
    failed_instances: int = 0
    total_events: int = 0


@dataclass(slots=True)
class SystemStats:
    history_event_count: int = 0
    history_size_bytes: int = 0
    queue_pending_count: int = 0
    kv_user_key_count: int = 0
    kv_total_value_bytes: int = 0


@dataclass(slots=True)
class QueueDepths:
    orchestrator_queue: int = 0
    worker_queue: int = 0
    timer_queue: int = 0


@dataclass(slots=True)
class InstanceInfo:
    instance_id: str
    orchestration_name: str
    orchestration_version: str | None
    current_execution_id: int
    status: str
    output: str | None
    created_at: int
    updated_at: int
    parent_instance_id: str | None = None
    #: The build its current execution is pinned to (None: unpinned; docs/rollouts.md).
    build_id: str | None = None


@dataclass(slots=True)
class ExecutionInfo:
    execution_id: int
    status: str
    output: str | None
    started_at: int
    completed_at: int | None
    event_count: int
    #: The build of the runtime that ran its first turn (None: unpinned).
    build_id: str | None = None


@dataclass(slots=True)
class InstanceTree:
    root_id: str
    all_ids: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.all_ids)


@dataclass(slots=True)
class DeleteInstanceResult:
    instances_deleted: int = 0
    executions_deleted: int = 0
    events_deleted: int = 0
    queue_messages_deleted: int = 0


@dataclass(slots=True)
class PruneOptions:
    keep_last: int | None = None
    completed_before: int | None = None


@dataclass(slots=True)
class PruneResult:
    instances_processed: int = 0
    executions_deleted: int = 0
    events_deleted: int = 0


@dataclass(slots=True)
class InstanceFilter:
    instance_ids: list[str] | None = None
    completed_before: int | None = None
    limit: int | None = None


#: A runtime that has not heartbeated for this many intervals counts as gone.
WORKER_GONE_AFTER_HEARTBEATS = 3


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One runtime as recorded in the worker registry (``AsyncClient.list_workers``).

    Written by the runtime's heartbeat (one UPSERT per interval); ``last_seen_at_ms`` is
    stamped by the store's clock and ``alive`` is computed when read: seen within
    ``WORKER_GONE_AFTER_HEARTBEATS`` heartbeat intervals. An operator uses it to tell whether
    any live worker can run an orchestration (``orchestrations`` maps each registered name to
    its versions, ascending) or an activity tag (``tag_filter`` / ``tags``).
    """

    worker_node_id: str
    runtime_id: str
    host: str
    pid: int
    tag_filter: str
    tags: tuple[str, ...]
    orchestrations: dict[str, tuple[str, ...]]
    activities: tuple[str, ...]
    orchestration_concurrency: int
    worker_concurrency: int
    max_sessions: int
    sessions_held: int
    started_at_ms: int
    last_seen_at_ms: int
    heartbeat_interval_ms: int
    alive: bool
    #: The build the runtime runs (``RuntimeOptions.build_id``), None without one.
    build_id: str | None = None
    #: None while the runtime takes work; ``"draining"`` once it saw a drain request for its
    #: ``worker_node_id`` (``AsyncClient.drain_workers``) and stopped taking new work;
    #: ``"drained"`` once nothing runs in it any more and it released its sessions.
    drain_state: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready data (tuples become lists)."""
        return {
            "worker_node_id": self.worker_node_id,
            "runtime_id": self.runtime_id,
            "host": self.host,
            "pid": self.pid,
            "tag_filter": self.tag_filter,
            "tags": list(self.tags),
            "orchestrations": {name: list(v) for name, v in self.orchestrations.items()},
            "activities": list(self.activities),
            "orchestration_concurrency": self.orchestration_concurrency,
            "worker_concurrency": self.worker_concurrency,
            "max_sessions": self.max_sessions,
            "sessions_held": self.sessions_held,
            "started_at_ms": self.started_at_ms,
            "last_seen_at_ms": self.last_seen_at_ms,
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            "alive": self.alive,
            "build_id": self.build_id,
            "drain_state": self.drain_state,
        }


@dataclass(frozen=True, slots=True)
class TagDemand:
    """Activities of one tag in the worker queue: ``waiting`` for a worker (visible, delayed
    for a retry, or whose lock expired) and ``running`` (locked by a live worker now)."""

    waiting: int = 0
    running: int = 0

    @property
    def total(self) -> int:
        return self.waiting + self.running


@dataclass(frozen=True, slots=True)
class WorkDemand:
    """How much work exists, for sizing worker pools (``AsyncClient.get_work_demand``),
    read in ONE statement whatever the number of tags or pools.

    ``activities`` per tag (``None``: untagged; tags without rows are absent); ``turns``:
    instances with orchestration messages waiting or being processed; ``sessions``: per owner
    id (the ``worker_node_id``, i.e. the pod name, of the worker holding them), the live
    session leases with no activity waiting or running (a session with activities is
    counted by them, not twice): state a pod keeps warm.
    """

    activities: dict[str | None, TagDemand] = field(default_factory=dict)
    turns: int = 0
    sessions: dict[str, int] = field(default_factory=dict)

    def activities_for(self, tags: Sequence[str], untagged: bool) -> int:
        """Waiting plus running activities a pool taking ``tags`` (and untagged ones when
        ``untagged``) would run."""
        total = sum(self.activities.get(tag, TagDemand()).total for tag in set(tags))
        if untagged:
            total += self.activities.get(None, TagDemand()).total
        return total


@dataclass(frozen=True, slots=True)
class BuildInfo:
    """One build as the store knows it (``AsyncClient.list_builds``).

    ``state`` is a ``BuildState`` value (current, draining, retired, pending);
    ``live_workers`` counts runtimes of the build alive in the worker registry;
    ``pinned_running`` counts running executions pinned to it: a draining build is needed
    exactly as long as that is above zero.
    """

    build_id: str
    state: str
    live_workers: int
    pinned_running: int
    first_seen_at: int

    def to_dict(self) -> dict[str, object]:
        return {"build_id": self.build_id, "state": self.state,
                "live_workers": self.live_workers, "pinned_running": self.pinned_running,
                "first_seen_at": self.first_seen_at}


_DATA_FIELDS: dict[str, tuple[str, ...]] = {
    ev.ACTIVITY_SCHEDULED: ("name", "input"),
    ev.TIMER_CREATED: ("fire_at_ms",),
    ev.TIMER_FIRED: ("fire_at_ms",),
    ev.EXTERNAL_SUBSCRIBED: ("name",),
    ev.EXTERNAL_EVENT: ("name", "data"),
    ev.SUB_ORCHESTRATION_SCHEDULED: ("name", "instance", "input"),
    ev.QUEUE_SUBSCRIBED: ("name",),
    ev.QUEUE_EVENT_DELIVERED: ("name", "data"),
}
_CAMEL = {"fire_at_ms": "fireAtMs"}


@dataclass(slots=True)
class Event:
    """A history event as the admin API shows it (``read_execution_history``).

    ``data`` is a JSON string shaped like duroxide-python's: results and outputs as the
    stored JSON text, errors as serialised error details, schedules as small objects.
    ``recorded`` is the event exactly as stored (a Duraflow addition): ``data`` leaves out
    what replay needs (sessions, tags, KV values, ...), so ``duraflow.replay_history``
    replays ``recorded``.
    """

    event_id: int
    kind: str
    source_event_id: int | None
    timestamp_ms: int
    data: str | None
    recorded: HistoryEvent | None = field(default=None, repr=False, compare=False)

    @staticmethod
    def from_history(event: HistoryEvent) -> Event:
        return Event(
            event_id=event.event_id,
            kind=event.kind,
            source_event_id=event.source_event_id,
            timestamp_ms=event.timestamp_ms,
            data=_event_data(event),
            recorded=event,
        )


_RAW_JSON_FIELDS = frozenset({"input", "data"})


def _raw(value: object) -> object:
    """duroxide splices stored JSON payloads into event data as JSON, not as strings.

    A payload that is not valid JSON (a raw string) is kept as a string, so ``data`` is
    always valid JSON (duroxide can emit invalid JSON here; see docs/differences.md).
    """
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _event_data(event: HistoryEvent) -> str | None:
    data = event.data
    kind = event.kind
    if kind == ev.ORCHESTRATION_STARTED:
        return json.dumps(
            {"name": data.get("name"), "version": data.get("version"),
             "input": _raw(data.get("input"))}
        )
    if kind == ev.ORCHESTRATION_COMPLETED:
        output = data.get("output")
        return output if isinstance(output, str) else json.dumps(output)
    if kind in (ev.ACTIVITY_COMPLETED, ev.SUB_ORCHESTRATION_COMPLETED):
        result = data.get("result")
        return result if isinstance(result, str) else json.dumps(result)
    if kind in (ev.ORCHESTRATION_FAILED, ev.ACTIVITY_FAILED, ev.SUB_ORCHESTRATION_FAILED):
        details = ErrorDetails.from_dict(data.get("details", {}))
        return json.dumps(details.to_dict())
    fields = _DATA_FIELDS.get(kind)
    if fields is None:
        return None
    return json.dumps({
        _CAMEL.get(name, name): _raw(data.get(name)) if name in _RAW_JSON_FIELDS
        else data.get(name)
        for name in fields
    })
