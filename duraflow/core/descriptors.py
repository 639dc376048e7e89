"""Turn yielded descriptors into task nodes, rejecting malformed ones with a clear message.

Errors raised here are thrown back into the orchestration at its ``yield``, so the user sees
them at the call site (and may catch them) instead of as a crashed dispatcher.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from duraflow.core.limits import MAX_TAG_NAME_BYTES, check_instance_id, check_name
from duraflow.core.retry import RetryPolicy
from duraflow.core.tasks import (
    SYSCALL_GET_KV,
    SYSCALL_NEW_GUID,
    SYSCALL_PREFIX,
    SYSCALL_UTC_NOW,
    ActivityLeaf,
    DequeueLeaf,
    DetachedStartLeaf,
    ExternalWaitLeaf,
    JoinNode,
    Node,
    RetryNode,
    SelectNode,
    SubOrchestrationLeaf,
    SyscallLeaf,
    TimerLeaf,
)


@dataclass(frozen=True, slots=True)
class ContinueAsNewRequest:
    input: str
    version: str | None


def build(descriptor: Any, top_level: bool = True) -> Node | ContinueAsNewRequest:
    if not isinstance(descriptor, dict) or "type" not in descriptor:
        raise TypeError(
            f"an orchestration must yield a task from ctx (e.g. ctx.schedule_activity(...)), "
            f"not {type(descriptor).__name__}: {descriptor!r:.80}"
        )
    kind = descriptor["type"]
    builder = _BUILDERS.get(kind)
    if builder is not None:
        node: Node = builder(descriptor)
        return node
    if kind in ("join", "select"):
        return _composite(descriptor, kind)
    if kind in ("continueAsNew", "continueAsNewVersioned"):
        if not top_level:
            raise TypeError("continue_as_new cannot be combined inside all() or race()")
        version = descriptor.get("version")
        return ContinueAsNewRequest(_input(descriptor), _version(version))
    raise TypeError(f"unknown task type {kind!r}")


def _composite(descriptor: dict[str, Any], kind: str) -> Node:
    tasks = descriptor.get("tasks")
    if not isinstance(tasks, list):
        raise TypeError(f"{'all' if kind == 'join' else 'race'}() takes a list of tasks")
    children: list[Node] = []
    for task in tasks:
        child = build(task, top_level=False)
        assert isinstance(child, Node)
        children.append(child)
    if kind == "join":
        return JoinNode(children, unwrap=bool(descriptor.get("_typed_all")))
    if len(children) < 2:
        raise ValueError(f"race() needs at least 2 tasks, got {len(children)}")
    return SelectNode(children)


def _input(descriptor: dict[str, Any]) -> str:
    value = descriptor.get("input", "null")
    if not isinstance(value, str):
        raise TypeError(f"task input must be a JSON string, got {type(value).__name__}")
    return value


def _version(value: Any) -> str | None:
    if value is None:
        return None
    return check_name("orchestration version", value)


def _activity_name(descriptor: dict[str, Any]) -> str:
    name = check_name("activity name", descriptor.get("name"))
    if name.startswith(SYSCALL_PREFIX):
        raise ValueError(f"activity names starting with {SYSCALL_PREFIX!r} are reserved")
    return name


def _tag(descriptor: dict[str, Any], name: str) -> str | None:
    tag = descriptor.get("tag")
    if tag is None:
        return None
    if not isinstance(tag, str) or not tag:
        raise ValueError(f"Activity '{name}' tag must be a non-empty string")
    size = len(tag.encode())
    if size > MAX_TAG_NAME_BYTES:
        raise ValueError(
            f"Activity '{name}' tag size ({size} bytes) exceeds limit ({MAX_TAG_NAME_BYTES} bytes)"
        )
    return tag


def _session(descriptor: dict[str, Any]) -> str | None:
    session = descriptor.get("sessionId")
    return None if session is None else check_name("session id", session)


def _activity(descriptor: dict[str, Any]) -> Node:
    name = _activity_name(descriptor)
    return ActivityLeaf(name, _input(descriptor), _session(descriptor), _tag(descriptor, name))


def _retry(descriptor: dict[str, Any]) -> Node:
    name = _activity_name(descriptor)
    policy = RetryPolicy.from_descriptor(descriptor.get("retry"))
    return RetryNode(
        name, _input(descriptor), policy, _session(descriptor), _tag(descriptor, name)
    )


def _timer(descriptor: dict[str, Any]) -> Node:
    delay = descriptor.get("delayMs")
    if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
        raise ValueError(f"timer delay must be a non-negative number of ms, got {delay!r}")
    return TimerLeaf(int(delay))


def _sub(descriptor: dict[str, Any]) -> Node:
    name = check_name("orchestration name", descriptor.get("name"))
    instance = descriptor.get("instanceId")
    if instance is not None:
        check_instance_id(instance)
    return SubOrchestrationLeaf(
        name, instance, _version(descriptor.get("version")), _input(descriptor)
    )


def _detached(descriptor: dict[str, Any]) -> Node:
    name = check_name("orchestration name", descriptor.get("name"))
    instance = check_instance_id(descriptor.get("instanceId"))
    version = _version(descriptor.get("version"))
    return DetachedStartLeaf(name, instance, version, _input(descriptor))


def _kv_from_instance(descriptor: dict[str, Any]) -> Node:
    """A built-in activity: the worker reads the other instance's KV from the store."""
    instance = check_instance_id(descriptor.get("instanceId"))
    key = check_name("KV key", descriptor.get("key"))
    payload = json.dumps({"instance_id": instance, "key": key})
    return ActivityLeaf(SYSCALL_GET_KV, payload, None, None)


_BUILDERS: dict[str, Callable[[dict[str, Any]], Node]] = {
    "activity": _activity,
    "activityWithSession": _activity,
    "activityWithRetry": _retry,
    "activityWithRetryOnSession": _retry,
    "timer": _timer,
    "waitEvent": lambda d: ExternalWaitLeaf(check_name("event name", d.get("name"))),
    "dequeueEvent": lambda d: DequeueLeaf(check_name("queue name", d.get("queueName"))),
    "subOrchestration": _sub,
    "subOrchestrationWithId": _sub,
    "subOrchestrationVersioned": _sub,
    "subOrchestrationVersionedWithId": _sub,
    "orchestration": _detached,
    "orchestrationVersioned": _detached,
    "kvValueFromInstance": _kv_from_instance,
    "newGuid": lambda d: SyscallLeaf(SYSCALL_NEW_GUID),
    "utcNow": lambda d: SyscallLeaf(SYSCALL_UTC_NOW),
}
