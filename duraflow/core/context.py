"""The orchestration context handed to generator functions, duroxide-python compatible.

Scheduling methods return *descriptors* (plain dicts, ``ScheduledTask`` for activities) that
the orchestration must ``yield``; a descriptor never yielded is never scheduled. The shapes
are duroxide-python's own, so code that builds or inspects descriptors keeps working.
Side calls (custom status, tracing) go to the replay that owns this context, never to a
process-global table keyed by instance id, so two replays of one instance cannot collide.
"""

from __future__ import annotations

from typing import Any, Protocol

from duraflow.core.limits import encode_payload, kv_text


class ReplayHandle(Protocol):
    """What the context needs from the replay that created it."""

    @property
    def is_replaying(self) -> bool: ...

    def set_custom_status(self, status: str | None) -> None: ...

    def get_custom_status(self) -> str | None: ...

    def trace(self, level: str, message: str) -> None: ...

    def set_kv(self, key: str, value: str) -> None: ...

    def clear_kv(self, key: str) -> None: ...

    def clear_all_kv(self) -> None: ...

    def prune_kv(self, cutoff_ms: int) -> int: ...

    def get_kv(self) -> dict[str, str]: ...


class ScheduledTask(dict[str, Any]):
    """An activity descriptor; ``.with_tag()`` routes it to workers that accept the tag."""

    def with_tag(self, tag: str) -> ScheduledTask:
        self["tag"] = tag
        return self


def _raw(value: Any, kind: str) -> str:
    """Typed variants pass strings through unencoded, as duroxide-python does."""
    return value if isinstance(value, str) else encode_payload(kind, value)


def _retry(retry: dict[str, Any] | None) -> dict[str, Any]:
    retry = retry or {}
    return {
        "maxAttempts": retry.get("max_attempts", retry.get("maxAttempts", 3)),
        "timeoutMs": retry.get("timeout_ms", retry.get("timeoutMs")),
        "totalTimeoutMs": retry.get("total_timeout_ms", retry.get("totalTimeoutMs")),
        "backoff": retry.get("backoff", retry.get("backoff_strategy")),
    }


class _Detached:
    """Stands in for a replay when a context is built by hand (tests, tooling): side calls
    do nothing and reads return nothing, as with duroxide-python 0.2.2."""

    is_replaying = False

    def set_custom_status(self, status: str | None) -> None:
        return None

    def get_custom_status(self) -> str | None:
        return None

    def trace(self, level: str, message: str) -> None:
        return None

    def set_kv(self, key: str, value: str) -> None:
        return None

    def clear_kv(self, key: str) -> None:
        return None

    def clear_all_kv(self) -> None:
        return None

    def prune_kv(self, cutoff_ms: int) -> int:
        return 0

    def get_kv(self) -> dict[str, str]:
        return {}


