"""Builds in a running engine: pins, the three upgrade policies, and the metric.

Two runtimes share one store, as two deployments of an app would: ``v1`` starts instances
that wait for an event, then ``v2`` starts with code in which one orchestration gained a
step. New starts go to ``v2``; what ``v2`` reproduces (``verified``) or trusts (``auto``)
moves to it; the changed one and a ``pinned`` one finish on ``v1``, and nothing fails.
(tests/cluster/test_build_rollout.py does this with real worker processes.)
"""

from __future__ import annotations

from typing import Any

import pytest

from duraflow import Client, Runtime, RuntimeOptions
from duraflow.runtime import upgrades

from .conftest import RuntimeStarter, Store
from .support import completed, poll_until, uid

ORCHESTRATIONS = ("Changed", "Same", "Fixed", "Trusted")


def register(build: str) -> Any:
    def reg(rt: Runtime) -> None:
        rt.register_activity("Work", lambda ctx, v: f"{build}:{v}")

        def waits(ctx: Any, v: Any) -> Any:
            if build == "v2" and ctx.orchestration_name == "Changed":
                yield ctx.schedule_activity("Work", "check")  # the new step
            done = yield ctx.schedule_activity("Work", v)
            return [done, (yield ctx.wait_for_event("go"))]

        def parent(ctx: Any, v: Any) -> Any:
            yield ctx.wait_for_event("go")
            child = yield ctx.schedule_sub_orchestration_with_id("Child", f"{v}-child", v)
            return [f"{build}:parent", child]

        def child(ctx: Any, v: Any) -> Any:
            return (yield ctx.schedule_activity("Work", v))

        rt.register_orchestration("Changed", waits)
        rt.register_orchestration("Same", waits)
        rt.register_orchestration("Fixed", waits, upgrade="pinned")
        rt.register_orchestration("Trusted", waits, upgrade="auto")
        rt.register_orchestration("Parent", parent, upgrade="pinned")
        rt.register_orchestration("Child", child)

    return reg


def build_of(client: Client, instance_id: str) -> str | None:
    """The instance's build; None while it is unpinned or not created yet."""
    if client.get_status(instance_id).status == "NotFound":
        return None
    return client.get_instance_info(instance_id).build_id


def test_build_ids_are_checked_up_front() -> None:
    for bad in ("", "a" * 64, "v1/2", "v 1", "ünï"):
        with pytest.raises(ValueError, match="build_id must be 1-63 characters"):
            RuntimeOptions(build_id=bad)
    with pytest.raises(TypeError, match="build_auto_promote must be a bool"):
        RuntimeOptions(build_id="v1", build_auto_promote="no")
    assert RuntimeOptions(build_id="2026.05.01-a_b").build_id == "2026.05.01-a_b"


def test_a_rollout_moves_what_the_new_code_reproduces(
    store: Store, client: Client, start_runtime: RuntimeStarter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(upgrades, "POLL_S", 0.05)
    start_runtime(register("v1"), build_id="v1", worker_node_id="v1-0")
    old = {name: uid(name.lower()) for name in ORCHESTRATIONS}
    for name, instance_id in old.items():
        client.start_orchestration(instance_id, name, "old")
    for instance_id in old.values():
        poll_until(lambda i=instance_id: len(client.read_execution_history(i, 1)) >= 4,
                   f"{instance_id} waiting for its event")
    assert {build_of(client, i) for i in old.values()} == {"v1"}

    v2 = start_runtime(register("v2"), provider=store.reopen(), build_id="v2",
                       worker_node_id="v2-0")
    states = {b.build_id: b.state for b in client.list_builds()}
    assert states == {"v1": "draining", "v2": "current"}
    poll_until(lambda: build_of(client, old["Same"]) == build_of(client, old["Trusted"]) == "v2",
               "the unchanged orchestrations to move to v2")
    sample = v2.prometheus_registry.get_sample_value
    poll_until(lambda: sample("duraflow_build_upgrades_total",
                              {"orchestration": "Changed", "outcome": "diverged"}),
               "v2 to find that Changed diverges")
    assert build_of(client, old["Changed"]) == build_of(client, old["Fixed"]) == "v1"
    assert sample("duraflow_build_upgrades_total",
                  {"orchestration": "Same", "outcome": "moved"}) == 1
    assert sample("duraflow_build_upgrades_total",
                  {"orchestration": "Fixed", "outcome": "moved"}) is None

    new = uid("changed-new")
    client.start_orchestration(new, "Changed", "new")
    for instance_id in (*old.values(), new):
        poll_until(lambda i=instance_id: build_of(client, i), f"{instance_id} pinned")
        client.raise_event(instance_id, "go", "ok")
    assert completed(client.wait_for_orchestration(new, 10_000)) == ["v2:new", "ok"]
    assert build_of(client, new) == "v2"
    for name, instance_id in old.items():  # their activity ran on v1: its result stays
        assert completed(client.wait_for_orchestration(instance_id, 10_000)) == [
            "v1:old", "ok"], name
    workers = {w.worker_node_id: w.build_id for w in client.list_workers()}
    assert workers == {"v1-0": "v1", "v2-0": "v2"}


def test_a_build_started_without_auto_promote_waits_to_be_promoted(
    client: Client, start_runtime: RuntimeStarter,
) -> None:
    start_runtime(register("v1"), build_id="v1")
    start_runtime(register("v2"), build_id="canary", build_auto_promote=False)
    assert {b.build_id: b.state for b in client.list_builds()} == {
        "v1": "current", "canary": "pending"}
    client.set_current_build("canary")
    instance_id = uid("promoted")
    client.start_orchestration(instance_id, "Same", "x")
    poll_until(lambda: build_of(client, instance_id) == "canary", "the start pinned to canary")
    client.raise_event(instance_id, "go", 1)
    assert completed(client.wait_for_orchestration(instance_id, 10_000)) == ["v2:x", 1]


def test_a_sub_orchestration_pins_on_its_own_first_turn(
    store: Store, client: Client, start_runtime: RuntimeStarter,
) -> None:
    start_runtime(register("v1"), build_id="v1")
    parent = uid("parent")
    client.start_orchestration(parent, "Parent", parent)
    poll_until(lambda: build_of(client, parent) == "v1", "the parent pinned to v1")
    start_runtime(register("v2"), provider=store.reopen(), build_id="v2")
    client.raise_event(parent, "go", None)
    assert completed(client.wait_for_orchestration(parent, 10_000)) == [
        "v1:parent", f"v2:{parent}"]  # the parent stayed on v1, its new child ran on v2
    assert build_of(client, f"{parent}-child") == "v2"
