"""Pruning old executions of long-lived (continue-as-new) instances, never the live one."""

from __future__ import annotations

import asyncio

import pytest

from duraflow.core.models import InstanceFilter, PruneOptions
from duraflow.providers.errors import InstanceNotFoundError
from duraflow.providers.protocol import Provider

from .support import Turns, now_ms


async def test_keep_last_keeps_the_newest_executions(provider: Provider, turns: Turns) -> None:
    await turns.chain("a", executions=4, last_status="Completed")
    result = await provider.prune_executions("a", PruneOptions(keep_last=2))
    assert (result.instances_processed, result.executions_deleted, result.events_deleted) == (
        1,
        2,
        4,
    )
    assert await provider.list_executions("a") == [3, 4]
    assert await provider.read_history("a", 1) == []
    assert len(await provider.read_history("a", 3)) == 2


@pytest.mark.parametrize("keep_last", [None, 0, 1])
async def test_keep_last_none_zero_and_one_keep_only_the_current_execution(
    provider: Provider, turns: Turns, keep_last: int | None
) -> None:
    await turns.chain("a", executions=4, last_status="Completed")
    result = await provider.prune_executions("a", PruneOptions(keep_last=keep_last))
    assert result.executions_deleted == 3
    assert await provider.list_executions("a") == [4]
    info = await provider.get_instance_info("a")
    assert (info.current_execution_id, info.status) == (4, "Completed")


async def test_completed_before_prunes_only_older_executions(
    provider: Provider, turns: Turns
) -> None:
    await turns.chain("a", executions=2, last_status=None)  # execution 1 closed early
    cutoff = now_ms() + 1
    while now_ms() <= cutoff:
        await asyncio.sleep(0.001)
    await turns.chain("b", executions=2, last_status=None)  # execution 1 closed later

    for instance in ("a", "b"):
        await provider.prune_executions(instance, PruneOptions(completed_before=cutoff))
    assert await provider.list_executions("a") == [2]
    assert await provider.list_executions("b") == [1, 2]


async def test_prune_never_touches_the_current_or_a_running_execution(
    provider: Provider, turns: Turns
) -> None:
    await turns.chain("a", executions=3, last_status=None)  # current execution is Running
    result = await provider.prune_executions("a", PruneOptions(keep_last=0))
    assert result.executions_deleted == 2
    assert await provider.list_executions("a") == [3]
    assert (await provider.get_instance_info("a")).status == "Running"
    again = await provider.prune_executions("a", PruneOptions())
    assert (again.instances_processed, again.executions_deleted) == (1, 0)


async def test_prune_unknown_instance_fails(provider: Provider) -> None:
    with pytest.raises(InstanceNotFoundError):
        await provider.prune_executions("missing", PruneOptions())


async def test_bulk_prune_covers_matching_instances_including_running_ones(
    provider: Provider, turns: Turns
) -> None:
    await turns.chain("done", executions=3, last_status="Completed")
    await turns.chain("busy", executions=3, last_status=None)
    await turns.chain("other", executions=3, last_status="Completed")

    result = await provider.prune_executions_bulk(
        InstanceFilter(instance_ids=["done", "busy"]), PruneOptions(keep_last=1)
    )
    assert (result.instances_processed, result.executions_deleted, result.events_deleted) == (
        2,
        4,
        8,
    )
    assert await provider.list_executions("done") == [3]
    assert await provider.list_executions("busy") == [3]
    assert await provider.list_executions("other") == [1, 2, 3]
    assert (await provider.get_instance_info("busy")).status == "Running"


async def test_bulk_prune_respects_the_limit(provider: Provider, turns: Turns) -> None:
    for name in ("a", "b", "c"):
        await turns.chain(name, executions=2, last_status="Completed")
    result = await provider.prune_executions_bulk(InstanceFilter(limit=2), PruneOptions())
    assert (result.instances_processed, result.executions_deleted) == (2, 2)
    remaining = [len(await provider.list_executions(name)) for name in ("a", "b", "c")]
    assert sorted(remaining) == [1, 1, 2]
