"""Builds in the store: states, pins, the fetch filters and activity routing.

A runtime with a build takes turns only of executions pinned to its build, and unpinned ones
(new instances, the next execution after a continue-as-new) only while its build is current;
its turns pin what they start, and the activities they schedule run only on workers of that
build. A runtime without a build sees none of it.
"""

from __future__ import annotations

import pytest

from duraflow.core import workitems as wi
from duraflow.providers.errors import InstanceNotFoundError, ProviderError, UnknownBuildError
from duraflow.providers.items import OutboundMessage, TurnCommit, WorkerTagFilter
from duraflow.providers.protocol import Provider

from .builds_support import fetch, fetched, raise_on, raw, start_on
from .support import LONG_LOCK_MS, ORCH, VERSION, activity, event, started


async def states(provider: Provider) -> dict[str, str]:
    return {b.build_id: b.state for b in await provider.list_builds()}


async def test_a_new_build_becomes_current_and_the_previous_one_drains(
    provider: Provider,
) -> None:
    assert await provider.list_builds() == []
    assert await provider.register_build("v1", True) == "current"
    assert await provider.register_build("v2", True) == "current"
    assert await provider.register_build("v1", True) == "draining"  # known: unchanged
    assert await provider.register_build("canary", False) == "pending"
    assert await states(provider) == {"v1": "draining", "v2": "current", "canary": "pending"}
    builds = await provider.list_builds()
    assert [b.build_id for b in builds] == ["v1", "v2", "canary"]  # oldest first
    assert all(b.first_seen_at > 0 and b.live_workers == b.pinned_running == 0 for b in builds)

    await provider.set_current_build("canary")
    assert await states(provider) == {"v1": "draining", "v2": "draining", "canary": "current"}
    await provider.set_current_build("v1")  # a rollback: the old build again
    await provider.drain_build("canary")
    assert await states(provider) == {"v1": "current", "v2": "draining", "canary": "draining"}
    await provider.drain_build("v1")
    assert "current" not in (await states(provider)).values()


async def test_the_schema_allows_one_current_build_at_most(provider: Provider) -> None:
    await provider.register_build("v1", True)
    await provider.register_build("v2", False)
    with pytest.raises(Exception, match=r"(?i)unique"):
        await raw(provider, "UPDATE {s}.builds SET state = 'current' WHERE build_id = ?", "v2")


async def test_unknown_builds_are_refused_by_name(provider: Provider) -> None:
    await provider.register_build("v1", True)
    for call in (provider.set_current_build("nope"), provider.drain_build("nope"),
                 provider.move_instance("any", "nope")):
        with pytest.raises(UnknownBuildError, match=r"unknown build 'nope' \(known: v1\)"):
            await call


async def test_new_instances_go_to_the_current_build_and_pin_to_it(
    provider: Provider,
) -> None:
    await provider.register_build("v1", True)
    await provider.register_build("v2", True)  # v1 drains
    await provider.enqueue_orchestrator(OutboundMessage("new", wi.start_orchestration(
        "new", ORCH, "null", VERSION)))
    assert await fetch(provider, "v1") is None  # a draining build takes nothing new
    assert await fetched(provider, "v3") == []  # nor does an unknown one
    await provider.drain_build("v2")
    assert await fetch(provider, "v2") is None  # no current build: new work waits
    await provider.set_current_build("v2")
    assert await fetched(provider, "v2") == ["new"]  # (and stays locked below)

    await start_on(provider, "pinned", "v2")
    await raise_on(provider, "pinned")
    await provider.set_current_build("v1")  # v2 drains now: its instance stays with it
    assert "pinned" not in await fetched(provider, "v1")
    assert await fetched(provider, "v2") == ["pinned"]
    assert (await provider.get_instance_info("pinned")).build_id == "v2"
    assert (await provider.get_execution_info("pinned", 1)).build_id == "v2"
    assert [(b.build_id, b.pinned_running) for b in await provider.list_builds()] == [
        ("v1", 0), ("v2", 1)]


async def test_a_runtime_without_a_build_takes_everything_and_pins_nothing(
    provider: Provider,
) -> None:
    await provider.register_build("v1", True)
    await start_on(provider, "pinned", "v1")
    await start_on(provider, "plain", None)
    assert (await provider.get_instance_info("plain")).build_id is None
    for instance in ("pinned", "plain"):
        await raise_on(provider, instance)
    assert sorted(await fetched(provider, None)) == ["pinned", "plain"]


async def test_an_ending_execution_unpins_and_the_next_pins_on_its_first_turn(
    provider: Provider,
) -> None:
    await provider.register_build("v1", True)
    await start_on(provider, "loop", "v1", status="ContinuedAsNew")
    await provider.register_build("v2", True)
    await provider.enqueue_orchestrator(OutboundMessage("loop", wi.continue_as_new(
        "loop", ORCH, "null", VERSION, [], None, None, None, None)))
    assert await fetch(provider, "v1") is None  # the next execution is new work
    item = await fetch(provider, "v2")
    assert item is not None and item.execution_id == 1
    await provider.ack_orchestration_item(item.lock_token, TurnCommit(
        execution_id=2, history_delta=[started(), event(2)], status="Running", build_id="v2"))
    assert [(await provider.get_execution_info("loop", n)).build_id for n in (1, 2)] == [
        "v1", "v2"]
    assert (await provider.get_instance_info("loop")).build_id == "v2"

    await start_on(provider, "done", "v2", status="Completed")
    await raise_on(provider, "done")  # a late message of a finished instance
    assert await fetched(provider, "v2") == ["done"]  # whoever is current drops it


