"""Attempt counts: how the runtime recognises a message that keeps failing (poison)."""

from __future__ import annotations

from duraflow.providers.protocol import Provider

from .support import Turns, activity, eventually, raised

SHORT_LOCK_MS = 300


async def test_orchestration_attempt_count_starts_at_one(provider: Provider, turns: Turns) -> None:
    await provider.enqueue_orchestrator(raised("a"))
    assert (await turns.fetch("a")).attempt_count == 1


async def test_orchestration_attempt_count_increments_on_every_refetch(
    provider: Provider, turns: Turns
) -> None:
    await provider.enqueue_orchestrator(raised("a"))
    item = await turns.fetch("a")
    await provider.abandon_orchestration_item(item.lock_token)
    item = await turns.fetch("a", lock_ms=SHORT_LOCK_MS)
    assert item.attempt_count == 2

    expired = await eventually(lambda: provider.fetch_orchestration_item(30_000))
    assert expired.attempt_count == 3


async def test_worker_attempt_count_starts_at_one_and_grows_on_lock_expiry(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("a", worker_items=[activity("a", 2)])
    assert (await turns.lease(lock_ms=SHORT_LOCK_MS)).attempt_count == 1
    again = await eventually(lambda: provider.fetch_work_item(30_000))
    assert again.attempt_count == 2


async def test_attempt_count_is_per_message_and_the_batch_reports_the_max(
    provider: Provider, turns: Turns
) -> None:
    await provider.enqueue_orchestrator(raised("a", "old"))
    for _ in range(2):
        item = await turns.fetch("a")
        await provider.abandon_orchestration_item(item.lock_token)
    await provider.enqueue_orchestrator(raised("a", "new"))

    batch = await turns.fetch("a")
    assert [m["data"] for m in batch.messages] == ["old", "new"]
    assert batch.attempt_count == 3  # "old" is on its third attempt, "new" on its first

    await provider.enqueue_orchestrator(raised("b"))
    other = await turns.fetch("b")
    assert other.attempt_count == 1  # attempts never leak across instances


async def test_ignore_attempt_undoes_the_orchestration_increment(
    provider: Provider, turns: Turns
) -> None:
    await provider.enqueue_orchestrator(raised("a"))
    item = await turns.fetch("a")
    await provider.abandon_orchestration_item(item.lock_token)
    item = await turns.fetch("a")
    assert item.attempt_count == 2
    await provider.abandon_orchestration_item(item.lock_token, ignore_attempt=True)
    assert (await turns.fetch("a")).attempt_count == 2


async def test_ignore_attempt_undoes_the_worker_increment(provider: Provider, turns: Turns) -> None:
    await turns.create("a", worker_items=[activity("a", 2)])
    lease = await turns.lease()
    await provider.abandon_work_item(lease.lock_token)
    lease = await turns.lease()
    assert lease.attempt_count == 2
    await provider.abandon_work_item(lease.lock_token, ignore_attempt=True)
    assert (await turns.lease()).attempt_count == 2


async def test_ignore_attempt_never_goes_below_zero(provider: Provider, turns: Turns) -> None:
    await turns.create("w", worker_items=[activity("w", 2)])
    await provider.enqueue_orchestrator(raised("a"))
    for _ in range(3):
        item = await turns.fetch("a")
        assert item.attempt_count == 1
        await provider.abandon_orchestration_item(item.lock_token, ignore_attempt=True)
        lease = await turns.lease()
        assert lease.attempt_count == 1
        await provider.abandon_work_item(lease.lock_token, ignore_attempt=True)
