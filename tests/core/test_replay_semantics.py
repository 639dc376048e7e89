"""Behaviour of the pure replay engine that no recorded history pins by itself."""

from __future__ import annotations

import json
from typing import Any

import pytest

from duraflow.core import events as ev
from duraflow.core import workitems as wi
from duraflow.core.output import TurnOutput
from duraflow.core.replay import Replay
from duraflow.core.retry import RetryPolicy
from duraflow.core.version import SemVer

INST = "inst"


def start(fn: Any, input: Any = None) -> tuple[Replay, TurnOutput]:
    replay = Replay(INST, 1, lambda n, v: fn, lambda: "g-1")
    return replay, replay.start("orch", "1.0.0", json.dumps(input), 1_000)


def done(activity_id: int, value: Any) -> wi.WorkItem:
    return wi.activity_completed(INST, 1, activity_id, json.dumps(value))


def failed(activity_id: int, message: str) -> wi.WorkItem:
    details = {"Application": {"kind": "ActivityFailed", "message": message}}
    return wi.activity_failed(INST, 1, activity_id, details)


def kinds(output: TurnOutput) -> list[str]:
    return [e.kind for e in output.new_events]


def test_plain_function_completes_with_its_return_value() -> None:
    _, out = start(lambda ctx, x: {"doubled": x * 2}, 21)
    assert out.status == "Completed" and json.loads(out.output or "") == {"doubled": 42}
    assert kinds(out) == [ev.ORCHESTRATION_STARTED, ev.ORCHESTRATION_COMPLETED]


def test_async_function_fails_with_a_clear_message() -> None:
    async def orch(ctx: Any, _: Any) -> None:
        return None

    _, out = start(orch)
    assert out.status == "Failed" and "async function" in (out.output or "")


def test_race_of_three_picks_first_and_cancels_the_rest() -> None:
    def orch(ctx: Any, _: Any) -> Any:
        winner = yield ctx.race(
            ctx.schedule_activity("A"), ctx.schedule_activity("B"), ctx.wait_for_event("e")
        )
        return winner

    replay, out = start(orch)
    assert [a.item["name"] for a in out.activities] == ["A", "B"]
    out = replay.run_turn([done(3, "b")], 2_000)
    assert json.loads(out.output or "") == {"index": 1, "value": "b"}
    assert out.cancelled_activity_ids == [2]
    assert kinds(out)[:3] == [
        ev.ACTIVITY_COMPLETED, ev.ACTIVITY_CANCEL_REQUESTED, ev.EXTERNAL_SUBSCRIBED_CANCELLED
    ]


def test_race_with_one_task_raises_value_error_inside_the_orchestration() -> None:
    def orch(ctx: Any, _: Any) -> Any:
        try:
            yield ctx.race(ctx.schedule_timer(5))
        except ValueError as exc:
            return str(exc)

    _, out = start(orch)
    assert json.loads(out.output or "") == "race() needs at least 2 tasks, got 1"


def test_failed_race_winner_raises_its_error() -> None:
    def orch(ctx: Any, _: Any) -> Any:
        try:
            yield ctx.race(ctx.schedule_activity("A"), ctx.schedule_timer(60_000))
        except Exception as exc:
            return f"caught {exc}"

    replay, _ = start(orch)
    out = replay.run_turn([failed(2, "boom")], 2_000)
    assert json.loads(out.output or "") == "caught boom"


def test_nested_all_inside_race_resolves() -> None:
    def orch(ctx: Any, _: Any) -> Any:
        both = ctx.all([ctx.schedule_activity("A"), ctx.schedule_activity("B")])
        return (yield ctx.race(both, ctx.schedule_timer(60_000)))

    replay, _ = start(orch)
    replay.run_turn([done(2, 1)], 2_000)
    out = replay.run_turn([done(3, 2)], 2_001)
    assert json.loads(out.output or "") == {"index": 0, "value": [{"ok": 1}, {"ok": 2}]}


def test_duplicate_and_unknown_completions_are_dropped_with_a_warning() -> None:
    def orch(ctx: Any, _: Any) -> Any:
        a = yield ctx.schedule_activity("A")
        b = yield ctx.schedule_activity("B")
        return [a, b]

    replay, _ = start(orch)
    out = replay.run_turn([done(2, "a"), done(2, "again"), done(99, "ghost")], 2_000)
    assert kinds(out) == [ev.ACTIVITY_COMPLETED, ev.ACTIVITY_SCHEDULED]
    assert any("duplicate" in w for w in out.warnings)
    assert any("unknown event 99" in w for w in out.warnings)


def test_completion_for_another_execution_is_dropped() -> None:
    replay, _ = start(lambda ctx, _: (yield ctx.schedule_activity("A")))
    out = replay.run_turn([wi.activity_completed(INST, 7, 2, "1")], 2_000)
    assert out.new_events == [] and out.warnings


def test_event_raised_before_subscription_is_not_delivered() -> None:
    def orch(ctx: Any, _: Any) -> Any:
        yield ctx.schedule_activity("A")
        return (yield ctx.wait_for_event("go"))

    replay, _ = start(orch)
    early = replay.run_turn([wi.external_raised(INST, "go", '"early"')], 1_500)
    assert kinds(early) == [ev.EXTERNAL_EVENT]  # recorded, but nobody was waiting
    replay.run_turn([done(2, None)], 2_000)
    out = replay.run_turn([wi.external_raised(INST, "go", '"late"')], 3_000)
    assert json.loads(out.output or "") == "late"


