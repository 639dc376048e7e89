"""The replay checker: does this code reproduce every decision a recorded execution made?

A runtime replays history to rebuild a live generator, and fails the instance when the code
emits something other than what history recorded. Before new code takes over running work
(a rollout, a replay-verified upgrade between builds, a CI job against production
histories) we want that answer in advance, without writing anything and without failing
anything. ``check_execution`` walks one execution's recorded events through the same replay
engine and the same determinism rules (determinism.py) and reports the first place the code
parts from history:

* each scheduling action the code emits must be the next recorded one (name, input,
  session, tag, ..., whatever ``MATCH_FIELDS`` compares);
* every recorded decision must be emitted, and an execution that ended must end the same
  way (completed with the same output, continued as new with the same input, failed);
* once the whole history is applied, the code must emit nothing that history does not
  record: a turn's actions are committed together with the events that caused them, so an
  extra decision after the last recorded event means the code went another way.

Failures the engine recorded (poison, infrastructure, an earlier nondeterminism) end the
walk as reproduced: the code had no say in them. The check says nothing about activities:
new code that calls an activity by the same name with the same input is accepted whatever
that activity now does.

Pure, like the rest of the core: the caller supplies the code (``lookup``) and the events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from duraflow.core import errors as er
from duraflow.core import events as ev
from duraflow.core.determinism import describe_event, recorded_actions
from duraflow.core.errors import NondeterminismError
from duraflow.core.events import HistoryEvent
from duraflow.core.recorded import Execution, executions_of
from duraflow.core.replay import OrchestrationFn, Replay

#: What "got" says when the code kept waiting where history recorded an ending.
STILL_WAITING = "nothing: the code is still waiting at this point"
#: What "expected" says when the code emitted a decision after the last recorded one.
NOTHING_MORE = "nothing: history records no further decision here"


@dataclass(frozen=True, slots=True)
class Divergence:
    """Where the code first parts from history.

    ``index`` is the 0-based position, in the execution's recorded events, of the event the
    code should have reproduced (the number of events for a decision past the end);
    ``event_id`` is that event's id (None past the end). ``expected`` and ``got`` describe
    both sides for a person; ``reason`` is the engine's own message, the one a runtime
    would fail the instance with.
    """

    index: int
    event_id: int | None
    expected: str
    got: str
    reason: str

    def __str__(self) -> str:
        where = (f"at event {self.event_id}" if self.event_id is not None
                 else "after the last event")
        return f"{where} (index {self.index}): expected {self.expected}, got {self.got}"


@dataclass(frozen=True, slots=True)
class ReplayCheck:
    """The verdict of replaying one recorded execution against code.

    ``reproduced``: every recorded decision was emitted again, in order, and nothing else.
    ``events_checked``: recorded events applied before the verdict (all of them when
    reproduced). ``divergence``: the first difference, None when reproduced.
    """

    reproduced: bool
    events_checked: int
    divergence: Divergence | None
    orchestration_name: str
    orchestration_version: str
    execution_id: int
    instance_id: str | None = None

    def __str__(self) -> str:
        what = f"{self.orchestration_name} execution {self.execution_id}"
        if self.instance_id is not None:
            what = f"{self.instance_id} ({what})"
        if self.divergence is None:
            return f"{what}: reproduced {self.events_checked} events"
        return f"{what}: diverged {self.divergence}"


def check_execution(
    events: list[HistoryEvent],
    lookup: Any,
    instance_id: str | None = None,
    execution_id: int = 1,
) -> ReplayCheck:
    """Replay ``events`` (one execution, ``OrchestrationStarted`` first) against the code
    ``lookup(name, version)`` returns, writing nothing. ``HistoryFormatError`` when the
    events are not an execution's history."""
    if not events or events[0].kind != ev.ORCHESTRATION_STARTED:
        raise ev.HistoryFormatError("an execution's history begins with OrchestrationStarted")
    checker = _Checker(instance_id or "replay-check", execution_id, lookup, _no_guid)
    return checker.check(events, instance_id)


def replay_history(
    orchestration_fn: OrchestrationFn,
    history: Any,
    *,
    execution_id: int | None = None,
) -> ReplayCheck:
    """Replay a recorded history against ``orchestration_fn`` and say whether it reproduces
    every recorded decision (see ``ReplayCheck``). Nothing is written anywhere.

    ``history``: the events ``AsyncClient.read_execution_history`` returns, the JSON that
    ``duraflow history ID --json`` prints (parsed, or its text), or its ``events`` list.
    Several executions in one list (continue-as-new) are told apart by their
    ``OrchestrationStarted``; ``execution_id`` picks one (default: the last).
    """
    if not callable(orchestration_fn):
        raise TypeError(f"replay_history needs the orchestration function, got "
                        f"{orchestration_fn!r}")
    chosen = pick(executions_of(history), execution_id)
    return check_execution(chosen.events, lambda name, version: orchestration_fn,
                           chosen.instance_id, chosen.execution_id)


