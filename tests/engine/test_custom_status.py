"""Custom status: set/reset from orchestrations, visible to clients, carried over CAN."""

from __future__ import annotations

import time

import pytest

from duraflow import OperationTimedOut

from .support import TIMEOUT_MS, completed, uid, wait_for_custom_status


def test_set_and_reset_custom_status_visible_to_client(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Phases")
        def phases(ctx, _):
            ctx.set_custom_status("phase-1")
            yield ctx.wait_for_event("next")
            ctx.reset_custom_status()
            yield ctx.wait_for_event("next")
            ctx.set_custom_status({"phase": 3})  # non-strings are stored as str()
            return "done"

    start_runtime(register)
    iid = uid("phases")
    client.start_orchestration(iid, "Phases", None)

    first = client.wait_for_status_change(iid, 0, 20, TIMEOUT_MS)
    assert first.custom_status == "phase-1"
    assert first.custom_status_version >= 1
    assert first.status == "Running"

    client.raise_event(iid, "next", None)
    second = client.wait_for_status_change(iid, first.custom_status_version, 20, TIMEOUT_MS)
    assert second.custom_status is None
    assert second.custom_status_version > first.custom_status_version

    client.raise_event(iid, "next", None)
    final = client.wait_for_orchestration(iid, TIMEOUT_MS)
    assert completed(final) == "done"
    assert final.custom_status == str({"phase": 3})
    assert final.custom_status_version > second.custom_status_version


def test_wait_for_status_change_times_out(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Quiet")
        def quiet(ctx, _):
            ctx.set_custom_status("only-change")
            yield ctx.wait_for_event("never")

    start_runtime(register)
    iid = uid("quiet")
    client.start_orchestration(iid, "Quiet", None)
    seen = wait_for_custom_status(client, iid, "only-change")
    started = time.monotonic()
    with pytest.raises(RuntimeError) as info:
        client.wait_for_status_change(iid, seen.custom_status_version, 20, 300)
    elapsed = time.monotonic() - started
    assert str(info.value) == "Operation timed out"
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, OperationTimedOut)
    assert 0.25 <= elapsed < 5


def test_get_custom_status_reflects_history_across_turns_and_continue_as_new(
    start_runtime, client
):
    def register(rt):
        rt.register_activity("Tick", lambda ctx, _: "tick")

        @rt.register_orchestration("StatusKeeper")
        def keeper(ctx, generation):
            seen = {"start": ctx.get_custom_status()}
            if generation == 0:
                ctx.set_custom_status("set-in-gen-0")
                yield ctx.schedule_activity("Tick", None)
                seen["after_turn"] = ctx.get_custom_status()
                ctx.set_custom_status(f"carried {seen['after_turn']}")
                return (yield ctx.continue_as_new(1))
            yield ctx.schedule_activity("Tick", None)
            seen["after_turn"] = ctx.get_custom_status()
            ctx.reset_custom_status()
            seen["after_reset"] = ctx.get_custom_status()
            yield ctx.schedule_activity("Tick", None)
            seen["end"] = ctx.get_custom_status()
            return seen

    start_runtime(register)
    iid = uid("keeper")
    client.start_orchestration(iid, "StatusKeeper", 0)
    result = client.wait_for_orchestration(iid, TIMEOUT_MS)
    assert completed(result) == {
        "start": "carried set-in-gen-0",  # carried from execution 1
        "after_turn": "carried set-in-gen-0",
        "after_reset": None,
        "end": None,
    }
    assert result.custom_status is None


def test_custom_status_persists_across_continue_as_new_for_client(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Persisting")
        def persisting(ctx, generation):
            if generation == 0:
                ctx.set_custom_status("from generation 0")
                return (yield ctx.continue_as_new(1))
            ctx.set_custom_status(f"gen1 saw: {ctx.get_custom_status()}")
            yield ctx.wait_for_event("finish")
            return "ok"

    start_runtime(register)
    iid = uid("persist")
    client.start_orchestration(iid, "Persisting", 0)
    status = wait_for_custom_status(client, iid, "gen1 saw: from generation 0")
    assert status.status == "Running"
    client.raise_event(iid, "finish", None)
    final = client.wait_for_orchestration(iid, TIMEOUT_MS)
    assert completed(final) == "ok"
    assert final.custom_status == "gen1 saw: from generation 0"


def test_several_sets_in_one_turn_bump_version_once(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("ManySets")
        def many_sets(ctx, _):
            ctx.set_custom_status("a")
            ctx.set_custom_status("b")
            ctx.set_custom_status("c")
            yield ctx.wait_for_event("go")
            ctx.set_custom_status("d")
            ctx.reset_custom_status()
            ctx.set_custom_status("e")
            return ctx.get_custom_status()

    start_runtime(register)
    iid = uid("many-sets")
    client.start_orchestration(iid, "ManySets", None)
    first = wait_for_custom_status(client, iid, "c")
    assert first.custom_status_version == 1
    client.raise_event(iid, "go", None)
    final = client.wait_for_orchestration(iid, TIMEOUT_MS)
    assert completed(final) == "e"
    assert final.custom_status == "e"
    assert final.custom_status_version == 2
