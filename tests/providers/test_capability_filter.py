"""Capability filtering: a fetch with a replay range skips instances pinned outside it.

An execution is pinned to the ``engine_version`` of its ``OrchestrationStarted`` event as
stored by the first turn; the provider derives the pin itself (no extra argument to ack).
"""

from __future__ import annotations

import dataclasses

from duraflow.core import workitems as wi
from duraflow.core.version import pack
from duraflow.providers.items import OutboundMessage, TurnCommit
from duraflow.providers.protocol import Provider

from .support import ORCH, VERSION, Turns, event, raised, start_msg, started

V010 = pack("0.1.0")
V020 = pack("0.2.0")


async def _create_pinned(provider: Provider, turns: Turns, instance: str, engine: str) -> None:
    await provider.enqueue_orchestrator(start_msg(instance))
    item = await turns.fetch(instance)
    first = dataclasses.replace(started(), engine_version=engine)
    await provider.ack_orchestration_item(
        item.lock_token,
        TurnCommit(execution_id=1, history_delta=[first, event(2)], orchestration_name=ORCH,
                   orchestration_version=VERSION),
    )


async def _fetched(provider: Provider, replay_range: tuple[int, int] | None) -> list[str]:
    """Instances a fetcher with ``replay_range`` locks, until it finds nothing."""
    taken = []
    while (item := await provider.fetch_orchestration_item(30_000, None, replay_range)):
        taken.append(item.instance_id)
    return taken


async def test_incompatible_instances_are_skipped_and_left_unlocked(
    provider: Provider, turns: Turns
) -> None:
    await _create_pinned(provider, turns, "old", "0.1.0")
    await _create_pinned(provider, turns, "new", "0.2.0")
    for instance in ("old", "new"):
        await provider.enqueue_orchestrator(raised(instance))
    assert await _fetched(provider, (0, V010)) == ["old"]
    assert await _fetched(provider, (V020, V020)) == ["new"]  # "new" was never locked


async def test_no_range_takes_everything(provider: Provider, turns: Turns) -> None:
    await _create_pinned(provider, turns, "old", "0.1.0")
    await _create_pinned(provider, turns, "new", "0.9.0")
    for instance in ("old", "new"):
        await provider.enqueue_orchestrator(raised(instance))
    assert sorted(await _fetched(provider, None)) == ["new", "old"]


async def test_range_bounds_are_inclusive(provider: Provider, turns: Turns) -> None:
    await _create_pinned(provider, turns, "edge", "0.2.0")
    await provider.enqueue_orchestrator(raised("edge"))
    assert await _fetched(provider, (0, V020 - 1)) == []
    assert await _fetched(provider, (V020, V020)) == ["edge"]


async def test_unpinned_and_new_instances_are_compatible(
    provider: Provider, turns: Turns
) -> None:
    await provider.enqueue_orchestrator(start_msg("fresh"))  # no instance row yet
    assert await _fetched(provider, (V020, V020)) == ["fresh"]


async def test_the_pin_is_fixed_by_the_first_turn(provider: Provider, turns: Turns) -> None:
    await _create_pinned(provider, turns, "i", "0.1.0")
    await provider.enqueue_orchestrator(raised("i"))
    item = await provider.fetch_orchestration_item(30_000, None, (0, V010))
    assert item is not None
    later = dataclasses.replace(event(3), engine_version="0.2.0")  # a newer engine's turn
    await provider.ack_orchestration_item(
        item.lock_token, TurnCommit(execution_id=1, history_delta=[later])
    )
    await provider.enqueue_orchestrator(raised("i"))
    assert await _fetched(provider, (V020, V020)) == []
    assert await _fetched(provider, (0, V010)) == ["i"]


async def test_continue_as_new_pins_the_new_execution(provider: Provider, turns: Turns) -> None:
    await _create_pinned(provider, turns, "i", "0.1.0")
    await provider.enqueue_orchestrator(
        OutboundMessage("i", wi.continue_as_new("i", ORCH, "null", VERSION, [], None, None, None,
                                                None))
    )
    item = await provider.fetch_orchestration_item(30_000, None, (0, V010))
    assert item is not None
    await provider.ack_orchestration_item(
        item.lock_token,
        TurnCommit(execution_id=2,
                   history_delta=[dataclasses.replace(started(), engine_version="0.2.0")]),
    )
    await provider.enqueue_orchestrator(raised("i"))
    assert await _fetched(provider, (0, V010)) == []
    assert await _fetched(provider, (V020, V020)) == ["i"]
