"""The per-instance KV store, end to end: durable across turns, replays and continue-as-new,
readable (and awaitable) by clients and by other orchestrations."""

from __future__ import annotations

import json

from .support import TIMEOUT_MS, completed, uid


def test_read_modify_write_counter_is_deterministic_across_turns(start_runtime, client):
    def register(rt):
        rt.register_activity("Work", lambda ctx, n: n)

        @rt.register_orchestration("Counter")
        def counter(ctx, rounds):
            for i in range(rounds):
                count = int(ctx.get_kv_value("count") or "0")
                yield ctx.schedule_activity("Work", i)
                ctx.set_kv_value("count", str(count + 1))
            return ctx.get_kv_value("count")

    start_runtime(register)
    iid = uid("kv-counter")
    client.start_orchestration(iid, "Counter", 5)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "5"
    assert client.get_kv_value(iid, "count") == "5"


def test_values_are_text_and_non_strings_are_stored_as_json(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Typed")
        def typed(ctx, _):
            ctx.set_kv_value("text", "plain")
            ctx.set_kv_value("obj", {"a": 1})
            ctx.set_kv_value("num", 49)
            return [ctx.get_kv_all_keys(), ctx.get_kv_length()]
            yield  # a generator

    start_runtime(register)
    iid = uid("kv-typed")
    client.start_orchestration(iid, "Typed", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [
        ["num", "obj", "text"], 3
    ]
    assert client.get_kv_value(iid, "text") == "plain"
    assert client.get_kv_value_typed(iid, "obj") == {"a": 1}
    assert client.get_kv_value(iid, "num") == "49"


def test_kv_survives_continue_as_new_and_clear_all(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Generations")
        def generations(ctx, n):
            seen = ctx.get_kv_all_values()
            ctx.set_kv_value(f"gen{n}", str(n))
            if n < 3:
                yield ctx.schedule_timer(1)
                return (yield ctx.continue_as_new(n + 1))
            before = dict(seen)
            ctx.clear_all_kv_values()
            ctx.set_kv_value("final", "yes")
            return before

    start_runtime(register)
    iid = uid("kv-can")
    client.start_orchestration(iid, "Generations", 1)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {"gen1": "1", "gen2": "2"}
    assert client.get_kv_all_values(iid) == {"final": "yes"}
    assert client.list_executions(iid) == [1, 2, 3]


def test_client_waits_for_a_value_set_later(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Responder")
        def responder(ctx, _):
            ctx.set_kv_value("state", "ready")
            request = yield ctx.wait_for_event("request")
            ctx.set_kv_value("response", request[::-1])
            yield ctx.wait_for_event("stop")
            return "done"

    start_runtime(register)
    iid = uid("kv-wait")
    client.start_orchestration(iid, "Responder", None)
    assert client.wait_for_kv_value(iid, "state", TIMEOUT_MS) == "ready"
    client.raise_event(iid, "request", "olleh")
    assert client.wait_for_kv_value(iid, "response", TIMEOUT_MS) == "hello"
    try:
        client.wait_for_kv_value(iid, "never", 200)
    except TimeoutError as exc:
        assert "never" in str(exc)
    else:
        raise AssertionError("wait_for_kv_value must time out")
    client.raise_event(iid, "stop", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "done"


def test_orchestration_reads_another_instances_value(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Producer")
        def producer(ctx, n):
            ctx.set_kv_value("result", str(n * n))
            yield ctx.wait_for_event("stop")

        @rt.register_orchestration("Consumer")
        def consumer(ctx, producer_id):
            missing = yield ctx.get_kv_value_from_instance(producer_id, "nope")
            value = yield ctx.get_kv_value_from_instance(producer_id, "result")
            return [missing, value]

    start_runtime(register)
    producer, consumer = uid("producer"), uid("consumer")
    client.start_orchestration(producer, "Producer", 7)
    client.wait_for_kv_value(producer, "result", TIMEOUT_MS)
    client.start_orchestration(consumer, "Consumer", producer)
    assert completed(client.wait_for_orchestration(consumer, TIMEOUT_MS)) == [None, "49"]
    client.raise_event(producer, "stop", None)


def test_prune_clears_keys_set_before_the_cutoff(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Pruner")
        def pruner(ctx, _):
            for key in ("c", "a", "b"):
                ctx.set_kv_value(key, "old")
            yield ctx.schedule_timer(20)
            now = yield ctx.utc_now()
            ctx.set_kv_value("fresh", "new")
            cleared = ctx.prune_kv_values_updated_before(now)
            yield ctx.schedule_timer(1)  # one more turn: the prune must replay identically
            return [cleared, sorted(ctx.get_kv_all_keys())]

    start_runtime(register)
    iid = uid("kv-prune")
    client.start_orchestration(iid, "Pruner", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [3, ["fresh"]]


def test_oversized_value_raises_at_the_call_site(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Big")
        def big(ctx, _):
            try:
                ctx.set_kv_value("big", "x" * 70_000)
            except ValueError as exc:
                return str(exc)
            yield ctx.schedule_timer(1)

    start_runtime(register)
    iid = uid("kv-big")
    client.start_orchestration(iid, "Big", None)
    message = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert "70000 bytes" in message and "65536" in message
    assert client.get_kv_value(iid, "big") is None


def test_orchestration_stats_count_kv(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Stats")
        def stats(ctx, _):
            ctx.set_kv_value("status", "running")
            ctx.set_kv_value("result", json.dumps({"value": 42}))
            return "ok"
            yield

    start_runtime(register)
    iid = uid("kv-stats")
    client.start_orchestration(iid, "Stats", None)
    completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    stats = client.get_orchestration_stats(iid)
    assert stats.kv_user_key_count == 2
    assert stats.kv_total_value_bytes == len("running") + len(json.dumps({"value": 42}))