async def test_activities_run_on_workers_of_their_build(provider: Provider) -> None:
    await provider.register_build("v1", True)
    await start_on(provider, "a", "v1", worker_items=[activity("a", 2)])
    await start_on(provider, "b", None, worker_items=[activity("b", 2)])
    assert await provider.fetch_work_item(LONG_LOCK_MS, build_id="v2") is not None  # "b"
    assert await provider.fetch_work_item(LONG_LOCK_MS, build_id="v2") is None  # "a" waits
    lease = await provider.fetch_work_item(LONG_LOCK_MS, build_id="v1")
    assert lease is not None and lease.instance_id == "a"
    await start_on(provider, "c", "v1", worker_items=[activity("c", 2)])
    assert await provider.fetch_work_item(LONG_LOCK_MS) is not None  # no build: any row
    await start_on(provider, "gpu", "v1", worker_items=[activity("gpu", 2, tag="gpu")])
    gpu = WorkerTagFilter("tags", ("gpu",))
    assert await provider.fetch_work_item(LONG_LOCK_MS, gpu, None, "v2") is None
    assert await provider.fetch_work_item(LONG_LOCK_MS, build_id="v1") is None  # untagged only
    tagged = await provider.fetch_work_item(LONG_LOCK_MS, gpu, None, "v1")
    assert tagged is not None and tagged.tag == "gpu"  # tags work within the build


async def test_move_instance_repins_the_execution_and_its_waiting_activities(
    provider: Provider,
) -> None:
    await provider.register_build("bad", True)
    await start_on(provider, "rescue", "bad", worker_items=[activity("rescue", 2)])
    await provider.register_build("good", False)
    await raise_on(provider, "rescue")
    held = await fetch(provider, "bad")  # a turn of the bad build is in flight
    assert held is not None

    await provider.move_instance("rescue", "good")

    assert (await provider.get_instance_info("rescue")).build_id == "good"
    with pytest.raises(ProviderError):  # the bad build's turn can no longer commit
        await provider.ack_orchestration_item(held.lock_token, TurnCommit(execution_id=1))
    assert await fetched(provider, "bad") == []
    assert await fetched(provider, "good") == ["rescue"]  # pending, but pinned work is its own
    assert await provider.fetch_work_item(LONG_LOCK_MS, build_id="bad") is None
    assert await provider.fetch_work_item(LONG_LOCK_MS, build_id="good") is not None

    with pytest.raises(InstanceNotFoundError):
        await provider.move_instance("nobody", "good")
    await start_on(provider, "finished", "bad", status="Completed")
    with pytest.raises(ProviderError, match="'finished' is Completed: only an instance whose"):
        await provider.move_instance("finished", "good")


async def test_drained_builds_retire_and_come_back_when_needed(provider: Provider) -> None:
    await provider.register_build("v1", True)
    await start_on(provider, "old", "v1", worker_items=[activity("old", 2)])
    await provider.register_build("v2", True)
    assert await provider.refresh_build_states(0) == []  # v1 still has work pinned
    await raw(provider, "DELETE FROM {s}.worker_queue")
    assert await provider.refresh_build_states(0) == []  # and a running execution
    await provider.move_instance("old", "v2")
    assert await provider.refresh_build_states(60_000) == []  # not draining long enough yet
    assert await provider.refresh_build_states(0) == [("v1", "retired")]
    await provider.move_instance("old", "v1")  # pinned to a retired build again
    assert (await states(provider))["v1"] == "draining"
    await raw(provider, "UPDATE {s}.builds SET state = 'retired' WHERE build_id = ?", "v1")
    assert await provider.refresh_build_states(0) == [("v1", "draining")]


async def test_adopt_unpinned_pins_what_build_less_runtimes_ran_to_a_build(
    provider: Provider,
) -> None:
    """The first rollout onto builds: executions runtimes without a build id ran are pinned
    to nothing, so whichever build ran their next turn would pin them. ``adopt_unpinned``
    pins them (and their waiting activities) to the build the old runtimes are."""
    await start_on(provider, "old", None, worker_items=[activity("old", 2)])
    await start_on(provider, "ended", None, status="Completed")
    await provider.enqueue_orchestrator(OutboundMessage("new", wi.start_orchestration(
        "new", ORCH, "null", VERSION)))  # no turn yet: new work, stays unpinned
    assert await provider.adopt_unpinned("legacy") == 1
    assert await states(provider) == {"legacy": "current"}  # no build was current
    assert (await provider.get_instance_info("old")).build_id == "legacy"
    assert (await provider.get_execution_info("old", 1)).build_id == "legacy"
    assert (await provider.get_instance_info("ended")).build_id is None
    assert await provider.adopt_unpinned("legacy") == 0  # again: nothing new

    await provider.register_build("v2", False)
    await provider.set_current_build("v2")  # legacy drains
    await raise_on(provider, "old")
    assert await fetched(provider, "v2") == ["new"]  # not "old": it is legacy's now
    assert await provider.fetch_work_item(LONG_LOCK_MS, build_id="v2") is None
    assert await fetched(provider, "legacy") == ["old"]
    lease = await provider.fetch_work_item(LONG_LOCK_MS, build_id="legacy")
    assert lease is not None and lease.instance_id == "old"
    assert {b.build_id: b.pinned_running for b in await provider.list_builds()}["legacy"] == 1

    # With a current build, an unknown adopted build is registered pending, not promoted.
    await start_on(provider, "older", None)
    assert await provider.adopt_unpinned("other") == 1
    assert (await states(provider))["other"] == "pending"
    assert (await states(provider))["v2"] == "current"
