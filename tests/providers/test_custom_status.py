"""Custom status: what ``wait_for_status_change`` polls, so versions must move exactly once."""

from __future__ import annotations

from duraflow.providers.items import TurnCommit
from duraflow.providers.protocol import Provider

from .support import Turns, raised, started


async def test_new_instance_has_no_custom_status(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    status = await provider.get_instance_status("a")
    assert status is not None
    assert (status.custom_status, status.custom_status_version) == (None, 0)
    assert await provider.get_custom_status("a", 0) is None


async def test_setting_custom_status_bumps_the_version(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    await turns.turn("a", custom_status_set=True, custom_status="working")
    assert await provider.get_custom_status("a", 0) == ("working", 1)


async def test_clearing_custom_status_bumps_the_version(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    await turns.turn("a", custom_status_set=True, custom_status="working")
    await turns.turn("a", custom_status_set=True, custom_status=None)
    assert await provider.get_custom_status("a", 1) == (None, 2)


async def test_turn_without_custom_status_change_preserves_it(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("a")
    await turns.turn("a", custom_status_set=True, custom_status="working")
    await turns.turn("a", new_events=1)
    assert await provider.get_custom_status("a", 0) == ("working", 1)


async def test_version_increments_once_per_turn(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    for n, text in enumerate(["one", "two", "two"], start=1):  # same text still counts
        await turns.turn("a", custom_status_set=True, custom_status=text)
        assert await provider.get_custom_status("a", n - 1) == (text, n)


async def test_polling_without_change_returns_nothing(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    await turns.turn("a", custom_status_set=True, custom_status="working")
    assert await provider.get_custom_status("a", 1) is None
    assert await provider.get_custom_status("a", 5) is None
    assert await provider.get_custom_status("a", 0) == ("working", 1)


async def test_custom_status_of_unknown_instance_is_none(provider: Provider) -> None:
    await provider.enqueue_orchestrator(raised("ghost"))  # queued, never created
    assert await provider.get_custom_status("ghost", 0) is None
    assert await provider.get_custom_status("never-heard-of", 0) is None


async def test_custom_status_survives_continue_as_new(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    await turns.turn("a", custom_status_set=True, custom_status="gen-1", status="ContinuedAsNew")
    await provider.enqueue_orchestrator(raised("a"))
    item = await turns.fetch("a")
    await provider.ack_orchestration_item(
        item.lock_token, TurnCommit(execution_id=2, history_delta=[started()])
    )
    assert await provider.get_custom_status("a", 0) == ("gen-1", 1)
