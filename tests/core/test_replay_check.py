"""The replay checker: new code against recorded histories, nothing written.

A history is reproduced when the code emits every recorded decision again, in order, ends
the execution as history did, and emits nothing more after the last recorded event. The
golden histories (recorded on a real runtime) must be reproduced by their own code; the
others here are recorded with the pure core, the way a runtime's turns write them.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

import duraflow
from duraflow.core import events as ev
from duraflow.core import workitems as wi
from duraflow.core.events import HistoryEvent, HistoryFormatError
from duraflow.core.models import Event
from duraflow.core.replay import Replay
from tests.core.golden_orchestrations import ORCHESTRATIONS

HISTORIES = sorted((pathlib.Path(__file__).parent / "histories").glob("*.json"))
SEQUENCE = pathlib.Path(__file__).parent / "histories" / "sequence.json"


def record(fn: Any, input: Any, *messages: wi.WorkItem, execution_id: int = 1,
           instance: str = "rc") -> list[HistoryEvent]:
    """The history a runtime writes for ``fn``: a start, then one turn per message."""
    replay = Replay(instance, execution_id, lambda name, version: fn, lambda: "guid-1")
    replay.start("Orch", "1.0.0", json.dumps(input), 1_000)
    for n, message in enumerate(messages):
        replay.run_turn([message], 2_000 + n)
    return replay.history


def done(activity_id: int, value: Any) -> wi.WorkItem:
    return wi.activity_completed("rc", 1, activity_id, json.dumps(value))


def two_steps(ctx: Any, n: int) -> Any:
    a = yield ctx.schedule_activity("A", n)
    b = yield ctx.schedule_activity("B", a)
    return b


def waits_for_approval(ctx: Any, n: int) -> Any:
    a = yield ctx.schedule_activity("A", n)
    approved = yield ctx.wait_for_event("approve")
    return [a, approved]


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_every_golden_history_is_reproduced_by_its_own_code(path: pathlib.Path) -> None:
    document = json.loads(path.read_text())
    check = duraflow.replay_history(ORCHESTRATIONS[document["orchestration"]][0], document)
    assert check.reproduced, str(check)
    assert check.divergence is None
    assert check.events_checked == len(document["history"])


def test_a_compatible_change_is_reproduced() -> None:
    history = record(two_steps, 1, done(2, 10), done(4, 20))

    def refactored(ctx: Any, n: int) -> Any:  # same decisions, different shape
        values = []
        for name in ("A", "B"):
            values.append((yield ctx.schedule_activity(name, values[-1] if values else n)))
        ctx.trace_info("not a decision")
        return values[-1]

    check = duraflow.replay_history(refactored, history)
    assert check.reproduced and check.events_checked == 6
    assert (check.orchestration_name, check.orchestration_version) == ("Orch", "1.0.0")


def test_an_inserted_step_names_the_first_diverging_event() -> None:
    history = record(two_steps, 1, done(2, 10), done(4, 20))

    def inserted(ctx: Any, n: int) -> Any:
        yield ctx.schedule_activity("Validate", n)
        return (yield from two_steps(ctx, n))

    check = duraflow.replay_history(inserted, history)
    assert not check.reproduced
    divergence = check.divergence
    assert divergence is not None
    assert (divergence.index, divergence.event_id, check.events_checked) == (1, 2, 1)
    assert divergence.expected == "ActivityScheduled(name='A', input='1')"
    assert divergence.got == "ActivityScheduled(name='Validate', input='1')"
    assert "schedule mismatch" in divergence.reason
    assert str(check).endswith("diverged at event 2 (index 1): expected "
                               "ActivityScheduled(name='A', input='1'), got "
                               "ActivityScheduled(name='Validate', input='1')")


def test_a_changed_input_or_a_missing_step_diverges() -> None:
    history = record(two_steps, 1, done(2, 10), done(4, 20))

    def other_input(ctx: Any, n: int) -> Any:
        a = yield ctx.schedule_activity("A", n)
        return (yield ctx.schedule_activity("B", a + 1))

    def one_step(ctx: Any, n: int) -> Any:
        return (yield ctx.schedule_activity("A", n))

    changed = duraflow.replay_history(other_input, history).divergence
    assert changed is not None and (changed.index, changed.got) == (
        3, "ActivityScheduled(name='B', input='11')")
    missing = duraflow.replay_history(one_step, history).divergence
    assert missing is not None and missing.index == 3
    assert missing.expected == "ActivityScheduled(name='B', input='10')"
    assert "finished" in missing.got


def test_a_decision_after_the_last_recorded_event_diverges() -> None:
    """A running execution: the code must wait where the recorded turn ended."""
    history = record(waits_for_approval, 1, done(2, 10))
    assert history[-1].kind == ev.EXTERNAL_SUBSCRIBED
    assert duraflow.replay_history(waits_for_approval, history).reproduced

    def also_audits(ctx: Any, n: int) -> Any:
        both = yield ctx.all([ctx.schedule_activity("A", n), ctx.schedule_activity("Audit", n)])
        return [both, (yield ctx.wait_for_event("approve"))]

    check = duraflow.replay_history(also_audits, record(waits_for_approval, 1))
    assert check.divergence is not None
    assert check.divergence.index == len(record(waits_for_approval, 1))
    assert check.divergence.event_id is None
    assert check.divergence.expected.startswith("nothing")
    assert check.divergence.got == "ActivityScheduled(name='Audit', input='1')"


def test_an_execution_must_end_as_history_did() -> None:
    history = record(two_steps, 1, done(2, 10), done(4, 20))

    def other_output(ctx: Any, n: int) -> Any:
        return {"b": (yield from two_steps(ctx, n))}

    def raises(ctx: Any, n: int) -> Any:
        yield from two_steps(ctx, n)
        raise ValueError("no")

    for fn, got in ((other_output, "OrchestrationCompleted(output='{\"b\": 20}')"),
                    (raises, "OrchestrationFailed(error='ValueError: no')")):
        divergence = duraflow.replay_history(fn, history).divergence
        assert divergence is not None
        assert (divergence.index, divergence.got) == (5, got)
        assert divergence.expected == "OrchestrationCompleted(output='20')"

    def waits_longer(ctx: Any, n: int) -> Any:
        yield from two_steps(ctx, n)
        yield ctx.wait_for_event("never")

    divergence = duraflow.replay_history(waits_longer, history).divergence
    assert divergence is not None
    assert (divergence.index, divergence.expected, divergence.got) == (
        5, "OrchestrationCompleted(output='20')", "ExternalSubscribed(name='never')")


def test_cancellation_and_engine_failures_are_reproduced() -> None:
    cancelled = record(waits_for_approval, 1, wi.cancel_instance("rc", "stop"))
    assert cancelled[-1].kind == ev.ORCHESTRATION_FAILED
    assert duraflow.replay_history(waits_for_approval, cancelled).reproduced
    poison = {"details": {"Poison": {"kind": "", "message": "x"}}}
    poisoned = [*record(two_steps, 1), HistoryEvent(3, ev.ORCHESTRATION_FAILED, poison)]
    assert duraflow.replay_history(lambda ctx, n: (yield ctx.wait_for_event("x")),
                                   poisoned).reproduced is False  # A was never scheduled
    assert duraflow.replay_history(two_steps, poisoned).reproduced


def test_continue_as_new_checks_the_execution_asked_for() -> None:
    def counter(ctx: Any, n: int) -> Any:
        if n < 1:
            return (yield ctx.continue_as_new(n + 1))
        return (yield ctx.schedule_activity("A", n))

    first = record(counter, 0)
    assert first[-1].kind == ev.ORCHESTRATION_CONTINUED_AS_NEW
    second = record(counter, 1, done(2, 5), execution_id=2)
    both = first + second

    assert duraflow.replay_history(counter, both).execution_id == 2
    assert duraflow.replay_history(counter, both).reproduced
    assert duraflow.replay_history(counter, both, execution_id=1).reproduced

    def never_continues(ctx: Any, n: int) -> Any:
        return (yield ctx.schedule_activity("A", n))

    check = duraflow.replay_history(never_continues, both, execution_id=1)
    assert check.execution_id == 1 and check.divergence is not None
    assert check.divergence.expected == "OrchestrationContinuedAsNew(input='1')"
    with pytest.raises(ValueError, match="has no execution 3 \\(it has 1, 2\\)"):
        duraflow.replay_history(counter, both, execution_id=3)


def test_the_forms_a_history_comes_in() -> None:
    history = record(two_steps, 1, done(2, 10), done(4, 20))
    exported = {"instance_id": "order-7", "execution_id": 3, "events": [
        {"event_id": e.event_id, "kind": e.kind, "data": None,
         "recorded": json.loads(e.to_json())} for e in history]}
    for form in (history, [Event.from_history(e) for e in history], exported,
                 json.dumps(exported), exported["events"],
                 [json.loads(e.to_json()) for e in history]):
        check = duraflow.replay_history(two_steps, form)
        assert check.reproduced, (type(form), str(check))
    from_export = duraflow.replay_history(two_steps, exported)
    assert (from_export.instance_id, from_export.execution_id) == ("order-7", 3)
    assert str(from_export) == "order-7 (Orch execution 3): reproduced 6 events"


@pytest.mark.parametrize(("bad", "says"), [
    ({"kind": "x"}, "found keys kind"),
    ("not json", "not JSON"),
    (42, "expected a list of events, got int"),
    ([], "no events"),
    ([{"event_id": 2, "kind": "ActivityScheduled", "data": {"name": "A"}}], "no recorded form"),
    ([Event(1, ev.ORCHESTRATION_STARTED, None, 0, None)], "display form"),
    ([HistoryEvent(2, ev.ACTIVITY_SCHEDULED, {})], "begins with ActivityScheduled"),
])
def test_what_is_not_a_history_is_refused_in_one_line(bad: Any, says: str) -> None:
    with pytest.raises(HistoryFormatError, match=says):
        duraflow.replay_history(two_steps, bad)


def test_nothing_but_a_function_is_replayed() -> None:
    with pytest.raises(TypeError, match="orchestration function"):
        duraflow.replay_history("two_steps", record(two_steps, 1))  # type: ignore[arg-type]
