"""KV store details beyond test_kv_store.py: same-turn visibility and single-key clears,
client reads while running, timeouts, replay after a restart, and both size limits."""

from __future__ import annotations

import json

import pytest

from duraflow import MAX_KV_KEYS, MAX_KV_VALUE_BYTES

from .support import TIMEOUT_MS, completed, uid, wait_for_custom_status


def test_kv_values_are_visible_in_orchestration_and_to_clients(start_runtime, client):
    def register(rt):
        rt.register_activity("Noop", lambda ctx, _: None)

        @rt.register_orchestration("Kv")
        def kv(ctx, _):
            ctx.set_kv_value("name", "duraflow")
            ctx.set_kv_value("config", {"retries": 3})
            seen = {"same_turn": ctx.get_kv_value("name")}
            yield ctx.schedule_activity("Noop", None)
            seen["next_turn"] = ctx.get_kv_value("name")
            seen["keys"] = sorted(ctx.get_kv_all_keys())
            seen["length"] = ctx.get_kv_length()
            ctx.set_custom_status("written")
            yield ctx.wait_for_event("go")
            ctx.clear_kv_value("name")
            seen["after_clear"] = ctx.get_kv_value("name")
            return seen

    start_runtime(register)
    iid = uid("kv")
    client.start_orchestration(iid, "Kv", None)
    wait_for_custom_status(client, iid, "written")
    assert client.get_kv_value(iid, "name") == "duraflow"
    assert client.get_kv_value_typed(iid, "config") == {"retries": 3}
    assert json.loads(client.get_kv_value(iid, "config")) == {"retries": 3}
    assert client.get_kv_value(iid, "missing") is None
    client.raise_event(iid, "go", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {
        "same_turn": "duraflow",
        "next_turn": "duraflow",
        "keys": ["config", "name"],
        "length": 2,
        "after_clear": None,
    }
    assert client.get_kv_value(iid, "name") is None
    assert client.get_kv_value_typed(iid, "config") == {"retries": 3}


def test_wait_for_kv_value_returns_once_written(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("KvLater")
        def kv_later(ctx, _):
            yield ctx.wait_for_event("write")
            ctx.set_kv_value("result", [1, 2, 3])
            yield ctx.wait_for_event("never")

    start_runtime(register)
    iid = uid("kv-wait")
    client.start_orchestration(iid, "KvLater", None)
    with pytest.raises(TimeoutError):
        client.wait_for_kv_value(iid, "result", 200)
    client.raise_event(iid, "write", None)
    raw = client.wait_for_kv_value(iid, "result", TIMEOUT_MS)
    assert isinstance(raw, str) and json.loads(raw) == [1, 2, 3]  # non-strings kept as JSON
    assert client.wait_for_kv_value_typed(iid, "result", TIMEOUT_MS) == [1, 2, 3]


def test_kv_read_modify_write_survives_restart(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("KvRestart")
        def kv_restart(ctx, _):
            for step in range(2):
                current = int(ctx.get_kv_value("n") or "0")
                ctx.set_kv_value("n", str(current + 10))
                ctx.set_custom_status(f"step {step}")
                yield ctx.wait_for_event("next")
            return ctx.get_kv_value("n")

    first = start_runtime(register)
    iid = uid("kv-restart")
    client.start_orchestration(iid, "KvRestart", None)
    wait_for_custom_status(client, iid, "step 0")
    client.raise_event(iid, "next", None)
    wait_for_custom_status(client, iid, "step 1")
    first.shutdown(5000)
    start_runtime(register)  # rebuilds the instance from history
    client.raise_event(iid, "next", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "20"


def test_kv_limits_raise_value_error_at_the_call(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("KvLimits")
        def kv_limits(ctx, _):
            caught = []
            try:
                ctx.set_kv_value("big", "x" * (MAX_KV_VALUE_BYTES + 1))
            except ValueError:
                caught.append("value too big")
            for i in range(MAX_KV_KEYS):
                ctx.set_kv_value(f"k{i}", "v")
            try:
                ctx.set_kv_value("one-too-many", "v")
            except ValueError:
                caught.append("too many keys")
            yield ctx.schedule_timer(1)
            return [caught, ctx.get_kv_length(), ctx.get_kv_value("big")]

    start_runtime(register)
    iid = uid("kv-limits")
    client.start_orchestration(iid, "KvLimits", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [
        ["value too big", "too many keys"], MAX_KV_KEYS, None]
