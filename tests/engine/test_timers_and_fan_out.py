"""Durable timers and ``ctx.all`` joins: fan-out/fan-in, failures, timers and events."""

from __future__ import annotations

import time

from .support import TIMEOUT_MS, completed, history_kinds, uid, wait_for_custom_status


def test_durable_timer_resolves_to_none_after_delay(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Sleeper")
        def sleeper(ctx, delay):
            before = yield ctx.utc_now()
            fired = yield ctx.schedule_timer(delay)
            after = yield ctx.utc_now()
            return {"fired": fired, "elapsed": after - before}

    start_runtime(register)
    iid = uid("timer")
    started = time.monotonic()
    client.start_orchestration(iid, "Sleeper", 300)
    output = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert output["fired"] is None
    assert output["elapsed"] >= 300
    assert time.monotonic() - started >= 0.3
    kinds = history_kinds(client, iid)
    assert kinds.count("TimerCreated") == 1
    assert kinds.count("TimerFired") == 1


def test_zero_delay_timer_fires(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("ZeroTimer")
        def zero(ctx, _):
            value = yield ctx.schedule_timer(0)
            return ["fired", value]

    start_runtime(register)
    iid = uid("zero")
    client.start_orchestration(iid, "ZeroTimer", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == ["fired", None]


def test_all_returns_ok_and_err_entries_in_input_order(start_runtime, client):
    def register(rt):
        def square(ctx, n):
            if n < 0:
                raise ValueError(f"negative input {n}")
            return n * n

        rt.register_activity("Square", square)

        @rt.register_orchestration("FanOut")
        def fan_out(ctx, numbers):
            results = yield ctx.all([ctx.schedule_activity("Square", n) for n in numbers])
            return results

    start_runtime(register)
    iid = uid("fanout")
    client.start_orchestration(iid, "FanOut", [3, -2, 5])
    results = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert len(results) == 3
    assert results[0] == {"ok": 9}
    assert results[2] == {"ok": 25}
    assert set(results[1]) == {"err"}
    assert "negative input -2" in results[1]["err"]


def test_all_typed_unwraps_values(start_runtime, client):
    def register(rt):
        rt.register_activity("Describe", lambda ctx, n: {"n": n, "even": n % 2 == 0})

        @rt.register_orchestration("FanOutTyped")
        def fan_out(ctx, count):
            results = yield ctx.all_typed(
                [ctx.schedule_activity("Describe", i) for i in range(count)]
            )
            return results

    start_runtime(register)
    iid = uid("alltyped")
    client.start_orchestration(iid, "FanOutTyped", 3)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [
        {"n": 0, "even": True}, {"n": 1, "even": False}, {"n": 2, "even": True}]


def test_all_with_activity_and_timers(start_runtime, client):
    def register(rt):
        rt.register_activity("Echo", lambda ctx, v: v)

        @rt.register_orchestration("JoinTimers")
        def join(ctx, _):
            results = yield ctx.all(
                [ctx.schedule_timer(50), ctx.schedule_activity("Echo", "a"), ctx.schedule_timer(10)]
            )
            return results

    start_runtime(register)
    iid = uid("jointimers")
    client.start_orchestration(iid, "JoinTimers", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [
        {"ok": None}, {"ok": "a"}, {"ok": None}]


def test_all_with_event_wait_completes_when_event_arrives(start_runtime, client):
    def register(rt):
        rt.register_activity("Echo", lambda ctx, v: v)

        @rt.register_orchestration("JoinEvent")
        def join(ctx, _):
            ctx.set_custom_status("waiting")
            results = yield ctx.all(
                [ctx.wait_for_event("approval"), ctx.schedule_activity("Echo", "work")]
            )
            return results

    start_runtime(register)
    iid = uid("joinevent")
    client.start_orchestration(iid, "JoinEvent", None)
    wait_for_custom_status(client, iid, "waiting")
    client.raise_event(iid, "approval", {"by": "alice"})
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [
        {"ok": {"by": "alice"}}, {"ok": "work"}]


def test_dynamic_fan_out_of_n_activities(start_runtime, client):
    def register(rt):
        rt.register_activity("Double", lambda ctx, n: 2 * n)

        @rt.register_orchestration("DynamicFanOut")
        def dynamic(ctx, count):
            sizes = yield ctx.schedule_activity("Double", count)  # the fan-out size is data
            tasks = [ctx.schedule_activity("Double", i) for i in range(sizes)]
            results = yield ctx.all(tasks)
            return {"count": len(results), "sum": sum(r["ok"] for r in results)}

    start_runtime(register)
    iid = uid("dynamic")
    client.start_orchestration(iid, "DynamicFanOut", 10)
    output = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert output == {"count": 20, "sum": 2 * sum(range(20))}
    assert history_kinds(client, iid).count("ActivityCompleted") == 21


def test_timers_due_while_the_dispatcher_is_busy_fire_without_a_poll(start_runtime, client):
    """Many timers falling due while turns run: each must wake the dispatcher, none may wait
    for the idle poll (set far beyond the wait here, so a lost wake-up fails the test)."""

    def register(rt):
        @rt.register_orchestration("Nap")
        def nap(ctx, ms):
            yield ctx.schedule_timer(ms)
            return ms

    start_runtime(register, idle_poll_interval_ms=600_000, dispatcher_poll_interval_ms=600_000)
    ids = [uid("nap") for _ in range(200)]
    for n, iid in enumerate(ids):
        client.start_orchestration(iid, "Nap", 20 + n % 7)
    for n, iid in enumerate(ids):
        assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == 20 + n % 7
