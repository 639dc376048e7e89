"""The in-process fast path: a runtime runs the activities its turns schedule and commits each
result with the next turn, yet never keeps other messages of the instance waiting for long.
"""

from __future__ import annotations

import threading
import time

from .support import TIMEOUT_MS, TIMEOUT_S, completed, uid

STEPS = 5


def test_sequential_activities_never_go_through_the_worker_queue(start_runtime, client):
    def register(rt):
        rt.register_activity("Inc", lambda ctx, v: v + 1)

        @rt.register_orchestration("Steps")
        def steps(ctx, value):
            for _ in range(STEPS):
                value = yield ctx.schedule_activity("Inc", value)
            return value

    rt = start_runtime(register)
    iid = uid("steps")
    client.start_orchestration(iid, "Steps", 10)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == 10 + STEPS
    metrics = rt.metrics_snapshot()
    assert metrics.activity_success == STEPS
    # Claimed by the turns that scheduled them, results applied by the next turn: no worker
    # fetch at all, and the only orchestration fetch is the one that started the instance.
    assert metrics.worker_dispatcher_items_fetched == 0
    assert metrics.orch_dispatcher_items_fetched == 1
    kinds = [e.kind for e in client.read_execution_history(iid, 1)]
    assert kinds.count("ActivityScheduled") == kinds.count("ActivityCompleted") == STEPS


def test_event_is_not_held_back_by_an_activity_running_in_process(start_runtime, client):
    activity_started = threading.Event()
    saw_cancellation = threading.Event()

    def register(rt):
        def slow(ctx, _):
            activity_started.set()
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline and not ctx.is_cancelled():
                time.sleep(0.01)
            if ctx.is_cancelled():
                saw_cancellation.set()
            return "finished"

        rt.register_activity("Slow", slow)

        @rt.register_orchestration("RaceEvent")
        def race_event(ctx, _):
            winner = yield ctx.race(
                ctx.schedule_activity("Slow", None), ctx.wait_for_event("go")
            )
            return winner

    start_runtime(register)
    iid = uid("race-event")
    client.start_orchestration(iid, "RaceEvent", None)
    assert activity_started.wait(TIMEOUT_S)
    client.raise_event(iid, "go", "now")
    # The instance is held while Slow runs here; the event must still win the race.
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "index": 1, "value": "now"}
    assert saw_cancellation.wait(TIMEOUT_S)
