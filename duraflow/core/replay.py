"""The deterministic replay engine: one live generator per execution, driven by history.

A ``Replay`` owns one execution of one instance. ``load(history)`` re-runs the orchestration
against recorded history (every action the code emits must match the next recorded
scheduling event: determinism.py); ``run_turn(messages, now_ms)`` applies new messages, appends
their events and collects what the turn must write. The runtime keeps a ``Replay`` alive
between turns, so a turn normally costs only its new messages, not a replay of the history.
The task nodes reach it through ``Scheduler`` (scheduler.py), the orchestration's context
through ``ReplayHandle`` (context.py); ``Replay`` implements both.

Pure: no I/O, no clock, no randomness except what the caller injects (``now_ms`` and the
GUID factory), so the same history and code always give the same actions.
"""

from __future__ import annotations

import json
import traceback
import types
from collections import deque
from collections.abc import Callable
from typing import Any

from duraflow.core import errors as er
from duraflow.core import events as ev
from duraflow.core import workitems as wi
from duraflow.core.context import OrchestrationContext
from duraflow.core.descriptors import ContinueAsNewRequest, build
from duraflow.core.determinism import MATCH_FIELDS, left_over, match, not_emitted, recorded_actions
from duraflow.core.effects import Effects
from duraflow.core.errors import ErrorDetails, NondeterminismError, TaskFailedError
from duraflow.core.events import HistoryEvent
from duraflow.core.limits import (
    check_payload_size,
    decode_payload,
)
from duraflow.core.models import COMPLETED, CONTINUED_AS_NEW, FAILED, RUNNING
from duraflow.core.output import Outgoing, TurnOutput
from duraflow.core.scheduler import Waiter
from duraflow.core.tasks import ActivityLeaf, Node, SubOrchestrationLeaf

OrchestrationFn = Callable[[OrchestrationContext, Any], Any]
MAX_CARRY_FORWARD_EVENTS = 100

_COMPLETION_KINDS = frozenset(
    {
        ev.ACTIVITY_COMPLETED,
        ev.ACTIVITY_FAILED,
        ev.TIMER_FIRED,
        ev.SUB_ORCHESTRATION_COMPLETED,
        ev.SUB_ORCHESTRATION_FAILED,
    }
)
_TERMINAL_STATUS = {
    ev.ORCHESTRATION_COMPLETED: COMPLETED,
    ev.ORCHESTRATION_FAILED: FAILED,
    ev.ORCHESTRATION_CONTINUED_AS_NEW: CONTINUED_AS_NEW,
}