def test_queue_messages_buffer_and_carry_across_continue_as_new() -> None:
    def orch(ctx: Any, generation: int) -> Any:
        first = yield ctx.dequeue_event("inbox")
        if generation == 0:
            yield ctx.schedule_timer(10)
            return (yield ctx.continue_as_new(1))
        return first

    replay, _ = start(orch, 0)
    inbox = [wi.queue_message(INST, "inbox", '"m1"'), wi.queue_message(INST, "inbox", '"m2"')]
    replay.run_turn(inbox, 2_000)
    out = replay.run_turn([wi.timer_fired(INST, 1, 4, 2_010)], 2_100)
    assert out.status == "ContinuedAsNew"
    (can,) = [m.item for m in out.messages if m.item["type"] == wi.CONTINUE_AS_NEW]
    assert can["carry_forward_events"] == [["inbox", '"m2"']]
    nxt = Replay(INST, 2, lambda n, v: orch, lambda: "g")
    out = nxt.start("orch", "1.0.0", can["input"], 3_000, None, can["carry_forward_events"])
    assert json.loads(out.output or "") == "m2"


def test_messages_behind_continue_as_new_are_passed_to_the_next_execution() -> None:
    def orch(ctx: Any, _: Any) -> Any:
        yield ctx.dequeue_event("inbox")
        return (yield ctx.continue_as_new(None))

    replay, _ = start(orch)
    later = [wi.queue_message(INST, "inbox", '"m2"'), wi.cancel_instance(INST, "stop")]
    out = replay.run_turn([wi.queue_message(INST, "inbox", '"m1"'), *later], 2_000)
    assert out.status == "ContinuedAsNew"
    (can,) = [m.item for m in out.messages]
    assert can["type"] == wi.CONTINUE_AS_NEW
    # Inside the ContinueAsNew item, so nothing sent meanwhile can overtake them.
    assert can["forwarded"] == later


def test_cancellation_fails_with_reason_and_cancels_children() -> None:
    def orch(ctx: Any, _: Any) -> Any:
        yield ctx.all([ctx.schedule_sub_orchestration("Child"), ctx.schedule_activity("A")])

    replay, _ = start(orch)
    out = replay.run_turn([wi.cancel_instance(INST, "user asked")], 2_000)
    assert out.status == "Failed" and out.output == "canceled: user asked"
    cancels = [m for m in out.messages if m.item["type"] == wi.CANCEL_INSTANCE]
    assert [m.instance_id for m in cancels] == [f"{INST}::sub::2"]
    assert out.cancelled_activity_ids == [3]


def test_custom_status_is_durable_and_reported_once_per_turn() -> None:
    def orch(ctx: Any, _: Any) -> Any:
        ctx.set_custom_status("one")
        ctx.set_custom_status("two")
        yield ctx.schedule_timer(10)
        seen = ctx.get_custom_status()
        ctx.reset_custom_status()
        return [seen, ctx.get_custom_status()]

    replay, out = start(orch)
    assert out.custom_status_changed and out.custom_status == "two"
    out = replay.run_turn([wi.timer_fired(INST, 1, 4, 1_010)], 2_000)
    assert json.loads(out.output or "") == ["two", None]
    assert out.custom_status_changed and out.custom_status is None


def test_non_json_output_fails_the_instance_with_type_error() -> None:
    _, out = start(lambda ctx, _: object())
    assert out.status == "Failed" and "not JSON-serialisable" in (out.output or "")


def test_yielding_a_non_task_throws_type_error_into_the_orchestration() -> None:
    def orch(ctx: Any, _: Any) -> Any:
        try:
            yield 42
        except TypeError as exc:
            return str(exc)

    _, out = start(orch)
    assert "must yield a task" in json.loads(out.output or "")


def test_sub_orchestration_parent_is_notified_on_completion() -> None:
    replay = Replay("child", 1, lambda n, v: lambda ctx, x: x + 1, lambda: "g")
    out = replay.start("orch", "1.0.0", "1", 1_000, parent=("parent", 3, 7))
    (note,) = out.messages
    assert note.instance_id == "parent"
    assert note.item == wi.sub_orch_completed("parent", 3, 7, "2")


@pytest.mark.parametrize(
    ("backoff", "delays"),
    [
        ("exponential", [100, 200, 400, 800]),
        ("linear", [100, 200, 300, 400]),
        ("fixed", [1000, 1000, 1000, 1000]),
        ("none", [0, 0, 0, 0]),
    ],
)
def test_retry_backoff_delays(backoff: str, delays: list[int]) -> None:
    policy = RetryPolicy.from_descriptor({"maxAttempts": 5, "backoff": backoff})
    assert [policy.delay_ms(k) for k in range(1, 5)] == delays


def test_retry_backoff_is_capped_at_30_seconds() -> None:
    assert RetryPolicy(backoff="exponential").delay_ms(20) == 30_000


@pytest.mark.parametrize(
    "raw", [{"maxAttempts": 0}, {"maxAttempts": "3"}, {"timeoutMs": -5}, {"backoff": "weird"}]
)
def test_invalid_retry_policies_are_rejected(raw: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        RetryPolicy.from_descriptor(raw)


def test_semver_orders_by_precedence() -> None:
    versions = ["1.0.0", "1.0.10", "1.0.2", "2.0.0-rc.1", "2.0.0", "0.9.9"]
    ordered = [v.text for v in sorted(SemVer(v) for v in versions)]
    assert ordered == ["0.9.9", "1.0.0", "1.0.2", "1.0.10", "2.0.0-rc.1", "2.0.0"]
    with pytest.raises(ValueError, match="invalid semantic version"):
        SemVer("1.0")
