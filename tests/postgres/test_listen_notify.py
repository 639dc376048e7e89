"""LISTEN/NOTIFY: a write in one process wakes waiters in every other process at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from duraflow.providers.items import TurnCommit

from .helpers import activity, create, peer, raised

pytestmark = pytest.mark.postgres

WAIT_S = 30.0
WAKE_S = 2.0


async def _armed(coro: Any) -> asyncio.Task[None]:
    task: asyncio.Task[None] = asyncio.create_task(coro)
    await asyncio.sleep(0.01)
    return task


async def test_enqueue_in_a_wakes_orchestrator_waiter_in_b(postgres_provider_factory: Any) -> None:
    a = await postgres_provider_factory()
    try:
        async with peer(a) as b:
            await b.notifier.wait_orchestrator(0)
            waiter = await _armed(b.notifier.wait_orchestrator(WAIT_S))
            started = time.monotonic()
            await a.enqueue_orchestrator(raised("x"))
            await asyncio.wait_for(waiter, WAKE_S)
            assert time.monotonic() - started < WAKE_S
            item = await b.fetch_orchestration_item(5_000)
            assert item is not None and item.instance_id == "x"
    finally:
        await a.close()


async def test_future_message_announces_its_due_time_to_b(postgres_provider_factory: Any) -> None:
    a = await postgres_provider_factory()
    try:
        async with peer(a) as b:
            b.notifier.take_earliest_due_ms()
            await b.notifier.wait_orchestrator(0)
            due = int(time.time() * 1000) + 60_000
            waiter = await _armed(b.notifier.wait_orchestrator(WAIT_S))
            await a.enqueue_orchestrator(raised("x", visible_at_ms=due))
            await asyncio.wait_for(waiter, WAKE_S)
            assert b.notifier.take_earliest_due_ms() == due
            assert await b.next_orchestrator_due_ms() == due
    finally:
        await a.close()


async def test_activities_wake_workers_and_completions_wake_dispatchers(
    postgres_provider_factory: Any,
) -> None:
    a = await postgres_provider_factory()
    try:
        async with peer(a) as b:
            await b.notifier.wait_worker(0)
            worker_waiter = await _armed(b.notifier.wait_worker(WAIT_S))
            await create(a, "i", worker_items=[activity("i", 2)])
            await asyncio.wait_for(worker_waiter, WAKE_S)

            lease = await b.fetch_work_item(30_000)
            assert lease is not None
            await a.notifier.wait_orchestrator(0)
            orch_waiter = await _armed(a.notifier.wait_orchestrator(WAIT_S))
            from duraflow.core import workitems as wi
            from duraflow.providers.items import OutboundMessage

            done = wi.activity_completed("i", 1, 2, '"ok"')
            await b.ack_work_item(lease.lock_token, OutboundMessage("i", done))
            await asyncio.wait_for(orch_waiter, WAKE_S)
    finally:
        await a.close()


async def test_status_change_in_a_wakes_instance_waiter_in_b(
    postgres_provider_factory: Any,
) -> None:
    a = await postgres_provider_factory()
    try:
        await create(a, "i")
        async with peer(a) as b:
            waiter = await _armed(b.notifier.wait_instance("i", WAIT_S))
            await a.enqueue_orchestrator(raised("i"))
            item = await a.fetch_orchestration_item(30_000)
            assert item is not None
            await a.ack_orchestration_item(
                item.lock_token, TurnCommit(execution_id=1, status="Completed", output="1")
            )
            await asyncio.wait_for(waiter, WAKE_S)
            status = await b.get_instance_status("i")
            assert status is not None and status.status == "Completed"
    finally:
        await a.close()


async def test_instance_change_feed_hears_other_processes(postgres_provider_factory: Any) -> None:
    """The operator's feed on one connection hears turns committed by another process."""
    from duraflow import AsyncClient

    a = await postgres_provider_factory()
    try:
        async with peer(a) as b:
            with AsyncClient(b).watch_instance_changes() as feed:
                await create(a, "remote")
                seen: set[str] = set()
                async with asyncio.timeout(WAKE_S):
                    while "remote" not in seen:
                        seen |= (await feed.next(WAKE_S)).instance_ids
    finally:
        await a.close()


async def test_work_scheduled_in_a_is_heard_by_a_work_feed_in_b(
    postgres_provider_factory: Any,
) -> None:
    """An autoscaler in another process (the operator) learns of new work at once."""
    a = await postgres_provider_factory()
    try:
        async with peer(a) as b:
            with b.notifier.watch_work() as feed:
                started = time.monotonic()
                await create(a, "i", worker_items=[activity("i", 2)])
                assert await feed.next(WAKE_S)
                assert time.monotonic() - started < WAKE_S
                assert (await b.get_work_demand()).activities[None].waiting == 1
    finally:
        await a.close()
