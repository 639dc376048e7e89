"""The task tree an orchestration waits on: leaves bound to history, composites over them.

A yielded descriptor becomes a node. Leaves (activity, timer, event wait, queue dequeue,
sub-orchestration, detached start, deterministic value) bind to exactly one scheduling event
in history and resolve when its completion is applied. Composites (``all``, ``race``, retry)
combine children and may nest freely. Nodes are driven only by the replay that owns them,
in history order, so the same history always resolves the same nodes in the same order; they
reach it only through ``Scheduler`` (scheduler.py), never through its collections.
"""

from __future__ import annotations

from typing import Any

from duraflow.core import events as ev
from duraflow.core.errors import ErrorDetails, application
from duraflow.core.retry import RetryPolicy
from duraflow.core.scheduler import Scheduler

SYSCALL_PREFIX = "__duroxide_syscall:"
SYSCALL_NEW_GUID = SYSCALL_PREFIX + "new_guid"
SYSCALL_UTC_NOW = SYSCALL_PREFIX + "utc_now_ms"
SYSCALL_GET_KV = SYSCALL_PREFIX + "get_kv_value"
DROPPED_FUTURE = "dropped_future"
ACTIVITY_TIMEOUT_MESSAGE = "timeout: activity timed out"


class Node:
    """A task the orchestration can wait on. ``parent`` is set for children of composites."""

    __slots__ = ("details", "done", "error", "failed", "parent", "value")

    def __init__(self) -> None:
        self.parent: Node | None = None
        self.done = False
        self.failed = False
        self.value: Any = None
        self.error = ""
        self.details: ErrorDetails | None = None

    def start(self, sched: Scheduler) -> None:
        raise NotImplementedError

    def cancel(self, sched: Scheduler) -> None:
        """Drop an unresolved task (a race loser): release what it holds, leave a breadcrumb."""

    def child_settled(self, sched: Scheduler, child: Node) -> None:
        raise NotImplementedError

    def succeed(self, sched: Scheduler, value: Any) -> None:
        if not self.done:
            self.done, self.value = True, value
            self._settled(sched)

    def fail(self, sched: Scheduler, details: ErrorDetails) -> None:
        if not self.done:
            self.done, self.failed = True, True
            self.details, self.error = details, details.display_message()
            self._settled(sched)

    def _settled(self, sched: Scheduler) -> None:
        if self.parent is not None:
            self.parent.child_settled(sched, self)


class Leaf(Node):
    __slots__ = ("event_id",)

    def __init__(self) -> None:
        super().__init__()
        self.event_id = 0


class ActivityLeaf(Leaf):
    __slots__ = ("input", "name", "retry", "session_id", "tag")

    def __init__(
        self, name: str, input: str, session_id: str | None, tag: str | None, retry: bool = False
    ) -> None:
        super().__init__()
        self.name, self.input, self.session_id, self.tag = name, input, session_id, tag
        self.retry = retry  # scheduled by a retry policy after a failed attempt

    def start(self, sched: Scheduler) -> None:
        data = {"name": self.name, "input": self.input}
        if self.session_id is not None:
            data["session_id"] = self.session_id
        if self.tag is not None:
            data["tag"] = self.tag
        event, new = sched.emit(ev.ACTIVITY_SCHEDULED, data)
        self.event_id = event.event_id
        sched.await_completion(self.event_id, self)
        if new:
            sched.schedule_activity(
                self.event_id, self.name, self.input, self.session_id, self.tag, self.retry
            )

    def cancel(self, sched: Scheduler) -> None:
        if self.done or not sched.forget_completion(self.event_id):
            return
        _, new = sched.emit(
            ev.ACTIVITY_CANCEL_REQUESTED, {"reason": DROPPED_FUTURE}, source=self.event_id
        )
        if new:
            sched.cancel_activity(self.event_id)


class SyscallLeaf(Leaf):
    """``new_guid`` / ``utc_now``: recorded as an activity whose completion is written in the
    same turn, so the value is durable without a round trip through the worker queue."""

    __slots__ = ("syscall",)

    def __init__(self, syscall: str) -> None:
        super().__init__()
        self.syscall = syscall

    def start(self, sched: Scheduler) -> None:
        event, new = sched.emit(ev.ACTIVITY_SCHEDULED, {"name": self.syscall, "input": ""})
        self.event_id = event.event_id
        sched.await_completion(self.event_id, self)
        if new:
            value = sched.new_guid() if self.syscall == SYSCALL_NEW_GUID else sched.now_ms
            sched.complete_inline(self.event_id, value)


