"""Many dispatchers polling one provider: every message is processed exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter

from duraflow.core import workitems as wi
from duraflow.providers.items import OutboundMessage, TurnCommit
from duraflow.providers.protocol import Provider

from .support import Turns, activity, completion, start_msg, started


async def test_concurrent_dispatchers_never_process_a_message_twice(provider: Provider) -> None:
    instances = [f"inst-{i:02d}" for i in range(40)]
    for instance in instances:
        await provider.enqueue_orchestrator(start_msg(instance))
    processed: Counter[str] = Counter()

    async def dispatcher() -> None:
        idle = 0
        while idle < 3:
            item = await provider.fetch_orchestration_item(30_000)
            if item is None:
                idle += 1
                await asyncio.sleep(0.01)
                continue
            idle = 0
            for message in item.messages:
                processed[message["instance"]] += 1
            await asyncio.sleep(0)  # let the other dispatchers interleave mid-turn
            await provider.ack_orchestration_item(
                item.lock_token,
                TurnCommit(
                    execution_id=1,
                    history_delta=[started()],
                    orchestration_name="TestOrch",
                    status="Completed",
                ),
            )

    await asyncio.wait_for(asyncio.gather(*(dispatcher() for _ in range(4))), timeout=60)
    assert processed == Counter({instance: 1 for instance in instances})
    assert sorted(await provider.list_instances_by_status("Completed")) == instances
    for instance in instances:
        assert len(await provider.read_history(instance)) == 1


async def test_concurrent_workers_take_distinct_activities(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("a", worker_items=[activity("a", n) for n in range(2, 22)])
    ran: Counter[int] = Counter()

    async def worker() -> None:
        while (lease := await provider.fetch_work_item(30_000)) is not None:
            ran[lease.activity_id] += 1
            await asyncio.sleep(0)
            await provider.ack_work_item(lease.lock_token, completion(lease))

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(5))), timeout=60)
    assert ran == Counter({n: 1 for n in range(2, 22)})
    item = await turns.fetch("a")
    assert sorted(m["id"] for m in item.messages) == list(range(2, 22))


async def test_completions_racing_a_turn_are_never_lost(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    delivered = 30

    async def producer() -> None:
        for n in range(delivered):
            await provider.enqueue_orchestrator(
                OutboundMessage("a", wi.activity_completed("a", 1, n, str(n)))
            )
            await asyncio.sleep(0)

    seen: list[int] = []

    async def consumer() -> None:
        while len(seen) < delivered:
            item = await provider.fetch_orchestration_item(30_000)
            if item is None:
                await asyncio.sleep(0.005)
                continue
            seen.extend(m["id"] for m in item.messages)
            await provider.ack_orchestration_item(item.lock_token, TurnCommit(execution_id=1))

    await asyncio.wait_for(asyncio.gather(producer(), consumer()), timeout=60)
    assert seen == list(range(delivered))  # each once, in arrival order
