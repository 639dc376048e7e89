"""One turn per instance at a time; one instance never holds up another."""

from __future__ import annotations

import asyncio

from duraflow.providers.items import TurnCommit
from duraflow.providers.protocol import Provider

from .support import Turns, raised


async def test_locked_instance_is_not_handed_out_twice(provider: Provider, turns: Turns) -> None:
    await provider.enqueue_orchestrator(raised("a", "1"))
    await turns.fetch("a")
    await provider.enqueue_orchestrator(raised("a", "2"))
    assert await provider.fetch_orchestration_item(30_000) is None


async def test_lock_tokens_are_unique(provider: Provider, turns: Turns) -> None:
    tokens = []
    for name in ("a", "b", "c"):
        await provider.enqueue_orchestrator(raised(name))
        tokens.append((await turns.fetch(name)).lock_token)
    # A second lock on the same instance after release gets a fresh token too.
    await provider.ack_orchestration_item(tokens[0], TurnCommit(execution_id=1))
    await provider.enqueue_orchestrator(raised("a"))
    tokens.append((await turns.fetch("a")).lock_token)
    assert len(set(tokens)) == len(tokens)


async def test_ten_concurrent_fetchers_get_ten_distinct_instances(provider: Provider) -> None:
    for i in range(10):
        await provider.enqueue_orchestrator(raised(f"inst-{i}"))
    items = await asyncio.gather(*(provider.fetch_orchestration_item(30_000) for _ in range(10)))
    ids = [item.instance_id for item in items if item is not None]
    assert sorted(ids) == sorted(f"inst-{i}" for i in range(10))
    assert await provider.fetch_orchestration_item(30_000) is None


async def test_locked_instance_does_not_block_other_instances(
    provider: Provider, turns: Turns
) -> None:
    await provider.enqueue_orchestrator(raised("first"))
    await provider.enqueue_orchestrator(raised("second"))
    await turns.fetch("first")
    await provider.enqueue_orchestrator(raised("first", "newer"))  # oldest-first, yet locked
    await provider.enqueue_orchestrator(raised("third"))
    assert (await turns.fetch()).instance_id == "second"
    assert (await turns.fetch()).instance_id == "third"


async def test_batch_holds_every_visible_message_in_arrival_order(
    provider: Provider, turns: Turns
) -> None:
    for data in ("1", "2", "3"):
        await provider.enqueue_orchestrator(raised("a", data))
    item = await turns.fetch("a")
    assert [m["data"] for m in item.messages] == ["1", "2", "3"]
    assert all(m["instance"] == "a" for m in item.messages)


async def test_messages_arriving_during_a_turn_wait_for_the_next_turn(
    provider: Provider, turns: Turns
) -> None:
    await provider.enqueue_orchestrator(raised("a", "before"))
    item = await turns.fetch("a")
    await provider.enqueue_orchestrator(raised("a", "during"))
    await provider.ack_orchestration_item(item.lock_token, TurnCommit(execution_id=1))

    nxt = await turns.fetch("a")
    assert [m["data"] for m in nxt.messages] == ["during"]


async def test_ack_deletes_only_the_messages_it_fetched(provider: Provider, turns: Turns) -> None:
    for data in ("1", "2", "3"):
        await provider.enqueue_orchestrator(raised("a", data))
    item = await turns.fetch("a")
    for data in ("4", "5"):
        await provider.enqueue_orchestrator(raised("a", data))
    await provider.enqueue_orchestrator(raised("b", "other"))
    await provider.ack_orchestration_item(item.lock_token, TurnCommit(execution_id=1))

    rest = {}
    for _ in range(2):
        nxt = await turns.fetch()
        rest[nxt.instance_id] = [m["data"] for m in nxt.messages]
    assert rest == {"a": ["4", "5"], "b": ["other"]}