class TimerLeaf(Leaf):
    __slots__ = ("delay_ms",)

    def __init__(self, delay_ms: int) -> None:
        super().__init__()
        self.delay_ms = delay_ms

    def start(self, sched: Scheduler) -> None:
        event, new = sched.emit(ev.TIMER_CREATED, {"fire_at_ms": sched.now_ms + self.delay_ms})
        self.event_id = event.event_id
        sched.await_completion(self.event_id, self)
        if new:
            sched.schedule_timer(self.event_id, int(event.data["fire_at_ms"]))

    def cancel(self, sched: Scheduler) -> None:
        if not self.done:
            sched.forget_completion(self.event_id)


class ExternalWaitLeaf(Leaf):
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def start(self, sched: Scheduler) -> None:
        event, _ = sched.emit(ev.EXTERNAL_SUBSCRIBED, {"name": self.name})
        self.event_id = event.event_id
        sched.await_event(self.name, self)

    def cancel(self, sched: Scheduler) -> None:
        if self.done or not sched.forget_event(self.name, self):
            return
        sched.emit(
            ev.EXTERNAL_SUBSCRIBED_CANCELLED, {"reason": DROPPED_FUTURE}, source=self.event_id
        )


class DequeueLeaf(Leaf):
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def start(self, sched: Scheduler) -> None:
        event, _ = sched.emit(ev.QUEUE_SUBSCRIBED, {"name": self.name})
        self.event_id = event.event_id
        sched.await_queue(self.name, self)

    def cancel(self, sched: Scheduler) -> None:
        if self.done or not sched.forget_queue(self.name, self):
            return
        sched.emit(
            ev.QUEUE_SUBSCRIPTION_CANCELLED, {"reason": DROPPED_FUTURE}, source=self.event_id
        )


class SubOrchestrationLeaf(Leaf):
    __slots__ = ("child_id", "input", "instance_id", "name", "version")

    def __init__(self, name: str, instance_id: str | None, version: str | None, input: str) -> None:
        super().__init__()
        self.name, self.instance_id, self.version, self.input = name, instance_id, version, input
        self.child_id = ""

    def start(self, sched: Scheduler) -> None:
        child_id = self.instance_id or sched.default_child_id()
        data = {"name": self.name, "instance": child_id, "input": self.input}
        if self.version is not None:
            data["version"] = self.version
        event, new = sched.emit(ev.SUB_ORCHESTRATION_SCHEDULED, data)
        self.event_id = event.event_id
        self.child_id = str(event.data["instance"])
        sched.await_completion(self.event_id, self)
        if new:
            sched.start_child(self.event_id, self.child_id, self.name, self.input, self.version)

    def cancel(self, sched: Scheduler) -> None:
        if self.done or not sched.forget_completion(self.event_id):
            return
        _, new = sched.emit(
            ev.SUB_ORCHESTRATION_CANCEL_REQUESTED, {"reason": DROPPED_FUTURE}, source=self.event_id
        )
        if new:
            sched.cancel_child(self.child_id, "parent dropped sub-orchestration future")


class DetachedStartLeaf(Leaf):
    __slots__ = ("input", "instance_id", "name", "version")

    def __init__(self, name: str, instance_id: str, version: str | None, input: str) -> None:
        super().__init__()
        self.name, self.instance_id, self.version, self.input = name, instance_id, version, input

    def start(self, sched: Scheduler) -> None:
        data = {"name": self.name, "instance": self.instance_id, "input": self.input}
        if self.version is not None:
            data["version"] = self.version
        event, new = sched.emit(ev.ORCHESTRATION_CHAINED, data)
        self.event_id = event.event_id
        if new:
            sched.start_detached(self.instance_id, self.name, self.input, self.version)
        self.succeed(sched, None)


