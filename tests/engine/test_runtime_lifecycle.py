"""Runtime lifecycle: metrics snapshots, shutdown timing, waits that time out."""

from __future__ import annotations

import threading
import time

import pytest

from duraflow import MetricsSnapshot, OperationTimedOut, RuntimeOptions

from .support import TIMEOUT_MS, TIMEOUT_S, completed, poll_until, uid


def test_metrics_snapshot_counts_while_running_and_is_none_after_shutdown(
    start_runtime, client
):
    def register(rt):
        rt.register_activity("Work", lambda ctx, n: n)

        @rt.register_orchestration("Measured")
        def measured(ctx, n):
            return (yield ctx.schedule_activity("Work", n))

    runtime = start_runtime(register)
    before = runtime.metrics_snapshot()
    assert isinstance(before, MetricsSnapshot)
    iid = uid("metrics")
    client.start_orchestration(iid, "Measured", 5)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == 5
    after = runtime.metrics_snapshot()
    assert after is not None
    assert after.orch_starts >= 1
    assert after.orch_completions >= 1
    assert after.activity_success >= 1
    assert after.orch_starts > before.orch_starts
    assert after.activity_success > before.activity_success
    runtime.shutdown(5000)
    assert runtime.metrics_snapshot() is None


def test_metrics_count_failures(start_runtime, client):
    def register(rt):
        def broken(ctx, _):
            raise RuntimeError("nope")

        rt.register_activity("Broken", broken)

        @rt.register_orchestration("FailsMeasured")
        def fails(ctx, _):
            yield ctx.schedule_activity("Broken", None)

    runtime = start_runtime(register)
    iid = uid("metrics-fail")
    client.start_orchestration(iid, "FailsMeasured", None)
    assert client.wait_for_orchestration(iid, TIMEOUT_MS).status == "Failed"
    snapshot = runtime.metrics_snapshot()
    assert snapshot.activity_app_errors >= 1
    assert snapshot.orch_failures >= 1
    assert snapshot.orch_application_errors >= 1


def test_idle_shutdown_returns_promptly(start_runtime):
    runtime = start_runtime(lambda rt: rt.register_orchestration("Idle", lambda ctx, _: None))
    started = time.monotonic()
    runtime.shutdown(5000)
    assert time.monotonic() - started < 2.0


def test_shutdown_with_long_activity_returns_after_about_the_timeout(start_runtime, client):
    running = threading.Event()
    release = threading.Event()

    def register(rt):
        def endless(ctx, _):
            running.set()
            release.wait(3 * TIMEOUT_S)
            return "released"

        rt.register_activity("Endless", endless)

        @rt.register_orchestration("Busy")
        def busy(ctx, _):
            return (yield ctx.schedule_activity("Endless", None))

    runtime = start_runtime(register)
    try:
        client.start_orchestration(uid("busy"), "Busy", None)
        assert running.wait(TIMEOUT_S)
        started = time.monotonic()
        runtime.shutdown(1000)
        elapsed = time.monotonic() - started
    finally:
        release.set()  # let the worker thread finish
    assert 0.8 <= elapsed < 4.0, f"shutdown(1000) took {elapsed:.2f}s"


def test_wait_for_orchestration_on_never_started_id_times_out(start_runtime, client):
    start_runtime()
    started = time.monotonic()
    with pytest.raises(RuntimeError) as info:
        client.wait_for_orchestration(uid("never-started"), 300)
    assert str(info.value) == "Operation timed out"
    assert isinstance(info.value, OperationTimedOut)
    assert isinstance(info.value, TimeoutError)
    assert 0.25 <= time.monotonic() - started < 5


def test_get_status_of_unknown_instance_is_not_found(client):
    result = client.get_status(uid("unknown"))
    assert result.status == "NotFound"
    assert result.output is None and result.error is None
    assert result.custom_status is None and result.custom_status_version == 0


def test_messages_for_never_created_instance_do_not_block_others(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("AfterGhosts")
        def after(ctx, _):
            return "not blocked"
            yield

    ghost = uid("ghost")
    client.raise_event(ghost, "hello", 1)
    client.cancel_instance(ghost, "nobody home")
    start_runtime(register)
    iid = uid("after-ghosts")
    client.start_orchestration(iid, "AfterGhosts", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "not blocked"
    assert client.get_status(ghost).status == "NotFound"


def test_duplicate_start_runs_one_execution(start_runtime, client):
    runs: list[str] = []

    def register(rt):
        def record(ctx, value):
            runs.append(value)
            return value

        rt.register_activity("Record", record)

        @rt.register_orchestration("Once")
        def once(ctx, value):
            return (yield ctx.schedule_activity("Record", value))

    start_runtime(register)
    iid = uid("dup-start")
    client.start_orchestration(iid, "Once", "first")
    client.start_orchestration(iid, "Once", "second")
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "first"
    client.start_orchestration(iid, "Once", "third")  # terminal: dropped, not restarted
    poll_until(lambda: client.get_queue_depths().orchestrator_queue == 0,
               "the late start to be consumed")
    assert completed(client.get_status(iid)) == "first"
    assert client.list_executions(iid) == [1]
    assert runs == ["first"]


def test_second_start_raises(start_runtime):
    runtime = start_runtime()
    with pytest.raises(RuntimeError):
        runtime.start()


def test_invalid_runtime_options_are_rejected():
    with pytest.raises(ValueError, match="orchestrator_lock_timeout_ms"):
        RuntimeOptions(orchestrator_lock_timeout_ms=0)
    with pytest.raises(TypeError, match="no_such_option"):
        RuntimeOptions(no_such_option=1)
    options = RuntimeOptions(dispatcher_poll_interval_ms=50)
    with pytest.raises(AttributeError):
        options.dispatcher_poll_interval_ms = 10


def test_registration_after_start_takes_effect(start_runtime, client):
    runtime = start_runtime()
    runtime.register_activity("Late", lambda ctx, v: f"late {v}")

    @runtime.register_orchestration("LateOrch")
    def late(ctx, v):
        return (yield ctx.schedule_activity("Late", v))

    iid = uid("late-registration")
    client.start_orchestration(iid, "LateOrch", "registration")
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "late registration"


def test_activity_handed_over_as_the_runtime_stops_is_given_back_not_failed(
    provider, client
):
    """Start, then stop at once: a turn in flight may still claim its activity for the
    stopping runtime. That activity must go back to the queue for the next runtime, never
    fail the orchestration because the stopped runtime cannot run it any more."""
    from duraflow import Runtime

    def register(rt):
        rt.register_activity("Tick", lambda ctx, _: "ticked")

        def stop_resume(ctx, _):
            return f"done:{(yield ctx.schedule_activity('Tick', None))}"

        rt.register_orchestration("StopResume", stop_resume)

    for _ in range(15):
        first = Runtime(provider, RuntimeOptions(dispatcher_poll_interval_ms=50))
        register(first)
        first.start()
        iid = uid("stop-resume")
        client.start_orchestration(iid, "StopResume", None)
        first.shutdown(50)
        second = Runtime(provider, RuntimeOptions(dispatcher_poll_interval_ms=50))
        register(second)
        second.start()
        try:
            assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "done:ticked"
        finally:
            second.shutdown(1_000)
