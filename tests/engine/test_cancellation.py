"""``client.cancel_instance``: running instances fail as canceled, children too."""

from __future__ import annotations

import threading

from .support import (
    TIMEOUT_MS,
    TIMEOUT_S,
    completed,
    failed,
    history_kinds,
    poll_until,
    uid,
    wait_for_custom_status,
)


def test_cancel_running_instance_fails_with_reason(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Waiter")
        def waiter(ctx, _):
            ctx.set_custom_status("waiting")
            yield ctx.wait_for_event("never")
            return "not canceled"

    start_runtime(register)
    iid = uid("cancel")
    client.start_orchestration(iid, "Waiter", None)
    wait_for_custom_status(client, iid, "waiting")
    client.cancel_instance(iid, "user asked")
    assert failed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "canceled: user asked"
    assert "OrchestrationCancelRequested" in history_kinds(client, iid)


def test_cancel_without_reason(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Waiter")
        def waiter(ctx, _):
            ctx.set_custom_status("waiting")
            yield ctx.schedule_timer(60_000)

    start_runtime(register)
    iid = uid("cancel-noreason")
    client.start_orchestration(iid, "Waiter", None)
    wait_for_custom_status(client, iid, "waiting")
    client.cancel_instance(iid)
    assert failed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "canceled: "


def test_cancel_cascades_to_running_sub_orchestration(start_runtime, client):
    iid = uid("cancel-parent")
    child_id = f"{iid}-child"

    def register(rt):
        @rt.register_orchestration("StuckChild")
        def stuck_child(ctx, _):
            ctx.set_custom_status("child waiting")
            yield ctx.wait_for_event("never")
            return "child done"

        @rt.register_orchestration("ParentOfStuck")
        def parent(ctx, _):
            return (yield ctx.schedule_sub_orchestration_with_id("StuckChild", child_id, None))

    start_runtime(register)
    client.start_orchestration(iid, "ParentOfStuck", None)
    wait_for_custom_status(client, child_id, "child waiting")
    client.cancel_instance(iid, "shutting the tree down")
    assert failed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == (
        "canceled: shutting the tree down")
    assert failed(client.wait_for_orchestration(child_id, TIMEOUT_MS)) == (
        "canceled: parent canceled")


def test_cancel_signals_in_flight_activity(start_runtime, client):
    started = threading.Event()
    saw_cancel = threading.Event()

    def register(rt):
        def long_job(ctx, _):
            started.set()
            if ctx.wait_cancelled(TIMEOUT_S):
                saw_cancel.set()
            return "ignored"

        rt.register_activity("LongJob", long_job)

        @rt.register_orchestration("RunsLongJob")
        def runs(ctx, _):
            return (yield ctx.schedule_activity("LongJob", None))

    start_runtime(register)
    iid = uid("cancel-activity")
    client.start_orchestration(iid, "RunsLongJob", None)
    assert started.wait(TIMEOUT_S)
    client.cancel_instance(iid, "stop the job")
    assert failed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "canceled: stop the job"
    assert saw_cancel.wait(TIMEOUT_S), "the in-flight activity was never told it was cancelled"


def test_cancel_completed_instance_is_a_no_op(start_runtime, client):
    def register(rt):
        rt.register_activity("Work", lambda ctx, _: "worked")

        @rt.register_orchestration("Finisher")
        def finisher(ctx, _):
            return (yield ctx.schedule_activity("Work", None))

    runtime = start_runtime(register)
    iid = uid("cancel-done")
    client.start_orchestration(iid, "Finisher", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "worked"
    kinds_before = history_kinds(client, iid)

    client.cancel_instance(iid, "too late")
    # The cancel message is consumed (acked) without effect.
    poll_until(lambda: client.get_queue_depths().orchestrator_queue == 0,
               "the cancel message to be consumed")
    runtime.shutdown(5000)  # waits for any turn still in flight
    result = client.get_status(iid)
    assert completed(result) == "worked"
    assert history_kinds(client, iid) == kinds_before
