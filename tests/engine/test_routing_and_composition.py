"""Activity routing (tags, sessions), nested composition, ``parse_result``, tracing."""

from __future__ import annotations

import logging

import pytest

from duraflow import TagFilter, parse_result

from .support import TIMEOUT_MS, completed, uid, wait_for_custom_status


def test_tagged_activity_runs_only_on_a_worker_accepting_the_tag(start_runtime, client):
    def orchestrations(rt):
        rt.register_activity("Where", lambda ctx, _: f"default worker, tag={ctx.tag()}")

        @rt.register_orchestration("Routed")
        def routed(ctx, _):
            results = yield ctx.all([
                ctx.schedule_activity("Where", None),
                ctx.schedule_activity("Where", None).with_tag("gpu"),
            ])
            return parse_result(results)

    def gpu_worker(rt):
        rt.register_activity("Where", lambda ctx, _: f"gpu worker, tag={ctx.tag()}")

    start_runtime(orchestrations)  # default_only: untagged activities
    start_runtime(gpu_worker, orchestration_concurrency=0,
                  worker_tag_filter=TagFilter.tags(["gpu"]))
    iid = uid("tags")
    client.start_orchestration(iid, "Routed", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [
        "default worker, tag=None", "gpu worker, tag=gpu"]


def test_tagged_activity_without_matching_worker_loses_race_to_timer(start_runtime, client):
    def register(rt):
        rt.register_activity("Unroutable", lambda ctx, _: "ran")

        @rt.register_orchestration("NoGpu")
        def no_gpu(ctx, _):
            winner = yield ctx.race(
                ctx.schedule_activity("Unroutable", None).with_tag("gpu"),
                ctx.schedule_timer(300),
            )
            return winner["index"]

    start_runtime(register)
    iid = uid("no-gpu")
    client.start_orchestration(iid, "NoGpu", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == 1


def test_session_id_reaches_the_activity(start_runtime, client):
    def register(rt):
        rt.register_activity("InSession", lambda ctx, n: [ctx.session_id, n])

        @rt.register_orchestration("Sessions")
        def sessions(ctx, _):
            a = yield ctx.schedule_activity_on_session("InSession", 1, "session-a")
            b = yield ctx.schedule_activity("InSession", 2, session_id="session-b")
            c = yield ctx.schedule_activity("InSession", 3)
            return [a, b, c]

    start_runtime(register)
    iid = uid("sessions")
    client.start_orchestration(iid, "Sessions", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [
        ["session-a", 1], ["session-b", 2], [None, 3]]


def test_race_and_all_nest(start_runtime, client):
    def register(rt):
        rt.register_activity("Echo", lambda ctx, v: v)

        @rt.register_orchestration("Nested")
        def nested(ctx, _):
            winner = yield ctx.race(
                ctx.all([ctx.schedule_activity("Echo", "a"), ctx.schedule_activity("Echo", "b")]),
                ctx.schedule_timer(60_000),
            )
            joined = yield ctx.all([
                ctx.race(ctx.schedule_activity("Echo", "c"), ctx.schedule_timer(60_000)),
                ctx.schedule_timer(1),
            ])
            return {"race": winner, "all": joined}

    start_runtime(register)
    iid = uid("nested")
    client.start_orchestration(iid, "Nested", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "race": {"index": 0, "value": [{"ok": "a"}, {"ok": "b"}]},
        "all": [{"ok": {"index": 0, "value": "c"}}, {"ok": None}],
    }


def test_deterministic_values_inside_all(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("ValuesInAll")
        def values_in_all(ctx, _):
            guid, now = yield ctx.all_typed([ctx.new_guid(), ctx.utc_now()])
            return [len(guid), now > 0]

    start_runtime(register)
    iid = uid("values-in-all")
    client.start_orchestration(iid, "ValuesInAll", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [36, True]


def test_parse_result_unwraps_and_raises():
    assert parse_result([{"ok": 1}, {"ok": None}, {"err": "x"}]) == [1, None, {"err": "x"}]
    assert parse_result({"ok": {"a": 1}}) == {"a": 1}
    assert parse_result({"index": 0, "value": 2}) == {"index": 0, "value": 2}
    with pytest.raises(Exception, match="went wrong"):
        parse_result({"err": "went wrong"})


@pytest.mark.parametrize("backoff", ["none", "NONE"])
def test_retry_backoff_none_has_no_delay(start_runtime, client, backoff):
    attempts: list[int] = []

    def register(rt):
        def fails_once(ctx, _):
            attempts.append(1)
            if len(attempts) == 1:
                raise RuntimeError("first try fails")
            return "second try works"

        rt.register_activity("FailsOnce", fails_once)

        @rt.register_orchestration("NoBackoff")
        def no_backoff(ctx, mode):
            return (yield ctx.schedule_activity_with_retry(
                "FailsOnce", None, {"max_attempts": 2, "backoff": mode}))

    start_runtime(register)
    iid = uid("no-backoff")
    client.start_orchestration(iid, "NoBackoff", backoff)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "second try works"
    kinds = [e.kind for e in client.read_execution_history(iid, 1)]
    assert "TimerCreated" not in kinds


def test_retry_with_unknown_backoff_raises_value_error_at_yield(start_runtime, client):
    def register(rt):
        rt.register_activity("Echo", lambda ctx, v: v)

        @rt.register_orchestration("BadBackoff")
        def bad_backoff(ctx, _):
            try:
                yield ctx.schedule_activity_with_retry(
                    "Echo", 1, {"max_attempts": 2, "backoff": "sometimes"})
            except ValueError as e:
                return f"ValueError: {e}"
            return "accepted"

    start_runtime(register)
    iid = uid("bad-backoff")
    client.start_orchestration(iid, "BadBackoff", None)
    output = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert output.startswith("ValueError: ")
    assert "sometimes" in output


def test_traces_are_not_repeated_when_history_is_replayed(start_runtime, client, caplog):
    """``ctx.trace_*`` is suppressed while replaying, so a runtime that has to rebuild an
    instance from history does not log its earlier steps again."""
    marker = uid("trace")

    def register(rt):
        @rt.register_orchestration("Tracer")
        def tracer(ctx, _):
            ctx.trace_info(f"{marker} before wait")
            ctx.set_custom_status("waiting")
            yield ctx.wait_for_event("go")
            ctx.trace_warn(f"{marker} after wait")
            return "traced"

    caplog.set_level(logging.DEBUG, logger="duraflow")
    first = start_runtime(register)
    iid = uid("tracer")
    client.start_orchestration(iid, "Tracer", None)
    wait_for_custom_status(client, iid, "waiting")
    first.shutdown(5000)
    start_runtime(register)
    client.raise_event(iid, "go", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "traced"
    messages = [r.getMessage() for r in caplog.records if marker in r.getMessage()]
    assert messages == [f"{marker} before wait", f"{marker} after wait"]
    levels = [r.levelname for r in caplog.records if marker in r.getMessage()]
    assert levels == ["INFO", "WARNING"]


def test_race_prefers_first_task_when_several_are_ready_together(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Biased")
        def biased(ctx, _):
            a = yield ctx.race(ctx.utc_now(), ctx.new_guid())  # both resolve in the same turn
            b = yield ctx.race(ctx.new_guid(), ctx.utc_now())
            return [a["index"], isinstance(a["value"], int), b["index"], len(b["value"])]

    start_runtime(register)
    iid = uid("biased")
    client.start_orchestration(iid, "Biased", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [0, True, 0, 36]


def test_all_of_no_tasks_is_an_empty_list(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("EmptyJoin")
        def empty_join(ctx, _):
            plain = yield ctx.all([])
            typed = yield ctx.all_typed([])
            return [plain, typed]

    start_runtime(register)
    iid = uid("empty-join")
    client.start_orchestration(iid, "EmptyJoin", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [[], []]