class Composite(Node):
    __slots__ = ("children", "starting")

    def __init__(self, children: list[Node]) -> None:
        super().__init__()
        self.children = children
        self.starting = False
        for child in children:
            child.parent = self

    def start(self, sched: Scheduler) -> None:
        # Start every child before judging any: a child that settles while starting (a
        # buffered queue message, a detached start) must not stop later ones from being
        # scheduled, or replay would depend on which child happened to settle first.
        self.starting = True
        for child in self.children:
            child.start(sched)
        self.starting = False
        self.evaluate(sched)

    def child_settled(self, sched: Scheduler, child: Node) -> None:
        if not self.starting:
            self.evaluate(sched)

    def evaluate(self, sched: Scheduler) -> None:
        raise NotImplementedError

    def cancel(self, sched: Scheduler) -> None:
        for child in self.children:
            child.cancel(sched)


class JoinNode(Composite):
    __slots__ = ("unwrap",)

    def __init__(self, children: list[Node], unwrap: bool) -> None:
        super().__init__(children)
        self.unwrap = unwrap

    def evaluate(self, sched: Scheduler) -> None:
        if self.done or not all(child.done for child in self.children):
            return
        results: list[Any] = []
        for child in self.children:
            if child.failed:
                results.append({"err": child.error})
            elif self.unwrap:
                results.append(child.value)
            else:
                results.append({"ok": child.value})
        self.succeed(sched, results)


class SelectNode(Composite):
    __slots__ = ()

    def evaluate(self, sched: Scheduler) -> None:
        if self.done:
            return
        for index, child in enumerate(self.children):
            if child.done:
                for loser in self.children:
                    if loser is not child:
                        loser.cancel(sched)
                if child.failed and child.details is not None:
                    self.fail(sched, child.details)
                else:
                    self.succeed(sched, {"index": index, "value": child.value})
                return


class RetryNode(Node):
    """Retries an activity durably: each attempt a new activity, each backoff a timer."""

    __slots__ = ("attempt", "current", "deadline", "input", "name", "policy", "session_id", "tag")

    def __init__(
        self, name: str, input: str, policy: RetryPolicy, session_id: str | None, tag: str | None
    ) -> None:
        super().__init__()
        self.name, self.input, self.policy = name, input, policy
        self.session_id, self.tag = session_id, tag
        self.attempt = 0
        self.current: Node | None = None
        self.deadline: TimerLeaf | None = None

    def start(self, sched: Scheduler) -> None:
        if self.policy.total_timeout_ms is not None:
            self.deadline = TimerLeaf(self.policy.total_timeout_ms)
            self.deadline.parent = self
            self.deadline.start(sched)
        self._next_attempt(sched)

    def _next_attempt(self, sched: Scheduler) -> None:
        self.attempt += 1
        attempt: Node = ActivityLeaf(self.name, self.input, self.session_id, self.tag,
                                     retry=self.attempt > 1)
        if self.policy.timeout_ms is not None:
            attempt = SelectNode([attempt, TimerLeaf(self.policy.timeout_ms)])
        self._run(sched, attempt)

    def _run(self, sched: Scheduler, node: Node) -> None:
        self.current = node
        node.parent = self
        node.start(sched)

    def child_settled(self, sched: Scheduler, child: Node) -> None:
        if self.done:
            return
        if child is self.deadline:
            if self.current is not None:
                self.current.cancel(sched)
            self._finish_timeout(sched)
            return
        if child is not self.current:
            return
        if isinstance(child, TimerLeaf):  # backoff elapsed
            self._next_attempt(sched)
            return
        if isinstance(child, SelectNode) and not child.failed and child.value["index"] == 1:
            self._finish_timeout(sched)
            return
        if not child.failed:
            value = child.value["value"] if isinstance(child, SelectNode) else child.value
            self._cancel_deadline(sched)
            self.succeed(sched, value)
            return
        if self.attempt >= self.policy.max_attempts or child.details is None:
            self._cancel_deadline(sched)
            self.fail(sched, child.details or application("ActivityFailed", child.error))
            return
        delay = self.policy.delay_ms(self.attempt)
        if delay > 0:
            self._run(sched, TimerLeaf(delay))
        else:
            self._next_attempt(sched)

    def _cancel_deadline(self, sched: Scheduler) -> None:
        if self.deadline is not None:
            self.deadline.cancel(sched)

    def _finish_timeout(self, sched: Scheduler) -> None:
        self._cancel_deadline(sched)
        self.fail(sched, application("ActivityFailed", ACTIVITY_TIMEOUT_MESSAGE))

    def cancel(self, sched: Scheduler) -> None:
        if self.current is not None:
            self.current.cancel(sched)
        self._cancel_deadline(sched)
