"""Writes wake whoever waits on them, so dispatchers and clients need not poll in-process.

Each waiter is started with a long timeout and must finish within a short one: it can only
do so if the provider notified it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from duraflow.providers.protocol import Provider

from .support import Turns, activity, completion, now_ms, raised

WAIT_S = 30.0
WAKE_S = 2.0


async def _armed(waiter: Awaitable[None]) -> asyncio.Task[None]:
    async def wait() -> None:
        await waiter

    task = asyncio.create_task(wait())
    await asyncio.sleep(0)  # let it register before the write happens
    return task


async def test_enqueue_wakes_orchestrator_waiters(provider: Provider) -> None:
    await provider.notifier.wait_orchestrator(0)  # consume any earlier signal
    waiter = await _armed(provider.notifier.wait_orchestrator(WAIT_S))
    await provider.enqueue_orchestrator(raised("a"))
    await asyncio.wait_for(waiter, WAKE_S)


async def test_future_message_announces_its_due_time(provider: Provider) -> None:
    provider.notifier.take_earliest_due_ms()
    due = now_ms() + 60_000
    await provider.enqueue_orchestrator(raised("a", visible_at_ms=due))
    assert provider.notifier.take_earliest_due_ms() == due


async def test_ack_with_activities_wakes_worker_waiters(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    await provider.notifier.wait_worker(0)
    waiter = await _armed(provider.notifier.wait_worker(WAIT_S))
    await turns.schedule("a", activity("a", 2))
    await asyncio.wait_for(waiter, WAKE_S)


async def test_ack_wakes_instance_waiters(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    waiter = await _armed(provider.notifier.wait_instance("a", WAIT_S))
    await turns.turn("a", status="Completed")
    await asyncio.wait_for(waiter, WAKE_S)


async def test_worker_ack_wakes_the_instance_and_orchestrators(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("a", worker_items=[activity("a", 2)])
    lease = await turns.lease()
    await provider.notifier.wait_orchestrator(0)
    instance_waiter = await _armed(provider.notifier.wait_instance("a", WAIT_S))
    orchestrator_waiter = await _armed(provider.notifier.wait_orchestrator(WAIT_S))
    await provider.ack_work_item(lease.lock_token, completion(lease))
    await asyncio.wait_for(asyncio.gather(instance_waiter, orchestrator_waiter), WAKE_S)


async def test_delete_wakes_instance_waiters(provider: Provider, turns: Turns) -> None:
    await turns.create("a", status="Completed")
    waiter = await _armed(provider.notifier.wait_instance("a", WAIT_S))
    await provider.delete_instance_tree("a", force=False)
    await asyncio.wait_for(waiter, WAKE_S)


async def test_announced_due_times_are_kept_until_they_pass(provider: Provider) -> None:
    first, second = now_ms() + 60_000, now_ms() + 120_000
    await provider.enqueue_orchestrator(raised("a", visible_at_ms=second))
    await provider.enqueue_orchestrator(raised("b", visible_at_ms=first))
    assert provider.notifier.take_earliest_due_ms() == first
    assert provider.notifier.take_earliest_due_ms() == first  # reading does not consume it
    provider.notifier.notify_worker(now_ms() + 30_000)
    assert provider.notifier.take_earliest_worker_due_ms() is not None


async def test_schedule_due_times_wake_the_ticker_and_say_when() -> None:
    from duraflow.providers import wakeups
    from duraflow.providers.wakeups import Notifier

    notifier = Notifier()
    later = now_ms() + 60_000
    notifier.notify_schedules(later)
    waiter = await _armed(notifier.wait_schedules(WAIT_S))
    await asyncio.wait_for(waiter, WAKE_S)  # the earliest changed: recompute the sleep
    assert notifier.take_earliest_schedule_due_ms() == later
    waiter = await _armed(notifier.wait_schedules(WAIT_S))
    notifier.notify_schedules(now_ms() - 5)  # due now (a run's end freed a waiting tick)
    await asyncio.wait_for(waiter, WAKE_S)
    assert notifier.take_earliest_schedule_due_ms() is not None
    assert notifier.take_earliest_schedule_due_ms() == later  # once, then the next
    assert not notifier.take_schedules_unknown()
    notifier.notify_schedules()  # something changed, when unknown: read the store
    assert notifier.take_schedules_unknown() and not notifier.take_schedules_unknown()
    for n in range(wakeups._MAX_DUES):
        notifier.notify_schedules(later + n)
    assert notifier.take_schedules_unknown()  # too many to remember: read the store
