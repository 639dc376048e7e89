"""Instance locks expire, so a crashed dispatcher's batch is retried by someone else.

Short lock timeouts keep these tests quick; waiting for a lock to lapse polls the provider
until a deadline instead of sleeping a guessed amount.
"""

from __future__ import annotations

import asyncio

import pytest

from duraflow.providers.errors import LockLostError
from duraflow.providers.items import TurnCommit
from duraflow.providers.protocol import Provider

from .support import Turns, event, eventually, now_ms, raised

SHORT_LOCK_MS = 300


async def test_expired_lock_makes_the_batch_fetchable_again(
    provider: Provider, turns: Turns
) -> None:
    await provider.enqueue_orchestrator(raised("a", "x"))
    locked_at = now_ms()
    first = await turns.fetch("a", lock_ms=SHORT_LOCK_MS)
    assert await provider.fetch_orchestration_item(SHORT_LOCK_MS) is None

    again = await eventually(lambda: provider.fetch_orchestration_item(30_000))
    assert now_ms() >= locked_at + SHORT_LOCK_MS
    assert again.instance_id == "a"
    assert [m["data"] for m in again.messages] == ["x"]
    assert again.lock_token != first.lock_token


async def test_ack_after_lock_expiry_fails(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    await provider.enqueue_orchestrator(raised("a"))
    item = await turns.fetch("a", lock_ms=SHORT_LOCK_MS)
    await asyncio.sleep(SHORT_LOCK_MS / 1000 + 0.1)  # let the lock lapse (time must pass)

    with pytest.raises(LockLostError):
        await provider.ack_orchestration_item(
            item.lock_token, TurnCommit(execution_id=1, history_delta=[event(2)])
        )
    assert len(await provider.read_history("a")) == 1


async def test_ack_with_a_superseded_token_fails(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    await provider.enqueue_orchestrator(raised("a"))
    stale = await turns.fetch("a", lock_ms=SHORT_LOCK_MS)
    fresh = await eventually(lambda: provider.fetch_orchestration_item(30_000))

    with pytest.raises(LockLostError):
        await provider.ack_orchestration_item(
            stale.lock_token, TurnCommit(execution_id=1, history_delta=[event(2)])
        )
    await provider.ack_orchestration_item(
        fresh.lock_token, TurnCommit(execution_id=1, history_delta=[event(2)])
    )
    assert [e.event_id for e in await provider.read_history("a")] == [1, 2]


async def test_abandon_releases_the_lock_immediately(provider: Provider, turns: Turns) -> None:
    await provider.enqueue_orchestrator(raised("a", "x"))
    item = await turns.fetch("a", lock_ms=30_000)
    await provider.abandon_orchestration_item(item.lock_token)

    again = await turns.fetch("a")
    assert [m["data"] for m in again.messages] == ["x"]


async def test_abandon_with_delay_hides_messages_until_the_delay_passes(
    provider: Provider, turns: Turns
) -> None:
    delay_ms = 400
    await provider.enqueue_orchestrator(raised("a", "x"))
    item = await turns.fetch("a")
    abandoned_at = now_ms()
    await provider.abandon_orchestration_item(item.lock_token, delay_ms=delay_ms)

    assert await provider.fetch_orchestration_item(30_000) is None
    due = await provider.next_orchestrator_due_ms()
    assert due is not None and abandoned_at + delay_ms <= due <= now_ms() + delay_ms

    again = await eventually(lambda: provider.fetch_orchestration_item(30_000))
    assert now_ms() >= abandoned_at + delay_ms
    assert [m["data"] for m in again.messages] == ["x"]


async def test_abandon_with_unknown_token_fails(provider: Provider) -> None:
    with pytest.raises(LockLostError):
        await provider.abandon_orchestration_item("no-such-token")


async def test_renewal_extends_the_lock(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    await provider.enqueue_orchestrator(raised("a"))
    item = await turns.fetch("a", lock_ms=SHORT_LOCK_MS)
    await provider.renew_orchestration_item_lock(item.lock_token, 30_000)
    await asyncio.sleep(SHORT_LOCK_MS / 1000 + 0.2)  # past the original expiry

    assert await provider.fetch_orchestration_item(30_000) is None
    await provider.ack_orchestration_item(
        item.lock_token, TurnCommit(execution_id=1, history_delta=[event(2)])
    )
    assert len(await provider.read_history("a")) == 2


async def test_renewal_after_expiry_fails(provider: Provider, turns: Turns) -> None:
    await provider.enqueue_orchestrator(raised("a"))
    item = await turns.fetch("a", lock_ms=SHORT_LOCK_MS)
    await asyncio.sleep(SHORT_LOCK_MS / 1000 + 0.1)

    with pytest.raises(LockLostError):
        await provider.renew_orchestration_item_lock(item.lock_token, 30_000)
    # The lapsed lock stays lapsed: anyone may take the batch.
    assert (await turns.fetch("a")).lock_token != item.lock_token


async def test_renewal_of_unknown_token_fails(provider: Provider) -> None:
    with pytest.raises(LockLostError):
        await provider.renew_orchestration_item_lock("no-such-token", 1000)
