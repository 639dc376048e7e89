"""The worker queue: FIFO, peek-locked, and a row's deletion is an activity's cancellation."""

from __future__ import annotations

import asyncio

import pytest

from duraflow.providers.errors import LockLostError
from duraflow.providers.items import ActivityRef, SessionClaim
from duraflow.providers.protocol import Provider

from .support import Turns, activity, completion, eventually, now_ms

SHORT_LOCK_MS = 300


async def test_worker_queue_is_fifo(provider: Provider, turns: Turns) -> None:
    await turns.create("a", worker_items=[activity("a", 2), activity("a", 3)])
    await turns.schedule("a", activity("a", 4))
    order = [(await turns.lease()).activity_id for _ in range(3)]
    assert order == [2, 3, 4]


async def test_lease_carries_the_activity_identity(provider: Provider, turns: Turns) -> None:
    await turns.create("a", worker_items=[activity("a", 7, session_id="s-1")])
    lease = await provider.fetch_work_item(30_000, session=SessionClaim(("w1",), 30_000))
    assert lease is not None
    assert (lease.instance_id, lease.execution_id, lease.activity_id) == ("a", 1, 7)
    assert (lease.session_id, lease.session_owner) == ("s-1", "w1")
    assert lease.item["type"] == "ActivityExecute"
    assert (lease.item["name"], lease.item["id"]) == ("Act", 7)


async def test_locked_work_item_is_invisible_but_kept(provider: Provider, turns: Turns) -> None:
    await turns.create("a", worker_items=[activity("a", 2)])
    lease = await turns.lease(lock_ms=SHORT_LOCK_MS)
    assert await provider.fetch_work_item(30_000) is None

    again = await eventually(lambda: provider.fetch_work_item(30_000))
    assert (again.activity_id, again.item) == (lease.activity_id, lease.item)
    assert again.lock_token != lease.lock_token


async def test_worker_ack_deletes_the_row_and_enqueues_the_completion(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("a", worker_items=[activity("a", 2)])
    lease = await turns.lease(lock_ms=SHORT_LOCK_MS)
    await provider.ack_work_item(lease.lock_token, completion(lease, '"42"'))

    await asyncio.sleep(SHORT_LOCK_MS / 1000 + 0.1)  # past the lock: deleted, not just hidden
    assert await provider.fetch_work_item(30_000) is None
    item = await turns.fetch("a")
    assert item.messages == [completion(lease, '"42"').item]


async def test_worker_ack_without_completion_only_deletes(provider: Provider, turns: Turns) -> None:
    await turns.create("a", worker_items=[activity("a", 2)])
    lease = await turns.lease()
    await provider.ack_work_item(lease.lock_token, None)
    assert await provider.fetch_work_item(30_000) is None
    assert await provider.fetch_orchestration_item(30_000) is None


async def test_worker_ack_after_lock_expiry_fails(provider: Provider, turns: Turns) -> None:
    await turns.create("a", worker_items=[activity("a", 2)])
    lease = await turns.lease(lock_ms=SHORT_LOCK_MS)
    await asyncio.sleep(SHORT_LOCK_MS / 1000 + 0.1)

    with pytest.raises(LockLostError) as caught:
        await provider.ack_work_item(lease.lock_token, completion(lease))
    assert caught.value.retryable is False
    assert await provider.fetch_orchestration_item(30_000) is None  # no completion leaked
    assert (await turns.lease()).activity_id == 2  # the row is still there to retry


async def test_ack_of_a_cancelled_activity_fails(provider: Provider, turns: Turns) -> None:
    await turns.create("a", worker_items=[activity("a", 2)])
    lease = await turns.lease()
    await turns.turn("a", cancelled_activities=[ActivityRef("a", 1, 2)])

    with pytest.raises(LockLostError):
        await provider.renew_work_item_lock(lease.lock_token, 30_000)
    with pytest.raises(LockLostError):
        await provider.ack_work_item(lease.lock_token, completion(lease))
    assert await provider.fetch_orchestration_item(30_000) is None


async def test_cancelled_activities_delete_only_their_rows(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("a", worker_items=[activity("a", 2), activity("a", 3), activity("a", 4)])
    await turns.turn("a", cancelled_activities=[ActivityRef("a", 1, 2), ActivityRef("a", 1, 4)])
    assert (await turns.lease()).activity_id == 3
    assert await provider.fetch_work_item(30_000) is None


async def test_cancelling_unknown_activities_is_harmless(provider: Provider, turns: Turns) -> None:
    await turns.create("a", worker_items=[activity("a", 2)])
    await turns.turn(
        "a",
        cancelled_activities=[
            ActivityRef("a", 1, 99),
            ActivityRef("a", 2, 2),  # other execution
            ActivityRef("nobody", 1, 2),
        ],
    )
    assert (await turns.lease()).activity_id == 2


async def test_activity_scheduled_and_cancelled_in_one_turn_leaves_no_row(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("a")
    await turns.turn(
        "a",
        worker_items=[activity("a", 2), activity("a", 3)],
        cancelled_activities=[ActivityRef("a", 1, 2)],
    )
    assert (await turns.lease()).activity_id == 3
    assert await provider.fetch_work_item(30_000) is None


async def test_worker_renewal_extends_the_lock(provider: Provider, turns: Turns) -> None:
    await turns.create("a", worker_items=[activity("a", 2)])
    lease = await turns.lease(lock_ms=SHORT_LOCK_MS)
    await provider.renew_work_item_lock(lease.lock_token, 30_000)
    await asyncio.sleep(SHORT_LOCK_MS / 1000 + 0.2)

    assert await provider.fetch_work_item(30_000) is None
    await provider.ack_work_item(lease.lock_token, completion(lease))


async def test_worker_renewal_after_expiry_or_ack_fails(provider: Provider, turns: Turns) -> None:
    await turns.create("a", worker_items=[activity("a", 2), activity("a", 3)])
    expiring = await turns.lease(lock_ms=SHORT_LOCK_MS)
    acked = await turns.lease()
    await provider.ack_work_item(acked.lock_token, None)
    await asyncio.sleep(SHORT_LOCK_MS / 1000 + 0.1)

    with pytest.raises(LockLostError):
        await provider.renew_work_item_lock(expiring.lock_token, 30_000)
    with pytest.raises(LockLostError):
        await provider.renew_work_item_lock(acked.lock_token, 30_000)
    with pytest.raises(LockLostError):
        await provider.renew_work_item_lock("no-such-token", 30_000)


async def test_abandoned_work_item_is_available_again(provider: Provider, turns: Turns) -> None:
    await turns.create("a", worker_items=[activity("a", 2)])
    lease = await turns.lease()
    await provider.abandon_work_item(lease.lock_token)
    assert (await turns.lease()).activity_id == 2


async def test_abandon_work_item_with_delay_hides_it_until_the_delay_passes(
    provider: Provider, turns: Turns
) -> None:
    delay_ms = 400
    await turns.create("a", worker_items=[activity("a", 2)])
    lease = await turns.lease()
    abandoned_at = now_ms()
    await provider.abandon_work_item(lease.lock_token, delay_ms=delay_ms)

    assert await provider.fetch_work_item(30_000) is None
    again = await eventually(lambda: provider.fetch_work_item(30_000))
    assert now_ms() >= abandoned_at + delay_ms
    assert again.activity_id == 2


async def test_abandon_work_item_with_unknown_token_fails(provider: Provider) -> None:
    with pytest.raises(LockLostError):
        await provider.abandon_work_item("no-such-token")
