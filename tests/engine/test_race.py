"""``ctx.race``: first task wins, losers are cancelled, a failed winner raises."""

from __future__ import annotations

import threading
import time

from .support import TIMEOUT_MS, TIMEOUT_S, completed, failed, uid, wait_for_custom_status

LONG_TIMER_MS = 60_000


def test_race_activity_beats_timer(start_runtime, client):
    def register(rt):
        rt.register_activity("Quick", lambda ctx, v: f"quick {v}")

        @rt.register_orchestration("RaceQuick")
        def race_quick(ctx, _):
            winner = yield ctx.race(
                ctx.schedule_activity("Quick", "answer"), ctx.schedule_timer(LONG_TIMER_MS)
            )
            return winner

    start_runtime(register)
    iid = uid("race-activity")
    started = time.monotonic()
    client.start_orchestration(iid, "RaceQuick", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "index": 0, "value": "quick answer"}
    assert time.monotonic() - started < TIMEOUT_S  # did not wait for the losing timer


def test_race_timer_wins_and_losing_activity_is_cancelled(start_runtime, client):
    activity_started = threading.Event()
    saw_cancellation = threading.Event()

    def register(rt):
        def slow(ctx, _):
            activity_started.set()
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline:
                if ctx.is_cancelled():
                    saw_cancellation.set()
                    return "gave up"
                time.sleep(0.01)
            return "finished anyway"

        rt.register_activity("Slow", slow)

        @rt.register_orchestration("RaceTimer")
        def race_timer(ctx, _):
            winner = yield ctx.race(ctx.schedule_activity("Slow", None), ctx.schedule_timer(200))
            return winner

    start_runtime(register)
    iid = uid("race-timer")
    client.start_orchestration(iid, "RaceTimer", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "index": 1, "value": None}
    assert activity_started.is_set()
    assert saw_cancellation.wait(TIMEOUT_S), "the losing activity never saw is_cancelled()"
    kinds = [e.kind for e in client.read_execution_history(iid, 1)]
    assert "ActivityCancelRequested" in kinds
    assert "ActivityCompleted" not in kinds


def test_race_failed_winner_raises_activity_error(start_runtime, client):
    def register(rt):
        def broken(ctx, _):
            raise ValueError("winner blew up")

        rt.register_activity("Broken", broken)

        @rt.register_orchestration("RaceFail")
        def race_fail(ctx, _):
            try:
                yield ctx.race(ctx.schedule_timer(LONG_TIMER_MS), ctx.schedule_activity("Broken"))
            except Exception as e:
                return f"race raised: {e}"
            return "race returned normally"

    start_runtime(register)
    iid = uid("race-fail")
    client.start_orchestration(iid, "RaceFail", None)
    output = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert output.startswith("race raised: ")
    assert "winner blew up" in output
    assert "Broken" in output


def test_race_of_three_tasks(start_runtime, client):
    def register(rt):
        rt.register_activity("Third", lambda ctx, _: "third wins")

        @rt.register_orchestration("RaceThree")
        def race_three(ctx, _):
            ctx.set_custom_status("racing")
            winner = yield ctx.race(
                ctx.schedule_timer(LONG_TIMER_MS),
                ctx.wait_for_event("never-sent"),
                ctx.schedule_activity("Third", None),
            )
            return winner

    start_runtime(register)
    iid = uid("race-three")
    client.start_orchestration(iid, "RaceThree", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "index": 2, "value": "third wins"}
    kinds = [e.kind for e in client.read_execution_history(iid, 1)]
    assert "ExternalSubscribedCancelled" in kinds  # the losing wait was dropped


def test_race_event_beats_timer(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("RaceEvent")
        def race_event(ctx, _):
            ctx.set_custom_status("waiting")
            winner = yield ctx.race(ctx.schedule_timer(LONG_TIMER_MS), ctx.wait_for_event("go"))
            return winner

    start_runtime(register)
    iid = uid("race-event")
    client.start_orchestration(iid, "RaceEvent", None)
    wait_for_custom_status(client, iid, "waiting")
    client.raise_event(iid, "go", {"payload": [1, 2]})
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "index": 1, "value": {"payload": [1, 2]}}


