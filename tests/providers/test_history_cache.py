"""History loading: skipped when the runtime's cache is current, reported when undecodable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from duraflow.core import events as ev
from duraflow.providers.items import TurnCommit
from duraflow.providers.protocol import Provider

from .support import Turns, event, raised


async def test_matching_cache_key_skips_the_history(provider: Provider, turns: Turns) -> None:
    await turns.create("a", extra_events=2)
    await provider.enqueue_orchestrator(raised("a"))
    item = await turns.fetch("a", cached={"a": (1, 3)})
    assert item.history is None
    assert (item.execution_id, item.history_len) == (1, 3)
    assert len(item.messages) == 1


async def test_stale_cache_key_returns_the_full_history(provider: Provider, turns: Turns) -> None:
    await turns.create("a", extra_events=2)
    for stale in [(1, 2), (2, 3)]:  # behind by one event; wrong execution
        await provider.enqueue_orchestrator(raised("a"))
        item = await turns.fetch("a", cached={"a": stale, "b": (1, 3)})
        assert item.history is not None
        assert [e.event_id for e in item.history] == [1, 2, 3]
        assert item.history[0].kind == ev.ORCHESTRATION_STARTED
        await provider.ack_orchestration_item(item.lock_token, TurnCommit(execution_id=1))


async def test_undecodable_history_is_reported_with_the_lock_held(
    provider: Provider, turns: Turns, corrupt_history: Callable[..., Awaitable[None]]
) -> None:
    await turns.create("a", extra_events=1)
    await corrupt_history("a", 1)
    await provider.enqueue_orchestrator(raised("a", "x"))

    item = await turns.fetch("a")
    assert item.history_error is not None
    assert not item.history
    assert [m["data"] for m in item.messages] == ["x"]
    assert item.attempt_count == 1
    assert await provider.fetch_orchestration_item(30_000) is None  # lock is held

    await provider.abandon_orchestration_item(item.lock_token)
    again = await turns.fetch("a")
    assert again.history_error is not None and again.attempt_count == 2


async def test_ack_can_append_to_an_undecodable_history(
    provider: Provider, turns: Turns, corrupt_history: Callable[..., Awaitable[None]]
) -> None:
    await turns.create("a", extra_events=1)
    await corrupt_history("a", 1)
    await provider.enqueue_orchestrator(raised("a"))
    item = await turns.fetch("a")
    assert item.history_error is not None

    # The runtime poisons such an instance with a sentinel event id (append-only write).
    await provider.ack_orchestration_item(
        item.lock_token,
        TurnCommit(
            execution_id=1,
            history_delta=[event(99999, ev.ORCHESTRATION_FAILED, details={})],
            status="Failed",
            output="poison: history cannot be decoded",
        ),
    )
    status = await provider.get_instance_status("a")
    assert status is not None and status.status == "Failed"
    assert await provider.fetch_orchestration_item(30_000) is None