class OrchestrationContext:
    """Passed as the first argument of every orchestration function.

    ``ctx_info`` is duroxide-python's dict (``instanceId``, ``executionId``,
    ``orchestrationName``, ``orchestrationVersion``); the engine also passes its replay.
    """

    def __init__(self, ctx_info: dict[str, Any], replay: ReplayHandle | None = None) -> None:
        self._replay: ReplayHandle = replay if replay is not None else _Detached()
        self.instance_id: str = ctx_info["instanceId"]
        self.execution_id: int = ctx_info["executionId"]
        self.orchestration_name: str = ctx_info["orchestrationName"]
        self.orchestration_version: str = ctx_info["orchestrationVersion"]

    @property
    def is_replaying(self) -> bool:
        """True while the code re-runs steps already recorded in history."""
        return self._replay.is_replaying

    # ─── Activities ─────────────────────────────────────────────────────────

    def schedule_activity(
        self, name: str, input: Any = None, session_id: str | None = None
    ) -> ScheduledTask:
        if session_id is not None:
            return self.schedule_activity_on_session(name, input, session_id)
        return ScheduledTask(
            type="activity", name=name, input=encode_payload("activity input", input)
        )

    def schedule_activity_on_session(
        self, name: str, input: Any, session_id: str
    ) -> ScheduledTask:
        return ScheduledTask(
            type="activityWithSession",
            name=name,
            input=encode_payload("activity input", input),
            sessionId=session_id,
        )

    def schedule_activity_with_retry(
        self, name: str, input: Any, retry: dict[str, Any]
    ) -> ScheduledTask:
        return ScheduledTask(
            type="activityWithRetry",
            name=name,
            input=encode_payload("activity input", input),
            retry=_retry(retry),
        )

    def schedule_activity_with_retry_on_session(
        self, name: str, input: Any, retry: dict[str, Any], session_id: str
    ) -> ScheduledTask:
        return ScheduledTask(
            type="activityWithRetryOnSession",
            name=name,
            input=encode_payload("activity input", input),
            retry=_retry(retry),
            sessionId=session_id,
        )

    # ─── Timers, events ─────────────────────────────────────────────────────

    def schedule_timer(self, delay_ms: int) -> dict[str, Any]:
        return {"type": "timer", "delayMs": delay_ms}

    def wait_for_event(self, name: str) -> dict[str, Any]:
        return {"type": "waitEvent", "name": name}

    def dequeue_event(self, queue_name: str) -> dict[str, Any]:
        return {"type": "dequeueEvent", "queueName": queue_name}

    # ─── Sub-orchestrations and detached starts ─────────────────────────────

    def schedule_sub_orchestration(self, name: str, input: Any = None) -> dict[str, Any]:
        return {
            "type": "subOrchestration",
            "name": name,
            "input": encode_payload("sub-orchestration input", input),
        }

    def schedule_sub_orchestration_with_id(
        self, name: str, instance_id: str, input: Any = None
    ) -> dict[str, Any]:
        return {
            "type": "subOrchestrationWithId",
            "name": name,
            "instanceId": instance_id,
            "input": encode_payload("sub-orchestration input", input),
        }

    def schedule_sub_orchestration_versioned(
        self, name: str, version: str | None = None, input: Any = None
    ) -> dict[str, Any]:
        return {
            "type": "subOrchestrationVersioned",
            "name": name,
            "version": version,
            "input": encode_payload("sub-orchestration input", input),
        }

    def schedule_sub_orchestration_versioned_with_id(
        self, name: str, version: str | None, instance_id: str, input: Any = None
    ) -> dict[str, Any]:
        return {
            "type": "subOrchestrationVersionedWithId",
            "name": name,
            "version": version,
            "instanceId": instance_id,
            "input": encode_payload("sub-orchestration input", input),
        }

    def start_orchestration(self, name: str, instance_id: str, input: Any = None) -> dict[str, Any]:
        return {
            "type": "orchestration",
            "name": name,
            "instanceId": instance_id,
            "input": encode_payload("orchestration input", input),
        }

    def start_orchestration_versioned(
        self, name: str, version: str | None, instance_id: str, input: Any = None
    ) -> dict[str, Any]:
        return {
            "type": "orchestrationVersioned",
            "name": name,
            "version": version,
            "instanceId": instance_id,
            "input": encode_payload("orchestration input", input),
        }

    # ─── Deterministic values, continue-as-new ──────────────────────────────

    def new_guid(self) -> dict[str, Any]:
        return {"type": "newGuid"}

    def utc_now(self) -> dict[str, Any]:
        return {"type": "utcNow"}

    def continue_as_new(self, input: Any = None) -> dict[str, Any]:
        return {"type": "continueAsNew", "input": encode_payload("continue-as-new input", input)}

    def continue_as_new_versioned(self, input: Any, version: str | None = None) -> dict[str, Any]:
        return {
            "type": "continueAsNewVersioned",
            "input": encode_payload("continue-as-new input", input),
            "version": version,
        }

    # ─── Typed variants (results are always parsed; strings pass through raw) ──

    def schedule_activity_typed(
        self, name: str, input: Any = None, result_type: Any = None
    ) -> ScheduledTask:
        return ScheduledTask(
            type="activity", name=name, input=_raw(input, "activity input"), _typed=True
        )

    def schedule_activity_on_session_typed(
        self, name: str, input: Any = None, session_id: str | None = None
    ) -> ScheduledTask:
        return ScheduledTask(
            type="activityWithSession",
            name=name,
            input=_raw(input, "activity input"),
            sessionId=session_id,
            _typed=True,
        )

    def schedule_activity_with_retry_typed(
        self, name: str, input: Any = None, retry: dict[str, Any] | None = None
    ) -> ScheduledTask:
        return ScheduledTask(
            type="activityWithRetry",
            name=name,
            input=_raw(input, "activity input"),
            retry=_retry(retry),
            _typed=True,
        )

    def schedule_activity_with_retry_on_session_typed(
        self,
        name: str,
        input: Any = None,
        retry: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> ScheduledTask:
        return ScheduledTask(
            type="activityWithRetryOnSession",
            name=name,
            input=_raw(input, "activity input"),
            retry=_retry(retry),
            sessionId=session_id,
            _typed=True,
        )

    def schedule_sub_orchestration_typed(
        self, name: str, input: Any = None, result_type: Any = None
    ) -> dict[str, Any]:
        return {
            "type": "subOrchestration",
            "name": name,
            "input": _raw(input, "sub-orchestration input"),
            "_typed": True,
        }

    def schedule_sub_orchestration_with_id_typed(
        self, name: str, instance_id: str, input: Any = None
    ) -> dict[str, Any]:
        return {
            "type": "subOrchestrationWithId",
            "name": name,
            "instanceId": instance_id,
            "input": _raw(input, "sub-orchestration input"),
            "_typed": True,
        }

    def start_orchestration_typed(
        self, name: str, instance_id: str, input: Any = None
    ) -> dict[str, Any]:
        return {
            "type": "orchestration",
            "name": name,
            "instanceId": instance_id,
            "input": _raw(input, "orchestration input"),
        }

    def start_orchestration_versioned_typed(
        self, name: str, version: str | None, instance_id: str, input: Any = None
    ) -> dict[str, Any]:
        return {
            "type": "orchestrationVersioned",
            "name": name,
            "version": version,
            "instanceId": instance_id,
            "input": _raw(input, "orchestration input"),
        }

    def wait_for_event_typed(self, name: str) -> dict[str, Any]:
        return {"type": "waitEvent", "name": name, "_typed": True}

    def dequeue_event_typed(self, queue_name: str) -> dict[str, Any]:
        return {"type": "dequeueEvent", "queueName": queue_name, "_typed": True}

    def continue_as_new_typed(self, input: Any = None) -> dict[str, Any]:
        return {"type": "continueAsNew", "input": _raw(input, "continue-as-new input")}

    # ─── Composition ────────────────────────────────────────────────────────

    def all(self, tasks: list[Any]) -> dict[str, Any]:
        """Wait for every task; yields ``[{"ok": value} | {"err": message}, ...]``."""
        return {"type": "join", "tasks": list(tasks)}

    def all_typed(self, tasks: list[Any]) -> dict[str, Any]:
        """Like ``all`` but unwraps ``ok`` values: ``[value, ...]``."""
        return {"type": "join", "tasks": list(tasks), "_typed_all": True}

    def race(self, *tasks: Any) -> dict[str, Any]:
        """First task to finish wins: ``{"index": i, "value": v}``; a failed winner raises.
        Losers are cancelled. Accepts two or more tasks."""
        return {"type": "select", "tasks": list(tasks)}

    def race_typed(self, *tasks: Any) -> dict[str, Any]:
        return {"type": "select", "tasks": list(tasks), "_typed_race": True}

    # ─── Custom status (no yield) ───────────────────────────────────────────

    def set_custom_status(self, status: Any) -> None:
        self._replay.set_custom_status(str(status))

    def reset_custom_status(self) -> None:
        self._replay.set_custom_status(None)

    def get_custom_status(self) -> str | None:
        return self._replay.get_custom_status()

    # ─── KV store: durable per-instance state (no yield) ────────────────────

    def set_kv_value(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` for this instance. Strings are stored as given,
        other values as JSON. Survives continue-as-new; readable by clients."""
        self._replay.set_kv(key, kv_text(value))

    def get_kv_value(self, key: str) -> str | None:
        return self._replay.get_kv().get(key)

    def get_kv_all_values(self) -> dict[str, str]:
        return self._replay.get_kv()

    def get_kv_all_keys(self) -> list[str]:
        return sorted(self._replay.get_kv())

    def get_kv_length(self) -> int:
        return len(self._replay.get_kv())

    def clear_kv_value(self, key: str) -> None:
        self._replay.clear_kv(key)

    def clear_all_kv_values(self) -> None:
        self._replay.clear_all_kv()

    def prune_kv_values_updated_before(self, cutoff_ms: int) -> int:
        """Clear keys last set before ``cutoff_ms``; returns how many were cleared."""
        return self._replay.prune_kv(int(cutoff_ms))

    def get_kv_value_from_instance(self, instance_id: str, key: str) -> ScheduledTask:
        """Read another instance's KV value (yield it: ``str | None``)."""
        return ScheduledTask(type="kvValueFromInstance", instanceId=instance_id, key=key)

    # ─── Tracing (suppressed while replaying) ───────────────────────────────

    def trace_info(self, message: Any) -> None:
        self._replay.trace("info", str(message))

    def trace_warn(self, message: Any) -> None:
        self._replay.trace("warning", str(message))

    def trace_error(self, message: Any) -> None:
        self._replay.trace("error", str(message))

    def trace_debug(self, message: Any) -> None:
        self._replay.trace("debug", str(message))
