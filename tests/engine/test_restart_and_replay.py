"""Durability across runtimes: resume from history after a restart, detect changed code."""

from __future__ import annotations

from duraflow import Client

from .support import TIMEOUT_MS, TIMEOUT_S, completed, failed, uid, wait_for_custom_status


def _register_approval(rt, calls):
    def record(ctx, step):
        calls.append(step)
        return f"did {step}"

    rt.register_activity("Record", record)

    @rt.register_orchestration("Approval")
    def approval(ctx, _):
        before = yield ctx.schedule_activity("Record", "before")
        ctx.set_custom_status("awaiting approval")
        decision = yield ctx.wait_for_event("approve")
        after = yield ctx.schedule_activity("Record", "after")
        return [before, decision, after]


def test_new_runtime_resumes_instance_waiting_for_event(start_runtime, store):
    """Runtime A stops while the instance waits; runtime B, on a new provider object over
    the same storage, finishes it from history without re-running completed work."""
    calls_a: list[str] = []
    calls_b: list[str] = []
    runtime_a = start_runtime(lambda rt: _register_approval(rt, calls_a))
    client_a = store_client(store.provider)
    iid = uid("restart-event")
    client_a.start_orchestration(iid, "Approval", None)
    wait_for_custom_status(client_a, iid, "awaiting approval")
    runtime_a.shutdown(5000)

    reopened = store.reopen()
    client_b = store_client(reopened)
    start_runtime(lambda rt: _register_approval(rt, calls_b), provider=reopened)
    client_b.raise_event(iid, "approve", "yes")
    assert completed(client_b.wait_for_orchestration(iid, TIMEOUT_MS)) == [
        "did before", "yes", "did after"]
    assert calls_a == ["before"]
    assert calls_b == ["after"]  # "before" was not executed again


def test_new_runtime_resumes_instance_waiting_for_timer(start_runtime, store):
    def register(rt):
        @rt.register_orchestration("Napper")
        def napper(ctx, _):
            ctx.set_custom_status("napping")
            yield ctx.schedule_timer(1500)
            return f"woke in execution {ctx.execution_id}"

    runtime_a = start_runtime(register)
    client_a = store_client(store.provider)
    iid = uid("restart-timer")
    client_a.start_orchestration(iid, "Napper", None)
    wait_for_custom_status(client_a, iid, "napping")
    runtime_a.shutdown(5000)
    assert client_a.get_status(iid).status == "Running"

    reopened = store.reopen()
    client_b = store_client(reopened)
    start_runtime(register, provider=reopened)
    assert completed(client_b.wait_for_orchestration(iid, TIMEOUT_MS)) == (
        "woke in execution 1")


def test_changed_code_is_detected_as_nondeterministic(start_runtime, store):
    def original(rt):
        rt.register_activity("ChargeCard", lambda ctx, _: "charged")
        rt.register_activity("SendInvoice", lambda ctx, _: "invoiced")

        @rt.register_orchestration("Checkout")
        def checkout(ctx, _):
            yield ctx.schedule_activity("ChargeCard", None)
            ctx.set_custom_status("charged")
            yield ctx.wait_for_event("ship")
            return "shipped"

    def changed(rt):
        rt.register_activity("ChargeCard", lambda ctx, _: "charged")
        rt.register_activity("SendInvoice", lambda ctx, _: "invoiced")

        @rt.register_orchestration("Checkout")  # same name and version, different steps
        def checkout(ctx, _):
            yield ctx.schedule_activity("SendInvoice", None)
            ctx.set_custom_status("charged")
            yield ctx.wait_for_event("ship")
            return "shipped"

    runtime_a = start_runtime(original)
    client_a = store_client(store.provider)
    iid = uid("nondeterminism")
    client_a.start_orchestration(iid, "Checkout", None)
    wait_for_custom_status(client_a, iid, "charged")
    runtime_a.shutdown(5000)

    reopened = store.reopen()
    client_b = store_client(reopened)
    start_runtime(changed, provider=reopened)
    client_b.raise_event(iid, "ship", None)
    error = failed(client_b.wait_for_orchestration(iid, TIMEOUT_MS))
    assert error.startswith("nondeterministic:")
    assert "ChargeCard" in error
    assert "SendInvoice" in error