def pick(executions: list[Execution], execution_id: int | None) -> Execution:
    """The execution ``execution_id`` (default: the last one) of ``executions``."""
    if execution_id is None:
        return executions[-1]
    for execution in executions:
        if execution.execution_id == execution_id:
            return execution
    have = ", ".join(str(e.execution_id) for e in executions)
    raise ValueError(f"the history has no execution {execution_id} (it has {have})")


def _no_guid() -> str:
    """A check never records a new GUID: every ``new_guid`` it meets is matched from history
    (one it does not is a divergence, reported before any value is used)."""
    return "00000000-0000-0000-0000-000000000000"


class _Checker(Replay):
    """A ``Replay`` that walks a whole recorded execution, terminal events included, and
    stops at the first difference instead of failing the instance."""

    def check(self, events: list[HistoryEvent], instance_id: str | None) -> ReplayCheck:
        self.history = list(events)
        self.next_event_id = events[-1].event_id + 1
        self._turn_base = len(events)
        self._pending = recorded_actions(events)
        self._walking = True
        try:
            divergence = self._walk(events)
        except NondeterminismError as exc:
            divergence = _from_error(exc, events)
        finally:
            self._walking = False
        started = events[0].data
        return ReplayCheck(
            reproduced=divergence is None,
            events_checked=len(events) if divergence is None else min(divergence.index,
                                                                       len(events)),
            divergence=divergence,
            orchestration_name=str(started.get("name") or ""),
            orchestration_version=str(started.get("version") or ""),
            execution_id=self.execution_id,
            instance_id=instance_id,
        )

    def _walk(self, events: list[HistoryEvent]) -> Divergence | None:
        for index, event in enumerate(events):
            self.now_ms = event.timestamp_ms
            if event.kind in ev.TERMINAL_KINDS:
                return self._ending(index, event, events)
            self._apply(event, recorded=True)
            self._settle()
            if self._out.new_events:
                return self._unrecorded(index + 1, events)
        return None  # all applied and the code waits, as the execution did

    def _ending(self, index: int, event: HistoryEvent,
                events: list[HistoryEvent]) -> Divergence | None:
        """History ends the execution here; the code has not ended it (yet)."""
        if event.kind == ev.ORCHESTRATION_FAILED:
            details = er.ErrorDetails.from_dict(event.data.get("details", {}))
            if not details.is_application:
                return None  # ended by the engine (poison, infrastructure): not the code's
            if details.kind == er.CANCELLED and self._cancel_reason is not None:
                self._finish_cancelled()  # what a turn does after a cancellation request
                return self._unrecorded(index, events)
        return Divergence(index, event.event_id, describe_event(event), STILL_WAITING,
                          f"history ends the execution with {event.kind}, the code does not")

    def _unrecorded(self, index: int, events: list[HistoryEvent]) -> Divergence | None:
        """The code emitted ``new_events[0]`` (history did not record it) after the event
        before ``index``. Only the recorded ending of the execution, at that very place, is
        right; otherwise the divergence is against the next thing history records the code
        doing: a decision not yet reproduced, else the execution's ending, else nothing."""
        emitted = self._out.new_events[0]
        if (index == len(events) - 1 and _same_ending(events[index], emitted)):
            return None
        expected = self._pending[0] if self._pending else next(
            (e for e in events[index:] if e.kind in ev.TERMINAL_KINDS), None)
        where = len(events) if expected is None else events.index(expected)
        return Divergence(
            where, None if expected is None else expected.event_id,
            NOTHING_MORE if expected is None else describe_event(expected),
            describe_event(emitted),
            f"the code emitted {emitted.kind} after event {events[index - 1].event_id}, which "
            "history does not record",
        )


def _same_ending(recorded: HistoryEvent, emitted: HistoryEvent) -> bool:
    """Whether the code ended the execution as history did: completed with the same output,
    continued as new with the same input, or failed the same kind of way (an application
    error's text is a traceback whose line numbers move with any edit, so it is not
    compared)."""
    if recorded.kind != emitted.kind or recorded.kind not in ev.TERMINAL_KINDS:
        return False
    if recorded.kind == ev.ORCHESTRATION_COMPLETED:
        return bool(recorded.data.get("output") == emitted.data.get("output"))
    if recorded.kind == ev.ORCHESTRATION_CONTINUED_AS_NEW:
        return bool(recorded.data.get("input") == emitted.data.get("input"))
    was = er.ErrorDetails.from_dict(recorded.data.get("details", {}))
    now = er.ErrorDetails.from_dict(emitted.data.get("details", {}))
    return (was.category, was.kind) == (now.category, now.kind)


def _from_error(exc: NondeterminismError, events: list[HistoryEvent]) -> Divergence:
    """A mismatch the determinism check raised, located in ``events``."""
    index = next((i for i, e in enumerate(events) if e.event_id == exc.expected_event_id),
                 len(events))
    return Divergence(index, exc.expected_event_id, exc.expected or "?", exc.got or "?",
                      str(exc))