class Replay(Effects):
    """Replay state of one execution. Not thread-safe; one turn at a time."""

    def __init__(
        self,
        instance_id: str,
        execution_id: int,
        lookup: Callable[[str, str], OrchestrationFn | None],
        guid_factory: Callable[[], str],
    ) -> None:
        self.instance_id = instance_id
        self.execution_id = execution_id
        self._lookup = lookup
        self._guid_factory = guid_factory
        self.history: list[HistoryEvent] = []
        self.next_event_id = 1
        self.now_ms = 0
        self._open_tasks: dict[int, Waiter] = {}  # scheduling event id -> its task
        self._event_waiters: dict[str, list[Waiter]] = {}
        self._raised_keys: set[str] = set()  # idempotency keys of this execution's events
        self._queue_waiters: dict[str, list[Waiter]] = {}
        self._queue_buffer: dict[str, deque[str]] = {}
        self.status = RUNNING
        self.name = ""
        self.version = ""
        self.parent: tuple[str, int, int] | None = None  # (instance, execution_id, event_id)
        self.custom_status: str | None = None
        self.kv: dict[str, tuple[str, int]] = {}  # key -> (value, last_updated_at_ms)
        self._pending: deque[HistoryEvent] = deque()
        self._turn_base = 0  # history length before the current turn's events
        self._completed_sources: set[int] = set()
        self._walking = False
        self._gen: types.GeneratorType[Any, Any, Any] | None = None
        self._awaiting: Node | None = None
        self._cancel_reason: str | None = None
        self._out = TurnOutput()

    # ─── Public driver ──────────────────────────────────────────────────────

    @property
    def is_replaying(self) -> bool:
        return self._walking

    @property
    def finished(self) -> bool:
        return self.status != RUNNING

    @property
    def history_len(self) -> int:
        return len(self.history)

    def load(self, history: list[HistoryEvent]) -> TurnOutput:
        """Rebuild state from committed history. Returns anything the code emitted beyond
        it (normally nothing; a nondeterminism failure otherwise) for the next commit."""
        self._out = TurnOutput()
        if not history:
            return self._out
        if history[0].kind != ev.ORCHESTRATION_STARTED:
            self._fail_nondeterministic("corrupted history: first event must be "
                                        "OrchestrationStarted")
            return self._out
        self.history = list(history)
        self._turn_base = len(history)
        self.next_event_id = history[-1].event_id + 1
        terminal = next((e for e in history if e.kind in _TERMINAL_STATUS), None)
        if terminal is not None:  # a finished execution is never re-run
            self.status = _TERMINAL_STATUS[terminal.kind]
            return self._out
        self._pending = recorded_actions(history)
        self._walking = True
        try:
            for event in history:
                if self.finished:
                    break
                self.now_ms = event.timestamp_ms
                self._apply(event, recorded=True)
                self._settle()
        except NondeterminismError as exc:
            self._walking = False
            self._fail_nondeterministic(str(exc))
        finally:
            self._walking = False
        return self._out

    def start(
        self,
        name: str,
        version: str,
        input: str,
        now_ms: int,
        parent: tuple[str, int, int] | None = None,
        carry_forward: list[list[str]] | None = None,
        initial_custom_status: str | None = None,
        initial_kv: dict[str, list[Any]] | None = None,
    ) -> TurnOutput:
        """Begin a new execution: record ``OrchestrationStarted`` and run to the first wait."""
        self._out = TurnOutput(status=RUNNING)
        self._turn_base = len(self.history)
        self.now_ms = now_ms
        data: dict[str, Any] = {"name": name, "version": version, "input": input}
        if parent is not None:
            data.update(parent_instance=parent[0], parent_execution_id=parent[1],
                        parent_id=parent[2])
        if carry_forward:
            data["carry_forward_events"] = carry_forward
        if initial_custom_status is not None:
            data["initial_custom_status"] = initial_custom_status
        if initial_kv:
            data["initial_kv"] = initial_kv
        def begin() -> None:
            self._apply(self._append(ev.ORCHESTRATION_STARTED, data), recorded=False)
            self._settle()

        self._guard(begin)
        return self._out

    def run_turn(self, messages: list[wi.WorkItem], now_ms: int) -> TurnOutput:
        """Apply new messages in order and collect the turn's writes."""
        self._out = TurnOutput()
        self._turn_base = len(self.history)
        self.now_ms = now_ms
        for index, message in enumerate(messages):
            if self.status == CONTINUED_AS_NEW:
                # Messages behind a continue-as-new belong to the next execution. They ride
                # inside the ContinueAsNew item, so the next execution sees them before
                # anything that arrived while this turn ran (separate queue rows would sort
                # after those and reorder an event queue).
                self._forward(messages[index:])
                break
            if self.finished:
                self._out.warnings.append(
                    f"dropped {message.get('type')} for finished execution {self.execution_id}"
                )
                continue
            self._guard(lambda m=message: self._deliver(m))  # type: ignore[misc]
        if self._cancel_reason is not None and not self.finished:
            self._guard(self._finish_cancelled)
        return self._out

    def _forward(self, later: list[wi.WorkItem]) -> None:
        for out in self._out.messages:
            if out.instance_id == self.instance_id and out.item.get("type") == wi.CONTINUE_AS_NEW:
                out.item.setdefault("forwarded", []).extend(later)
                return
        for message in later:  # no ContinueAsNew item in this turn's output: keep the order
            self._out.messages.append(Outgoing(self.instance_id, message))

    def fail_infrastructure(self, details: ErrorDetails, now_ms: int) -> TurnOutput:
        """Fail the execution from outside (poison, size limits); returns the writes."""
        self._out = TurnOutput()
        self.now_ms = now_ms
        if not self.finished:
            self._finish_failed(details)
        return self._out

    # ─── Scheduler: waiting (the rest of it is in Effects) ───────────────────

    def await_completion(self, event_id: int, waiter: Waiter) -> None:
        self._open_tasks[event_id] = waiter

    def forget_completion(self, event_id: int) -> bool:
        return self._open_tasks.pop(event_id, None) is not None

    def await_event(self, name: str, waiter: Waiter) -> None:
        self._event_waiters.setdefault(name, []).append(waiter)

    def forget_event(self, name: str, waiter: Waiter) -> bool:
        return _withdraw(self._event_waiters.get(name), waiter)

    def await_queue(self, name: str, waiter: Waiter) -> None:
        buffered = self._queue_buffer.get(name)
        if buffered:
            waiter.succeed(self, decode_payload(buffered.popleft()))
        else:
            self._queue_waiters.setdefault(name, []).append(waiter)

    def forget_queue(self, name: str, waiter: Waiter) -> bool:
        return _withdraw(self._queue_waiters.get(name), waiter)

    # ─── Recording actions (Scheduler, ReplayHandle: they need the event log) ─

    def trace(self, level: str, message: str) -> None:
        if not self._walking:
            self._out.traces.append((level, message))

    def emit(
        self, kind: str, data: dict[str, Any], source: int | None = None
    ) -> tuple[HistoryEvent, bool]:
        """The code emitted an action: match it against recorded history, or record it."""
        if self._pending:
            return match(self._pending.popleft(), kind, data, source), False
        return self._append(kind, data, source), True

    def complete_inline(self, event_id: int, value: Any) -> None:
        event = self._append(ev.ACTIVITY_COMPLETED, {"result": json.dumps(value)}, event_id)
        self._apply(event, recorded=False)

    # ─── Applying events ────────────────────────────────────────────────────

    def _append(self, kind: str, data: dict[str, Any], source: int | None = None) -> HistoryEvent:
        event = HistoryEvent(self.next_event_id, kind, data, source, self.now_ms)
        self.next_event_id += 1
        self.history.append(event)
        self._out.new_events.append(event)
        return event

    def _apply(self, event: HistoryEvent, recorded: bool) -> None:
        kind = event.kind
        if kind in MATCH_FIELDS:
            if self._pending and self._pending[0].event_id <= event.event_id:
                raise not_emitted(event)
        elif kind in _COMPLETION_KINDS:
            self._apply_completion(event)
        elif kind == ev.ORCHESTRATION_STARTED:
            self._begin(event)
        elif kind == ev.EXTERNAL_EVENT:
            key = event.data.get("key")
            if key is not None:
                self._raised_keys.add(str(key))
            waiters = self._event_waiters.get(str(event.data.get("name")))
            if waiters:
                waiters.pop(0).succeed(self, decode_payload(event.data.get("data")))
        elif kind == ev.QUEUE_EVENT_DELIVERED:
            self._queue_arrival(str(event.data.get("name")), event.data.get("data"))
        elif kind == ev.ORCHESTRATION_CANCEL_REQUESTED:
            self._cancel_reason = str(event.data.get("reason", ""))
        elif kind in _TERMINAL_STATUS:
            self.status = _TERMINAL_STATUS[kind]
            self._close_generator()

    def _apply_completion(self, event: HistoryEvent) -> None:
        source = event.source_event_id
        leaf = self._open_tasks.pop(source, None) if source is not None else None
        if source is not None:
            self._completed_sources.add(source)
        if leaf is None:
            return  # completion of a dropped (cancelled) task: recorded, ignored
        if event.kind in (ev.ACTIVITY_FAILED, ev.SUB_ORCHESTRATION_FAILED):
            details = ErrorDetails.from_dict(event.data.get("details", {}))
            if not details.is_application:
                self._finish_failed(details)  # infrastructure/poison: not catchable
                return
            leaf.fail(self, details)
        elif event.kind == ev.TIMER_FIRED:
            leaf.succeed(self, None)
        else:
            leaf.succeed(self, decode_payload(event.data.get("result")))

    def _queue_arrival(self, name: str, data: Any) -> None:
        waiters = self._queue_waiters.get(name)
        if waiters:
            waiters.pop(0).succeed(self, decode_payload(data))
        else:
            self._queue_buffer.setdefault(name, deque()).append(str(data))

    def _deliver(self, message: wi.WorkItem) -> None:
        """Turn one new message into history (or drop it, with a warning)."""
        kind = message.get("type")
        if kind in (wi.ACTIVITY_COMPLETED, wi.ACTIVITY_FAILED, wi.TIMER_FIRED):
            if message.get("execution_id") != self.execution_id:
                self._warn(f"dropped {kind} for execution {message.get('execution_id')}")
                return
            self._deliver_completion(kind, int(message["id"]), message)
        elif kind in (wi.SUB_ORCH_COMPLETED, wi.SUB_ORCH_FAILED):
            if message.get("parent_execution_id") != self.execution_id:
                self._warn(f"dropped {kind} for execution {message.get('parent_execution_id')}")
                return
            self._deliver_completion(kind, int(message["parent_id"]), message)
        elif kind == wi.EXTERNAL_RAISED:
            data = {"name": message["name"], "data": message["data"]}
            key = message.get("key")
            if key is not None:
                # A client that cannot know whether its earlier raise arrived (it crashed in
                # between) raises again with the same key: record the event only once.
                if str(key) in self._raised_keys:
                    self._warn(f"dropped duplicate event {message['name']!r} (key {key!r})")
                    return
                data["key"] = key
            self._apply(self._append(ev.EXTERNAL_EVENT, data), recorded=False)
        elif kind == wi.QUEUE_MESSAGE:
            data = {"name": message["name"], "data": message["data"]}
            self._apply(self._append(ev.QUEUE_EVENT_DELIVERED, data), recorded=False)
        elif kind == wi.CANCEL_INSTANCE:
            if self._cancel_reason is None:
                reason = str(message.get("reason") or "")
                event = self._append(ev.ORCHESTRATION_CANCEL_REQUESTED, {"reason": reason})
                self._apply(event, recorded=False)
        elif kind in (wi.START_ORCHESTRATION, wi.CONTINUE_AS_NEW):
            self._warn(f"ignored duplicate {kind} for running instance")
        else:
            self._warn(f"ignored unknown message type {kind!r}")
        self._settle()

    def _deliver_completion(self, kind: str, source: int, message: wi.WorkItem) -> None:
        leaf = self._open_tasks.get(source)
        if source in self._completed_sources:
            self._warn(f"dropped duplicate {kind} for event {source}")
            return
        if leaf is None:
            if not any(e.event_id == source for e in self.history):
                self._warn(f"dropped {kind} for unknown event {source}")
            return  # a cancelled task's late completion: nothing to record
        expected = {
            wi.ACTIVITY_COMPLETED: ActivityLeaf, wi.ACTIVITY_FAILED: ActivityLeaf,
            wi.SUB_ORCH_COMPLETED: SubOrchestrationLeaf, wi.SUB_ORCH_FAILED: SubOrchestrationLeaf,
        }.get(kind)
        if expected is not None and not isinstance(leaf, expected):
            self._warn(f"dropped {kind} for event {source}: it is a {type(leaf).__name__}")
            return
        if kind == wi.ACTIVITY_COMPLETED:
            event = self._append(ev.ACTIVITY_COMPLETED, {"result": message["result"]}, source)
        elif kind == wi.ACTIVITY_FAILED:
            event = self._append(ev.ACTIVITY_FAILED, {"details": message["details"]}, source)
        elif kind == wi.TIMER_FIRED:
            event = self._append(ev.TIMER_FIRED, {"fire_at_ms": message["fire_at_ms"]}, source)
        elif kind == wi.SUB_ORCH_COMPLETED:
            event = self._append(
                ev.SUB_ORCHESTRATION_COMPLETED, {"result": message["result"]}, source
            )
        else:
            event = self._append(
                ev.SUB_ORCHESTRATION_FAILED, {"details": message["details"]}, source
            )
        self._apply(event, recorded=False)

    # ─── Driving the generator ──────────────────────────────────────────────

    def _begin(self, started: HistoryEvent) -> None:
        data = started.data
        self.name, self.version = str(data["name"]), str(data.get("version") or "")
        if data.get("parent_instance"):
            self.parent = (
                str(data["parent_instance"]),
                int(data.get("parent_execution_id") or 1),
                int(data["parent_id"]),
            )
        self.custom_status = data.get("initial_custom_status")
        for key, (value, updated) in (data.get("initial_kv") or {}).items():
            self.kv[str(key)] = (str(value), int(updated))
        for name, payload in data.get("carry_forward_events") or []:
            self._queue_buffer.setdefault(name, deque()).append(payload)
        fn = self._lookup(self.name, self.version)
        if fn is None:  # the runtime checks registration before a turn; guard anyway
            self._finish_failed(er.application(
                er.ORCHESTRATION_FAILED,
                f"Orchestration '{self.name}' (version {self.version}) is not registered",
            ))
            return
        ctx = OrchestrationContext(
            {"instanceId": self.instance_id, "executionId": self.execution_id,
             "orchestrationName": self.name, "orchestrationVersion": self.version},
            self,
        )
        try:
            result = fn(ctx, decode_payload(data.get("input")))
        except Exception:
            self._finish_failed(er.application(er.ORCHESTRATION_FAILED, traceback.format_exc()))
            return
        if isinstance(result, types.GeneratorType):
            self._gen = result
            self._step(None)
        elif isinstance(result, types.CoroutineType):
            result.close()
            self._finish_failed(er.application(
                er.ORCHESTRATION_FAILED,
                f"orchestration '{self.name}' is an async function; orchestrations must be "
                "generator functions (def + yield)",
            ))
        else:
            self._complete(result)

    def _settle(self) -> None:
        """Resume the generator for as long as what it waits on is already resolved."""
        while not self.finished and self._awaiting is not None and self._awaiting.done:
            node, self._awaiting = self._awaiting, None
            self._step(node)

    def _step(self, resolved: Node | None) -> None:
        assert self._gen is not None
        send: Any = None if resolved is None or resolved.failed else resolved.value
        throw: BaseException | None = None
        if resolved is not None and resolved.failed:
            throw = TaskFailedError(resolved.error, resolved.details)
        while True:
            try:
                yielded = self._gen.throw(throw) if throw is not None else self._gen.send(send)
            except StopIteration as stop:
                self._complete(stop.value)
                return
            except NondeterminismError:
                raise
            except Exception:
                self._finish_failed(er.application(er.ORCHESTRATION_FAILED,
                                                   traceback.format_exc()))
                return
            try:
                node = build(yielded)
            except (TypeError, ValueError) as exc:
                send, throw = None, exc
                continue
            if isinstance(node, ContinueAsNewRequest):
                self._continue_as_new(node)
                return
            self._awaiting = node
            node.start(self)
            return

    # ─── Finishing ──────────────────────────────────────────────────────────

    def _complete(self, value: Any) -> None:
        try:
            output = json.dumps(value)
            check_payload_size("orchestration output", output)
        except (TypeError, ValueError) as exc:
            self._finish_failed(er.application(
                er.ORCHESTRATION_FAILED, f"TypeError: orchestration output is not "
                f"JSON-serialisable: {exc}" if isinstance(exc, TypeError) else str(exc),
            ))
            return
        self._check_complete_allowed()
        self._terminate(ev.ORCHESTRATION_COMPLETED, {"output": output}, COMPLETED, output)
        if self.parent is not None:
            item = wi.sub_orch_completed(self.parent[0], self.parent[1], self.parent[2], output)
            self._out.messages.append(Outgoing(self.parent[0], item))

    def _check_complete_allowed(self) -> None:
        if self._walking and self._pending:
            raise left_over(self._pending[0])

    def _finish_failed(self, details: ErrorDetails) -> None:
        self._terminate(ev.ORCHESTRATION_FAILED, {"details": details.to_dict()}, FAILED,
                        details.display_message())
        if self.parent is not None:
            item = wi.sub_orch_failed(self.parent[0], self.parent[1], self.parent[2],
                                      details.to_dict())
            self._out.messages.append(Outgoing(self.parent[0], item))

    def _finish_cancelled(self) -> None:
        for leaf in list(self._open_tasks.values()):
            if isinstance(leaf, SubOrchestrationLeaf):
                self.cancel_child(leaf.child_id, "parent canceled")
        self._finish_failed(er.cancelled(self._cancel_reason or ""))

    def _fail_nondeterministic(self, message: str) -> None:
        # Nothing the diverged code emitted may be committed: keep only the failure.
        self._out = TurnOutput()
        del self.history[self._turn_base:]
        self.next_event_id = (self.history[-1].event_id + 1) if self.history else 1
        self._pending.clear()
        self._walking = False
        self._finish_failed(er.nondeterminism(message))

    def _continue_as_new(self, request: ContinueAsNewRequest) -> None:
        self._check_complete_allowed()
        carry: list[list[str]] = []
        for name, buffered in self._queue_buffer.items():
            carry.extend([name, data] for data in buffered)
        if len(carry) > MAX_CARRY_FORWARD_EVENTS:
            self._warn(f"continue-as-new carries {MAX_CARRY_FORWARD_EVENTS} of {len(carry)} "
                       "queued messages; the newest were dropped")
            carry = carry[:MAX_CARRY_FORWARD_EVENTS]
        self._terminate(ev.ORCHESTRATION_CONTINUED_AS_NEW, {"input": request.input},
                        CONTINUED_AS_NEW, request.input)
        parent = self.parent or (None, None, None)
        item = wi.continue_as_new(
            self.instance_id, self.name, request.input, request.version, carry,
            self.custom_status, parent[0], parent[1], parent[2],
            {key: [value, updated] for key, (value, updated) in self.kv.items()},
        )
        self._out.messages.append(Outgoing(self.instance_id, item))

    def _terminate(self, kind: str, data: dict[str, Any], status: str, output: str) -> None:
        self._append(kind, data)
        self.status = status
        self._out.status = status
        self._out.output = output
        for event_id, leaf in self._open_tasks.items():
            if isinstance(leaf, ActivityLeaf):
                self._out.cancelled_activity_ids.append(event_id)
        self._open_tasks.clear()
        self._awaiting = None
        self._close_generator()

    def _close_generator(self) -> None:
        gen, self._gen = self._gen, None
        if gen is not None:
            try:
                gen.close()
            except Exception as exc:
                self._warn(f"orchestration raised while being closed: {exc!r}")

    def _guard(self, action: Callable[[], None]) -> None:
        try:
            action()
        except NondeterminismError as exc:
            self._fail_nondeterministic(str(exc))

    def _warn(self, message: str) -> None:
        self._out.warnings.append(message)


def _withdraw(waiters: list[Waiter] | None, waiter: Waiter) -> bool:
    if not waiters or waiter not in waiters:
        return False
    waiters.remove(waiter)
    return True