def test_race_with_fewer_than_two_tasks_raises_value_error(start_runtime, client):
    def register(rt):
        rt.register_activity("Only", lambda ctx, _: "only")

        @rt.register_orchestration("RaceOne")
        def race_one(ctx, _):
            caught = []
            try:
                yield ctx.race(ctx.schedule_activity("Only", None))
            except ValueError as e:
                caught.append(f"one: {e}")
            try:
                yield ctx.race()
            except ValueError as e:
                caught.append(f"none: {e}")
            # The orchestration is still usable after catching the error.
            caught.append((yield ctx.schedule_activity("Only", None)))
            return caught

    start_runtime(register)
    iid = uid("race-one")
    client.start_orchestration(iid, "RaceOne", None)
    output = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert len(output) == 3
    assert output[0].startswith("one: ") and "2" in output[0]
    assert output[1].startswith("none: ")
    assert output[2] == "only"


def test_race_typed_returns_index_and_value(start_runtime, client):
    def register(rt):
        rt.register_activity_typed("Shape", lambda ctx, _: {"ok": True, "err": "data"})

        @rt.register_orchestration("RaceTyped")
        def race_typed(ctx, _):
            winner = yield ctx.race_typed(
                ctx.schedule_activity_typed("Shape", None), ctx.schedule_timer(LONG_TIMER_MS)
            )
            return winner

    start_runtime(register)
    iid = uid("race-typed")
    client.start_orchestration(iid, "RaceTyped", None)
    # A winner's value passes through untouched, even one that looks like an all() entry.
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "index": 0, "value": {"ok": True, "err": "data"}}


def test_race_loser_sub_orchestration_is_cancelled(start_runtime, client):
    iid = uid("race-sub")
    child_id = f"{iid}-slow-child"

    def register(rt):
        @rt.register_orchestration("SlowChild")
        def slow_child(ctx, _):
            yield ctx.wait_for_event("never")
            return "child finished"

        @rt.register_orchestration("RaceChild")
        def race_child(ctx, _):
            winner = yield ctx.race(
                ctx.schedule_sub_orchestration_with_id("SlowChild", child_id, None),
                ctx.schedule_timer(100),
            )
            return winner["index"]

    start_runtime(register)
    client.start_orchestration(iid, "RaceChild", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == 1
    child_error = failed(client.wait_for_orchestration(child_id, TIMEOUT_MS))
    assert child_error.startswith("canceled:")
    assert "SubOrchestrationCancelRequested" in [
        e.kind for e in client.read_execution_history(iid, 1)]


def test_race_loser_dequeue_leaves_message_for_later(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("RaceDequeue")
        def race_dequeue(ctx, _):
            first = yield ctx.race(ctx.dequeue_event("jobs"), ctx.schedule_timer(50))
            ctx.set_custom_status("timer won")
            later = yield ctx.dequeue_event("jobs")
            return {"first": first, "later": later}

    start_runtime(register)
    iid = uid("race-dequeue")
    client.start_orchestration(iid, "RaceDequeue", None)
    wait_for_custom_status(client, iid, "timer won")
    client.enqueue_event(iid, "jobs", {"job": 1})
    # The dropped dequeue does not swallow the message: the later dequeue gets it.
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "first": {"index": 1, "value": None}, "later": {"job": 1}}


def test_race_dequeue_winner_value_is_not_double_encoded(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("DequeueWins")
        def dequeue_wins(ctx, _):
            ctx.set_custom_status("racing")
            return (yield ctx.race(ctx.dequeue_event("q"), ctx.schedule_timer(LONG_TIMER_MS)))

    start_runtime(register)
    iid = uid("dequeue-wins")
    client.start_orchestration(iid, "DequeueWins", None)
    wait_for_custom_status(client, iid, "racing")
    client.enqueue_event(iid, "q", {"nested": ["x", 1]})
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "index": 0, "value": {"nested": ["x", 1]}}


def test_race_loser_event_wait_does_not_consume_later_event(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("RaceWait")
        def race_wait(ctx, _):
            yield ctx.race(ctx.wait_for_event("signal"), ctx.schedule_timer(50))
            ctx.set_custom_status("waiting again")
            return (yield ctx.wait_for_event("signal"))

    start_runtime(register)
    iid = uid("race-wait")
    client.start_orchestration(iid, "RaceWait", None)
    wait_for_custom_status(client, iid, "waiting again")
    client.raise_event(iid, "signal", "for the second wait")
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "for the second wait"
