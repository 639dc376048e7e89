"""What an instance looks like in an Orchestration CR's status: phase, bounded output, metrics.

Pure functions (no I/O), shared by the reconcile and the status sync so that both write the
same status for the same database state: whichever writes last, the CR agrees with the
database. Values copied into the CR are bounded (etcd objects must stay small; the history
stays in PostgreSQL) and a truncated value says so.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from duraflow import Event, InstanceInfo, OrchestrationResult, Status

# CR phases: the instance's status as `kubectl get` shows it (Pending before the start, a
# cancellation told apart from a failure), not the engine's ``Status``.
PENDING, RUNNING, COMPLETED, FAILED, CANCELED = (
    "Pending", "Running", "Completed", "Failed", "Canceled")
TERMINAL_PHASES = (COMPLETED, FAILED, CANCELED)
TRUNCATION_MARKER = ("…[truncated by duraflow-operator: {size} bytes in total; "
                     "read the full value with the Duraflow client]")


def truncate_text(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to about ``limit`` UTF-8 bytes plus a marker giving the full size."""
    data = text.encode()
    if len(data) <= limit:
        return text, False
    head = data[:limit].decode(errors="ignore")
    return head + TRUNCATION_MARKER.format(size=len(data)), True


def bounded_output(value: Any, limit: int) -> tuple[Any, bool]:
    """The output as JSON when it fits, else a truncated string of its JSON encoding."""
    encoded = json.dumps(value)
    if len(encoded.encode()) <= limit:
        return value, False
    return truncate_text(encoded, limit)


def phase_of(result: OrchestrationResult, started: bool) -> str:
    """The CR phase for the instance's state. ``started``: the operator enqueued the start,
    so a not-yet-created instance is already Running from the user's point of view."""
    if result.status == Status.NOT_FOUND:
        return RUNNING if started else PENDING
    if result.status == Status.COMPLETED:
        return COMPLETED
    if result.status == Status.FAILED:
        return CANCELED if (result.error or "").startswith("canceled:") else FAILED
    return RUNNING


@dataclass(frozen=True, slots=True)
class Bounds:
    output: int
    error: int
    custom_status: int


def instance_status(
    result: OrchestrationResult,
    *,
    started: bool,
    bounds: Bounds,
    execution_id: int | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """The status fields that mirror the instance (merge-patch: None clears a field)."""
    phase = phase_of(result, started)
    status: dict[str, Any] = {"phase": phase}
    if execution_id is not None:
        status["executionId"] = execution_id
    if version:
        status["orchestrationVersion"] = version
    if result.custom_status is not None:
        status["customStatus"] = truncate_text(result.custom_status, bounds.custom_status)[0]
    else:
        status["customStatus"] = None
    status["customStatusVersion"] = result.custom_status_version
    if phase == COMPLETED:
        output, truncated = bounded_output(result.output, bounds.output)
        status["output"] = output
        status["outputTruncated"] = truncated or None
        status["error"] = None
    elif phase in (FAILED, CANCELED):
        status["error"] = truncate_text(result.error or "failed", bounds.error)[0]
        status["output"] = None
    return status


def metrics(
    info: InstanceInfo | None, history: Iterable[Event], now_ms: int
) -> dict[str, Any]:
    """The instance's own figures from the admin API: executions, history length, activity
    outcomes (a retry = a failed activity scheduled again under the same name), duration."""
    kinds: Counter[str] = Counter()
    scheduled: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    open_names: dict[int, str] = {}
    count = 0
    for event in history:
        count += 1
        kinds[event.kind] += 1
        if event.kind == "ActivityScheduled":
            name = _event_name(event.data)
            scheduled[name] += 1
            open_names[event.event_id] = name
        elif event.kind == "ActivityFailed" and event.source_event_id is not None:
            failed[open_names.get(event.source_event_id, "")] += 1
    retried = sum(min(failed[name], max(scheduled[name] - 1, 0)) for name in failed)
    figures: dict[str, Any] = {
        "historyEvents": count,
        "activitiesCompleted": kinds["ActivityCompleted"],
        "activitiesFailed": kinds["ActivityFailed"],
        "activitiesRetried": retried,
    }
    if info is not None:
        figures["executions"] = info.current_execution_id
        end = info.updated_at if info.status in Status.TERMINAL else now_ms
        figures["durationSeconds"] = round(max(end - info.created_at, 0) / 1000, 3)
    return figures


def _event_name(data: str | None) -> str:
    try:
        parsed = json.loads(data or "{}")
    except ValueError:
        return ""
    return str(parsed.get("name", "")) if isinstance(parsed, Mapping) else ""


def changed(current: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level ``fields`` that would change ``current`` (None = absent), so an
    unchanged status is never written: every write is an etcd write and a watch event."""
    return {k: v for k, v in fields.items()
            if (current.get(k) is not None if v is None else current.get(k) != v)}


def status_ops(current: Mapping[str, Any], fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The JSON patch (RFC 6902) that sets the changed top-level ``fields`` of a status
    (None = remove it). Not a merge patch: in a merge patch a null means "delete this key",
    so an output ``{"a": null}`` would be stored as ``{}``; here values are stored as they
    are. A field is removed only when ``current`` shows it (a remove of a missing member
    fails the whole patch)."""
    ops: list[dict[str, Any]] = []
    for key, value in changed(current, fields).items():
        path = "/status/" + key.replace("~", "~0").replace("/", "~1")
        if value is None:
            ops.append({"op": "remove", "path": path})
        else:
            ops.append({"op": "add", "path": path, "value": value})
    return ops


def differs(current: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
    """Whether merge-patching ``patch`` onto ``current`` would change anything."""
    for key, value in patch.items():
        if value is None:
            if current.get(key) is not None:
                return True
        elif isinstance(value, Mapping) and isinstance(current.get(key), Mapping):
            if differs(current[key], value):
                return True
        elif current.get(key) != value:
            return True
    return False
