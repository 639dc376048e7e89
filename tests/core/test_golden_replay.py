"""Golden replay tests: recorded histories replayed through the pure core.

Each history in ``histories/`` was recorded by running the orchestration on a real runtime.
For every message that history records (an activity result, a fired timer, an event), the
test replays the history up to that message, feeds the message in as a new turn, and checks
the turn reproduces exactly the events recorded after it. That pins both halves of
determinism: replay re-derives the same state, and a live turn writes the same history.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from duraflow.core import events as ev
from duraflow.core import workitems as wi
from duraflow.core.events import HistoryEvent
from duraflow.core.replay import Replay
from duraflow.core.tasks import SYSCALL_PREFIX
from tests.core.golden_orchestrations import ORCHESTRATIONS, child

HISTORIES = sorted((pathlib.Path(__file__).parent / "histories").glob("*.json"))
FUNCTIONS = {name: fn for name, (fn, _) in ORCHESTRATIONS.items()} | {"Child": child}


def load(path: pathlib.Path) -> tuple[dict[str, Any], list[HistoryEvent]]:
    document = json.loads(path.read_text())
    history = [HistoryEvent.from_json(json.dumps(e)) for e in document["history"]]
    return document, history


def new_replay(instance: str, functions: dict[str, Any] | None = None) -> Replay:
    table = functions or FUNCTIONS
    return Replay(instance, 1, lambda name, version: table.get(name), lambda: "guid-in-test")


def syscall_ids(history: list[HistoryEvent]) -> set[int]:
    return {
        e.event_id for e in history
        if e.kind == ev.ACTIVITY_SCHEDULED and str(e.data["name"]).startswith(SYSCALL_PREFIX)
    }


def as_message(instance: str, event: HistoryEvent) -> wi.WorkItem | None:
    """The queue message that made the runtime append ``event``, if one did."""
    source = event.source_event_id or 0
    if event.kind == ev.ACTIVITY_COMPLETED:
        return wi.activity_completed(instance, 1, source, event.data["result"])
    if event.kind == ev.ACTIVITY_FAILED:
        return wi.activity_failed(instance, 1, source, event.data["details"])
    if event.kind == ev.TIMER_FIRED:
        return wi.timer_fired(instance, 1, source, event.data["fire_at_ms"])
    if event.kind == ev.EXTERNAL_EVENT:
        return wi.external_raised(instance, event.data["name"], event.data["data"])
    if event.kind == ev.SUB_ORCHESTRATION_COMPLETED:
        return wi.sub_orch_completed(instance, 1, source, event.data["result"])
    return None


def comparable(event: HistoryEvent, inline: set[int]) -> tuple[Any, ...]:
    data = dict(event.data)
    if event.kind == ev.ACTIVITY_COMPLETED and event.source_event_id in inline:
        data.pop("result")  # utc_now / new_guid values differ between runs by nature
    if event.kind == ev.TIMER_CREATED:
        data.pop("fire_at_ms")  # computed from the turn's clock
    return event.event_id, event.kind, event.source_event_id, json.dumps(data, sort_keys=True)


def test_there_are_recorded_histories() -> None:
    assert {p.stem for p in HISTORIES} == set(ORCHESTRATIONS)


def message_positions(instance: str, history: list[HistoryEvent]) -> list[int]:
    inline = syscall_ids(history)
    return [
        i for i, e in enumerate(history)
        if as_message(instance, e) is not None and e.source_event_id not in inline
    ]


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_history_before_last_message_replays_without_new_actions(path: pathlib.Path) -> None:
    document, history = load(path)
    instance = document["orchestration"]
    last = message_positions(instance, history)[-1]
    replay = new_replay(instance)
    output = replay.load(history[:last])
    assert output.new_events == []
    assert not replay.finished
    assert not replay.is_replaying
    assert replay.next_event_id == last + 1


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_finished_history_is_not_rerun(path: pathlib.Path) -> None:
    document, history = load(path)
    replay = new_replay(document["orchestration"], {})  # no code: it must not be needed
    output = replay.load(history)
    assert output.new_events == []
    assert replay.finished and replay.status == "Completed"


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
def test_each_recorded_turn_is_reproduced_exactly(path: pathlib.Path) -> None:
    document, history = load(path)
    instance = document["orchestration"]
    inline = syscall_ids(history)
    positions = message_positions(instance, history)
    assert positions, "a golden history must contain at least one message"
    boundaries = [*positions, len(history)]
    for position, end in zip(positions, boundaries[1:], strict=True):
        replay = new_replay(instance)
        assert replay.load(history[:position]).new_events == []
        message = as_message(instance, history[position])
        assert message is not None
        output = replay.run_turn([message], history[position].timestamp_ms)
        produced = [comparable(e, inline) for e in output.new_events]
        expected = [comparable(e, inline) for e in history[position:end]]
        assert produced == expected, f"turn at event {position + 1} diverged"
    final = history[-1]
    assert final.kind == ev.ORCHESTRATION_COMPLETED
    assert json.loads(final.data["output"]) == document["output"]


def test_changed_activity_is_reported_as_nondeterministic() -> None:
    _, history = load(pathlib.Path(__file__).parent / "histories" / "sequence.json")

    def renamed(ctx: Any, names: list[str]) -> Any:
        for name in names:
            yield ctx.schedule_activity("Welcome", name)

    replay = new_replay("sequence", {"sequence": renamed})
    output = replay.load(history[:-1])
    assert replay.finished and output.status == "Failed"
    assert output.output is not None
    assert output.output.startswith("nondeterministic: schedule mismatch")
    assert "name='Welcome'" in output.output and "name='Greet'" in output.output
    # Only the failure is written: nothing the diverged code emitted.
    assert [e.kind for e in output.new_events] == [ev.ORCHESTRATION_FAILED]
    assert output.new_events[0].event_id == history[-2].event_id + 1


def test_missing_action_is_reported_as_nondeterministic() -> None:
    _, history = load(pathlib.Path(__file__).parent / "histories" / "fan_out.json")

    def fewer(ctx: Any, n: int) -> Any:
        yield ctx.all([ctx.schedule_activity("Square", i) for i in range(n - 1)])
        return 0

    replay = new_replay("fan_out", {"fan_out": fewer})
    output = replay.load(history[:-1])
    assert output.status == "Failed"
    assert output.output is not None
    assert "history schedule but no emitted action" in output.output


def test_code_finishing_early_is_reported_as_nondeterministic() -> None:
    _, history = load(pathlib.Path(__file__).parent / "histories" / "sequence.json")

    def stops_early(ctx: Any, names: list[str]) -> Any:
        first = yield ctx.schedule_activity("Greet", names[0])
        return [first]

    replay = new_replay("sequence", {"sequence": stops_early})
    output = replay.load(history[:-1])
    assert output.status == "Failed"
    assert output.output is not None
    assert "finished but history has more scheduled work" in output.output


def test_corrupted_history_without_start_fails_clearly() -> None:
    _, history = load(pathlib.Path(__file__).parent / "histories" / "sequence.json")
    replay = new_replay("sequence")
    output = replay.load(history[1:])
    assert output.status == "Failed"
    assert output.output is not None and "first event must be OrchestrationStarted" in output.output
