"""One feed hears every instance that changes: what lets one loop follow many instances.

``AsyncClient.watch_instance_changes`` is how the Kubernetes operator keeps every
Orchestration CR current without a timer or a watch per CR. The feed must report creations,
status changes, custom status changes and deletions, de-duplicate ids between reads, say
"everything" when notifications may have been lost, and (PostgreSQL) hear other processes.
"""

from __future__ import annotations

import asyncio

from duraflow import AsyncClient
from duraflow.providers.protocol import Provider

from .support import Turns

WAKE_S = 5.0


async def _collect(feed, until: set[str]) -> set[str]:  # type: ignore[no-untyped-def]
    seen: set[str] = set()
    async with asyncio.timeout(WAKE_S):
        while not until <= seen:
            changes = await feed.next(WAKE_S)
            seen |= changes.instance_ids
    return seen


async def test_feed_reports_creation_status_and_custom_status_changes(
    provider: Provider, turns: Turns
) -> None:
    with AsyncClient(provider).watch_instance_changes() as feed:
        await turns.create("a")
        await turns.create("b")
        assert await _collect(feed, {"a", "b"}) >= {"a", "b"}
        await turns.turn("a", custom_status_set=True, custom_status="half way")
        assert "a" in await _collect(feed, {"a"})
        await turns.turn("b", status="Completed", output='"done"')
        assert "b" in await _collect(feed, {"b"})


async def test_feed_deduplicates_ids_between_reads(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    with AsyncClient(provider).watch_instance_changes() as feed:
        for step in range(3):
            await turns.turn("a", custom_status_set=True, custom_status=str(step))
        await asyncio.sleep(0.2)  # let cross-process notifications (PostgreSQL) arrive too
        changes = await feed.next(WAKE_S)
        assert changes.instance_ids == frozenset({"a"})
        assert not changes.everything


async def test_feed_reports_deletion(provider: Provider, turns: Turns) -> None:
    await turns.create("gone", status="Completed")
    with AsyncClient(provider).watch_instance_changes() as feed:
        await provider.delete_instance_tree("gone", force=False)
        assert "gone" in await _collect(feed, {"gone"})


async def test_feed_times_out_empty_and_closed_feed_hears_nothing(
    provider: Provider, turns: Turns
) -> None:
    feed = AsyncClient(provider).watch_instance_changes()
    changes = await feed.next(0.05)
    assert not changes and changes.instance_ids == frozenset()
    feed.close()
    await turns.create("late")
    assert not await feed.next(0.2)


async def test_lost_notifications_are_reported_as_everything(provider: Provider) -> None:
    with AsyncClient(provider).watch_instance_changes() as feed:
        provider.notifier.notify_all_instances()  # what a LISTEN reconnect does
        changes = await feed.next(WAKE_S)
        assert changes.everything
