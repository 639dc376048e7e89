"""Values that cannot cross a boundary as JSON, and malformed orchestration code."""

from __future__ import annotations

import pytest

from duraflow import Runtime

from .support import TIMEOUT_MS, completed, failed, uid


class NotJson:
    def __repr__(self) -> str:
        return "<NotJson>"


def test_non_json_start_input_raises_type_error_and_writes_nothing(start_runtime, client):
    start_runtime(lambda rt: rt.register_orchestration("Anything", lambda ctx, _: None))
    iid = uid("bad-start")
    with pytest.raises(TypeError):
        client.start_orchestration(iid, "Anything", {"when": NotJson()})
    assert client.get_status(iid).status == "NotFound"
    assert client.get_queue_depths().orchestrator_queue == 0
    assert iid not in client.list_all_instances()


def test_non_json_activity_input_raises_type_error_at_call_site(start_runtime, client):
    def register(rt):
        rt.register_activity("Echo", lambda ctx, v: v)

        @rt.register_orchestration("BadActivityInput")
        def bad_input(ctx, _):
            try:
                task = ctx.schedule_activity("Echo", {1, 2, 3})  # a set is not JSON
            except TypeError as e:
                recovered = yield ctx.schedule_activity("Echo", "recovered")
                return {"caught": type(e).__name__, "then": recovered}
            yield task
            return "no error"

    start_runtime(register)
    iid = uid("bad-activity-input")
    client.start_orchestration(iid, "BadActivityInput", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "caught": "TypeError", "then": "recovered"}


def test_activity_returning_non_json_value_fails_the_activity(start_runtime, client):
    def register(rt):
        rt.register_activity("ReturnsObject", lambda ctx, _: NotJson())

        @rt.register_orchestration("UsesBadActivity")
        def uses(ctx, _):
            try:
                yield ctx.schedule_activity("ReturnsObject", None)
            except Exception as e:
                return f"activity failed: {e}"
            return "activity unexpectedly succeeded"

    start_runtime(register)
    iid = uid("bad-activity-output")
    client.start_orchestration(iid, "UsesBadActivity", None)
    output = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert output.startswith("activity failed: ")
    assert "ReturnsObject" in output
    assert "JSON" in output and "serial" in output.lower()


def test_orchestration_returning_non_json_value_fails_instance(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("BadOutput")
        def bad_output(ctx, _):
            yield ctx.schedule_timer(1)
            return NotJson()

    start_runtime(register)
    iid = uid("bad-output")
    client.start_orchestration(iid, "BadOutput", None)
    error = failed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert "JSON" in error


def test_plain_function_orchestration_completes_with_return_value(start_runtime, client):
    def register(rt):
        rt.register_orchestration("Plain", lambda ctx, x: {"plain": x, "id": ctx.instance_id})

    start_runtime(register)
    iid = uid("plain")
    client.start_orchestration(iid, "Plain", [1, 2])
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "plain": [1, 2], "id": iid}


def test_async_orchestration_is_rejected_at_registration(provider):
    runtime = Runtime(provider)

    async def async_orchestration(ctx, _):
        return None

    with pytest.raises(TypeError, match="async"):
        runtime.register_orchestration("AsyncOrch", async_orchestration)
    with pytest.raises(TypeError):
        runtime.register_orchestration_versioned("AsyncOrch", "2.0.0", async_orchestration)
    runtime.shutdown(0)  # never started: nothing to stop, must not raise


def test_yielding_non_task_throws_type_error_into_orchestration(start_runtime, client):
    def register(rt):
        rt.register_activity("Echo", lambda ctx, v: v)

        @rt.register_orchestration("YieldsJunk")
        def yields_junk(ctx, _):
            caught = []
            for junk in (42, "a string", {"no": "type"}, None):
                try:
                    yield junk
                except TypeError as e:
                    caught.append(bool(str(e)))
            after = yield ctx.schedule_activity("Echo", "still works")
            return {"caught": caught, "after": after}

    start_runtime(register)
    iid = uid("yields-junk")
    client.start_orchestration(iid, "YieldsJunk", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "caught": [True, True, True, True], "after": "still works"}


def test_uncaught_non_task_yield_fails_instance(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("YieldsNumber")
        def yields_number(ctx, _):
            yield 7

    start_runtime(register)
    iid = uid("yields-number")
    client.start_orchestration(iid, "YieldsNumber", None)
    error = failed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert "TypeError" in error
