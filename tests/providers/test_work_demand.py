"""What an autoscaler reads and writes through the store: the demand for every tag in one
query, drain requests for worker nodes and whether those nodes are idle, and the feed that
says "new work, look again" (docs/autoscaling.md)."""

from __future__ import annotations

import asyncio
import dataclasses

from duraflow.core.models import TagDemand, WorkDemand, WorkerInfo
from duraflow.providers.items import SessionClaim, TurnCommit, WorkerTagFilter
from duraflow.providers.protocol import Provider

from .support import Turns, activity, completion, now_ms, start_msg, started


def _worker(node: str, runtime: str = "r1", **changes: object) -> WorkerInfo:
    info = WorkerInfo(
        worker_node_id=node, runtime_id=runtime, host="h", pid=1, tag_filter="any", tags=(),
        orchestrations={}, activities=(), orchestration_concurrency=1, worker_concurrency=1,
        max_sessions=10, sessions_held=0, started_at_ms=now_ms(), last_seen_at_ms=0,
        heartbeat_interval_ms=60_000, alive=True,
    )
    return dataclasses.replace(info, **changes)  # type: ignore[arg-type]


async def test_demand_counts_waiting_and_running_activities_per_tag_turns_and_sessions(
    provider: Provider, turns: Turns
) -> None:
    assert await provider.get_work_demand() == WorkDemand()
    await turns.create("a", worker_items=[
        activity("a", 2), activity("a", 3, tag="gpu", session_id="s1"),
        activity("a", 4, tag="gpu"), activity("a", 5, tag="gpu"),
    ])
    demand = await provider.get_work_demand()
    assert demand.activities == {None: TagDemand(1, 0), "gpu": TagDemand(3, 0)}
    assert demand.turns == 0 and demand.sessions == {}

    untagged = await provider.fetch_work_item(60_000)  # running now, no longer waiting
    assert untagged is not None and untagged.tag is None
    session = await provider.fetch_work_item(
        60_000, WorkerTagFilter("tags", ("gpu",)), SessionClaim(("gpu-0",), 30_000, True))
    assert session is not None and session.session_id == "s1"
    await provider.enqueue_orchestrator(start_msg("b"))  # a turn waiting
    demand = await provider.get_work_demand()
    assert demand.activities == {None: TagDemand(0, 1), "gpu": TagDemand(2, 1)}
    assert demand.turns == 1
    assert demand.sessions == {}  # gpu-0's session is counted by its running activity
    assert demand.activities_for(["gpu"], untagged=False) == 3
    assert demand.activities_for(["gpu", "gpu"], untagged=True) == 4
    assert demand.activities_for(["cpu"], untagged=False) == 0

    await provider.ack_work_item(untagged.lock_token, completion(untagged))
    await provider.ack_work_item(session.lock_token, completion(session))
    demand = await provider.get_work_demand()
    assert None not in demand.activities  # the acked row is gone
    assert demand.activities["gpu"] == TagDemand(2, 0)
    assert demand.turns == 2  # their completions are turns of "a" now
    assert demand.sessions == {"gpu-0": 1}  # held, with no work: it counts by itself now


async def test_a_drained_node_is_told_so_by_its_heartbeat_until_undrained(
    provider: Provider,
) -> None:
    assert await provider.heartbeat_worker(_worker("pool-1")) is False
    await provider.drain_workers(["pool-1", "pool-2"])
    await provider.drain_workers(["pool-1"])  # asking twice keeps one request
    assert await provider.heartbeat_worker(_worker("pool-1")) is True
    assert await provider.heartbeat_worker(_worker("pool-0")) is False
    await provider.undrain_workers(["pool-1", "never-drained"])
    assert await provider.heartbeat_worker(_worker("pool-1")) is False
    assert set(await provider.get_drained_workers()) == {"pool-2"}
    await provider.undrain_workers([])
    await provider.drain_workers([])


async def test_a_drained_node_is_idle_once_every_live_runtime_reported_drained_after_the_request(
    provider: Provider,
) -> None:
    # A runtime that reported "drained" for an earlier request does not count for this one.
    await provider.heartbeat_worker(_worker("pool-1", "a", drain_state="drained"))
    await asyncio.sleep(0.01)
    await provider.drain_workers(["pool-1", "pool-9"])
    assert await provider.get_drained_workers() == {"pool-1": False, "pool-9": True}
    assert await provider.heartbeat_worker(_worker("pool-1", "a", drain_state="draining"))
    assert await provider.get_drained_workers() == {"pool-1": False, "pool-9": True}
    await provider.heartbeat_worker(_worker("pool-1", "a", drain_state="drained"))
    assert await provider.get_drained_workers() == {"pool-1": True, "pool-9": True}
    # A second runtime of the node (a restart) still serving: not idle.
    await provider.heartbeat_worker(_worker("pool-1", "b"))
    assert (await provider.get_drained_workers())["pool-1"] is False
    await provider.remove_worker("pool-1", "b")
    assert (await provider.get_drained_workers())["pool-1"] is True
    (listed,) = await provider.list_workers()
    assert listed.drain_state == "drained" and listed.to_dict()["drain_state"] == "drained"


async def test_a_drained_node_holding_a_session_is_not_idle(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("a", worker_items=[activity("a", 2, session_id="s1")])
    lease = await provider.fetch_work_item(60_000, session=SessionClaim(("pool-1",), 30_000, True))
    assert lease is not None
    await provider.ack_work_item(lease.lock_token, completion(lease))
    await provider.drain_workers(["pool-1"])
    assert await provider.get_drained_workers() == {"pool-1": False}  # the lease is live
    assert await provider.release_sessions(["pool-1"]) == 1
    assert await provider.get_drained_workers() == {"pool-1": True}


async def test_the_work_feed_hears_new_orchestrator_and_worker_work(
    provider: Provider, turns: Turns
) -> None:
    with provider.notifier.watch_work() as feed:
        assert await feed.next(0) is False
        await provider.enqueue_orchestrator(start_msg("a"))
        assert await feed.next(5.0) is True
        assert await feed.next(0) is False  # one look per batch of announcements
        item = await turns.fetch("a")
        await provider.ack_orchestration_item(item.lock_token, TurnCommit(
            execution_id=1, history_delta=[started()],
            worker_items=[activity("a", 2, tag="gpu")], orchestration_name="Orch",
            orchestration_version="1.0.0"))
        assert await feed.next(5.0) is True
    assert not provider.notifier._work_feeds  # closed with the block