def test_extra_step_in_changed_code_is_nondeterministic(start_runtime, store):
    def original(rt):
        @rt.register_orchestration("Steps")
        def steps(ctx, _):
            ctx.set_custom_status("step one")
            yield ctx.wait_for_event("next")
            return "done"

    def changed(rt):
        rt.register_activity("Audit", lambda ctx, _: "audited")

        @rt.register_orchestration("Steps")
        def steps(ctx, _):
            yield ctx.schedule_activity("Audit", None)  # inserted before the recorded wait
            ctx.set_custom_status("step one")
            yield ctx.wait_for_event("next")
            return "done"

    runtime_a = start_runtime(original)
    client_a = store_client(store.provider)
    iid = uid("extra-step")
    client_a.start_orchestration(iid, "Steps", None)
    wait_for_custom_status(client_a, iid, "step one")
    runtime_a.shutdown(5000)

    reopened = store.reopen()
    start_runtime(changed, provider=reopened)
    client_b = store_client(reopened)
    client_b.raise_event(iid, "next", None)
    error = failed(client_b.wait_for_orchestration(iid, TIMEOUT_MS))
    assert error.startswith("nondeterministic:")
    assert "Audit" in error


def test_unknown_orchestration_name_eventually_fails(start_runtime, client):
    start_runtime(lambda rt: rt.register_orchestration("Known", lambda ctx, _: "known"),
                  max_attempts=2)
    iid = uid("unknown-name")
    client.start_orchestration(iid, "NobodyRegisteredThis", None)
    error = failed(client.wait_for_orchestration(iid, int(TIMEOUT_S * 1.5 * 1000)))
    assert "NobodyRegisteredThis" in error


def store_client(provider) -> Client:
    return Client(provider)


def test_unregistered_activity_fails_instance_uncatchably(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("CallsMissing")
        def calls_missing(ctx, _):
            try:
                yield ctx.schedule_activity("NoSuchActivity", None)
            except Exception:
                return "caught (poison must not be catchable)"
            return "ran"

    start_runtime(register, max_attempts=1)
    iid = uid("missing-activity")
    client.start_orchestration(iid, "CallsMissing", None)
    error = failed(client.wait_for_orchestration(iid, int(TIMEOUT_S * 1.5 * 1000)))
    assert error.startswith("poison:")
    assert "NoSuchActivity" in error


def test_large_fan_in_replays_after_restart(start_runtime, store):
    def register(rt):
        rt.register_activity("Id", lambda ctx, n: n)

        @rt.register_orchestration("BigFanIn")
        def big(ctx, count):
            results = yield ctx.all_typed([ctx.schedule_activity("Id", i) for i in range(count)])
            ctx.set_custom_status("joined")
            yield ctx.wait_for_event("finish")
            return sum(results)

    first = start_runtime(register)
    client = store_client(store.provider)
    iid = uid("big-fan-in")
    client.start_orchestration(iid, "BigFanIn", 300)
    wait_for_custom_status(client, iid, "joined", timeout_ms=3 * TIMEOUT_MS)
    first.shutdown(5000)
    reopened = store.reopen()
    start_runtime(register, provider=reopened)
    again = store_client(reopened)
    again.raise_event(iid, "finish", None)
    assert completed(again.wait_for_orchestration(iid, TIMEOUT_MS)) == sum(range(300))


def test_many_instances_complete_concurrently(start_runtime, client):
    def register(rt):
        rt.register_activity("Square", lambda ctx, n: n * n)

        @rt.register_orchestration("Many")
        def many(ctx, n):
            a = yield ctx.schedule_activity("Square", n)
            yield ctx.schedule_timer(5)
            b = yield ctx.schedule_activity("Square", a)
            return b

    start_runtime(register)
    ids = {uid(f"many-{n}"): n for n in range(25)}
    for iid, n in ids.items():
        client.start_orchestration(iid, "Many", n)
    for iid, n in ids.items():
        assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == n ** 4
