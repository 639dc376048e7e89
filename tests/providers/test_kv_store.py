"""The KV store: mutations applied atomically with their turn, readable by clients."""

from __future__ import annotations

import pytest

from duraflow.providers.errors import LockLostError
from duraflow.providers.items import KvMutation, TurnCommit
from duraflow.providers.protocol import Provider

from .support import Turns, raised


def kv_set(key: str, value: str, at: int = 1) -> KvMutation:
    return KvMutation("set", key, value, at)


async def test_set_overwrite_and_clear(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    await turns.turn("a", kv_mutations=[kv_set("k", "v1"), kv_set("other", "x")])
    assert await provider.get_kv_value("a", "k") == "v1"
    await turns.turn("a", kv_mutations=[kv_set("k", "v2", 2), KvMutation("clear", "other")])
    assert await provider.get_kv_all_values("a") == {"k": "v2"}


async def test_mutations_apply_in_order_within_one_turn(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    mutations = [kv_set("a", "1"), KvMutation("clear_all"), kv_set("b", "2"), kv_set("b", "3")]
    await turns.turn("a", kv_mutations=mutations)
    assert await provider.get_kv_all_values("a") == {"b": "3"}


async def test_unknown_instance_or_key_reads_none(provider: Provider, turns: Turns) -> None:
    assert await provider.get_kv_value("ghost", "k") is None
    assert await provider.get_kv_all_values("ghost") == {}
    await turns.create("a")
    assert await provider.get_kv_value("a", "missing") is None


async def test_empty_and_large_values_round_trip(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    big = "x" * 65_536
    mutations = [kv_set("empty", ""), kv_set("big", big), kv_set("odd key/ü 'q'", "v")]
    await turns.turn("a", kv_mutations=mutations)
    assert await provider.get_kv_value("a", "empty") == ""
    assert await provider.get_kv_value("a", "big") == big
    assert await provider.get_kv_value("a", "odd key/ü 'q'") == "v"


async def test_instances_are_isolated(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    await turns.create("b")
    await turns.turn("a", kv_mutations=[kv_set("k", "from-a")])
    await turns.turn("b", kv_mutations=[KvMutation("clear_all")])
    assert await provider.get_kv_value("a", "k") == "from-a"
    assert await provider.get_kv_value("b", "k") is None


async def test_failed_ack_writes_no_kv(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    await provider.enqueue_orchestrator(raised("a"))
    item = await turns.fetch("a")
    await provider.abandon_orchestration_item(item.lock_token)
    with pytest.raises(LockLostError):
        await provider.ack_orchestration_item(
            item.lock_token, TurnCommit(execution_id=1, kv_mutations=[kv_set("k", "v")])
        )
    assert await provider.get_kv_value("a", "k") is None


async def test_kv_survives_new_executions_and_counts_in_stats(
    provider: Provider, turns: Turns
) -> None:
    await turns.chain("a", executions=2, last_status=None)
    await turns.turn("a", kv_mutations=[kv_set("status", "running"), kv_set("n", "42")])
    stats = await provider.get_instance_stats("a")
    assert stats is not None
    assert (stats.kv_user_key_count, stats.kv_total_value_bytes) == (2, len("running") + 2)
    assert await provider.get_kv_value("a", "n") == "42"


async def test_delete_instance_removes_its_kv(provider: Provider, turns: Turns) -> None:
    await turns.create("a", status="Completed")
    await turns.create("b")
    await turns.turn("b", kv_mutations=[kv_set("k", "b")])
    await turns.turn("a", kv_mutations=[kv_set("k", "a")])
    await provider.delete_instance_tree("a", force=True)
    assert await provider.get_kv_value("a", "k") is None
    assert await provider.get_kv_value("b", "k") == "b"
