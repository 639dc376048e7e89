"""Deleting instances: whole trees, atomically, and never resurrected by an in-flight turn."""

from __future__ import annotations

import asyncio

import pytest

from duraflow.core.models import InstanceFilter
from duraflow.providers.errors import InstanceNotFoundError, LockLostError, ProviderError
from duraflow.providers.items import TurnCommit
from duraflow.providers.protocol import Provider

from .support import Turns, activity, event, now_ms, raised, start_msg, started


async def test_delete_terminal_instance_removes_everything(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("done", status="Completed", extra_events=2)
    await turns.create("keep", status="Completed")
    result = await provider.delete_instance_tree("done", force=False)

    assert (result.instances_deleted, result.executions_deleted, result.events_deleted) == (
        1,
        1,
        3,
    )
    assert await provider.get_instance_status("done") is None
    assert await provider.read_history("done") == []
    assert await provider.list_instances() == ["keep"]
    metrics = await provider.get_system_metrics()
    assert (metrics.total_instances, metrics.total_executions, metrics.total_events) == (1, 1, 1)


async def test_delete_running_instance_needs_force(provider: Provider, turns: Turns) -> None:
    await turns.create("busy")
    with pytest.raises(ProviderError) as caught:
        await provider.delete_instance_tree("busy", force=False)
    assert caught.value.retryable is False
    assert "is still running. Use force=true" in str(caught.value)
    assert await provider.get_instance_status("busy") is not None

    result = await provider.delete_instance_tree("busy", force=True)
    assert result.instances_deleted == 1
    assert await provider.get_instance_status("busy") is None


async def test_delete_unknown_instance_fails(provider: Provider) -> None:
    with pytest.raises(InstanceNotFoundError) as caught:
        await provider.delete_instance_tree("missing", force=True)
    assert caught.value.retryable is False


async def test_sub_orchestration_cannot_be_deleted_on_its_own(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("root", status="Completed")
    await turns.create("child", parent="root", status="Completed")
    for force in (False, True):
        with pytest.raises(ProviderError) as caught:
            await provider.delete_instance_tree("child", force=force)
        assert caught.value.retryable is False
        assert "Cannot delete sub-orchestration" in str(caught.value)
    assert await provider.get_instance_status("child") is not None


async def test_delete_cascades_through_three_levels(provider: Provider, turns: Turns) -> None:
    await turns.create("root", status="Completed")
    await turns.create("child-1", parent="root", status="Completed")
    await turns.create("child-2", parent="root", status="Completed", extra_events=1)
    await turns.create("grandchild", parent="child-1", status="Completed")
    await turns.create("unrelated", status="Completed")

    result = await provider.delete_instance_tree("root", force=False)
    assert (result.instances_deleted, result.executions_deleted, result.events_deleted) == (
        4,
        4,
        5,
    )
    assert await provider.list_instances() == ["unrelated"]


async def test_running_descendant_blocks_delete_without_force(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("root", status="Completed")
    await turns.create("child", parent="root")  # still running
    with pytest.raises(ProviderError) as caught:
        await provider.delete_instance_tree("root", force=False)
    assert "still running" in str(caught.value)
    assert (await provider.delete_instance_tree("root", force=True)).instances_deleted == 2


async def test_delete_cleans_queues_and_locks_so_the_id_can_be_reused(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("a", worker_items=[activity("a", 2)])
    await provider.enqueue_orchestrator(raised("a", "batch-1"))
    await provider.enqueue_orchestrator(raised("a", "batch-2"))
    await turns.fetch("a")  # a live lock on the instance, holding both messages
    await provider.enqueue_orchestrator(raised("a", "queued"))

    result = await provider.delete_instance_tree("a", force=True)
    assert result.queue_messages_deleted == 4  # 3 orchestrator messages + 1 activity
    assert await provider.fetch_work_item(30_000) is None
    assert await provider.fetch_orchestration_item(30_000) is None

    await provider.enqueue_orchestrator(start_msg("a", name="Reborn"))
    item = await turns.fetch("a")  # no stale lock blocks the fresh start
    assert item.orchestration_name is None and item.history == []
    await provider.ack_orchestration_item(
        item.lock_token,
        TurnCommit(execution_id=1, history_delta=[started("Reborn")], orchestration_name="Reborn"),
    )
    status = await provider.get_instance_status("a")
    assert status is not None
    assert (status.orchestration_name, status.custom_status_version) == ("Reborn", 0)
    assert len(await provider.read_history("a")) == 1


async def test_force_delete_makes_the_in_flight_ack_fail(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    await provider.enqueue_orchestrator(raised("a"))
    item = await turns.fetch("a")
    await provider.delete_instance_tree("a", force=True)

    with pytest.raises(LockLostError):
        await provider.ack_orchestration_item(
            item.lock_token,
            TurnCommit(
                execution_id=1,
                history_delta=[event(2)],
                orchestration_name="TestOrch",
                worker_items=[activity("a", 2)],
            ),
        )
    assert await provider.get_instance_status("a") is None  # no zombie
    assert await provider.fetch_work_item(30_000) is None


async def test_activity_completion_after_delete_finds_no_instance(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("a", worker_items=[activity("a", 2)])
    lease = await turns.lease()
    await provider.delete_instance_tree("a", force=True)
    with pytest.raises(LockLostError):
        await provider.renew_work_item_lock(lease.lock_token, 30_000)
    assert await provider.get_instance_status("a") is None


# ─── Bulk delete ─────────────────────────────────────────────────────────────


async def test_bulk_delete_takes_terminal_roots_only(provider: Provider, turns: Turns) -> None:
    await turns.create("done", status="Completed")
    await turns.create("broken", status="Failed")
    await turns.create("busy")
    await turns.create("child", parent="done", status="Completed")

    result = await provider.delete_instance_bulk(InstanceFilter())
    assert result.instances_deleted == 3  # done (+ its child) and broken
    assert await provider.list_instances() == ["busy"]


async def test_bulk_delete_filters_combine(provider: Provider, turns: Turns) -> None:
    await turns.create("old-1", status="Completed")
    await turns.create("old-2", status="Completed")
    cutoff = now_ms() + 1
    while now_ms() <= cutoff:  # the next completions must be strictly later than the cutoff
        await asyncio.sleep(0.001)
    await turns.create("new-1", status="Completed")

    by_time = await provider.delete_instance_bulk(InstanceFilter(completed_before=cutoff))
    assert by_time.instances_deleted == 2
    assert await provider.list_instances() == ["new-1"]

    await turns.create("new-2", status="Completed")
    both = await provider.delete_instance_bulk(
        InstanceFilter(instance_ids=["new-1", "new-2"], completed_before=cutoff)
    )
    assert both.instances_deleted == 0  # ids match, time does not: AND
    by_id = await provider.delete_instance_bulk(InstanceFilter(instance_ids=["new-2", "nope"]))
    assert by_id.instances_deleted == 1
    assert await provider.list_instances() == ["new-1"]
    nothing = await provider.delete_instance_bulk(InstanceFilter(instance_ids=[]))
    assert nothing.instances_deleted == 0


async def test_bulk_delete_respects_the_limit(provider: Provider, turns: Turns) -> None:
    for i in range(5):
        await turns.create(f"done-{i}", status="Completed")
    first = await provider.delete_instance_bulk(InstanceFilter(limit=2))
    assert first.instances_deleted == 2
    assert len(await provider.list_instances()) == 3
    rest = await provider.delete_instance_bulk(InstanceFilter())
    assert rest.instances_deleted == 3
    assert await provider.list_instances() == []


async def test_bulk_delete_skips_running_instances(provider: Provider, turns: Turns) -> None:
    await turns.create("busy-1")
    await turns.create("busy-2")
    result = await provider.delete_instance_bulk(InstanceFilter(instance_ids=["busy-1"]))
    assert result.instances_deleted == 0
    assert sorted(await provider.list_instances()) == ["busy-1", "busy-2"]
