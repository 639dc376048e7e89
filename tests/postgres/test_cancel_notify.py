"""Cancellation across processes: deleting an in-flight activity's row announces its token.

Only deletions by someone other than the activity's own worker are announced (an
orchestration turn dropping it, a forced delete): a completing activity costs no NOTIFY.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from duraflow.core import workitems as wi
from duraflow.providers.items import ActivityRef, OutboundMessage, TurnCommit

from .helpers import activity, create, peer, raised

pytestmark = pytest.mark.postgres
HEAR_S = 5.0


async def _turn(provider: Any, instance: str, commit: TurnCommit) -> None:
    await provider.enqueue_orchestrator(raised(instance))
    item = await provider.fetch_orchestration_item(30_000)
    assert item is not None and item.instance_id == instance
    await provider.ack_orchestration_item(item.lock_token, commit)


async def test_a_dropped_activity_is_announced_to_the_worker_running_it(
    postgres_provider_factory: Any,
) -> None:
    orchestrator = await postgres_provider_factory()
    try:
        async with peer(orchestrator) as worker:
            heard: asyncio.Queue[str] = asyncio.Queue()
            worker.notifier.add_cancel_listener(heard.put_nowait)
            await create(orchestrator, "i", worker_items=[activity("i", 2), activity("i", 3)])
            running = await worker.fetch_work_item(30_000)
            finished = await worker.fetch_work_item(30_000)
            assert running is not None and finished is not None
            await worker.ack_work_item(
                finished.lock_token,
                OutboundMessage("i", wi.activity_completed("i", 1, finished.activity_id, "1")),
            )
            await _turn(orchestrator, "i", TurnCommit(
                execution_id=1, cancelled_activities=[ActivityRef("i", 1, running.activity_id)]
            ))
            token = await asyncio.wait_for(heard.get(), HEAR_S)
            assert token == running.lock_token  # and not the completed one's
            assert heard.empty()
    finally:
        await orchestrator.close()


async def test_dropping_a_waiting_activity_announces_nothing(
    postgres_provider_factory: Any,
) -> None:
    orchestrator = await postgres_provider_factory()
    try:
        async with peer(orchestrator) as worker:
            heard: asyncio.Queue[str] = asyncio.Queue()
            worker.notifier.add_cancel_listener(heard.put_nowait)
            await create(orchestrator, "i", worker_items=[activity("i", 2), activity("i", 3)])
            running = await worker.fetch_work_item(30_000)  # activity 2 runs; 3 waits
            assert running is not None
            await _turn(orchestrator, "i", TurnCommit(
                execution_id=1,
                cancelled_activities=[ActivityRef("i", 1, 3), ActivityRef("i", 1, 2)],
            ))
            assert await asyncio.wait_for(heard.get(), HEAR_S) == running.lock_token
            assert heard.empty()  # the row nobody had locked needs no announcement
    finally:
        await orchestrator.close()
