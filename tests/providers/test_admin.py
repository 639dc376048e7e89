"""Management queries: what ``duraflow`` admin commands and the client's admin calls show."""

from __future__ import annotations

import pytest

from duraflow.providers.errors import InstanceNotFoundError, ProviderError
from duraflow.providers.protocol import Provider

from .support import Turns, activity, now_ms, raised


async def test_list_instances_is_newest_first(provider: Provider, turns: Turns) -> None:
    for name in ("first", "second", "third"):
        await turns.create(name)
    assert await provider.list_instances() == ["third", "second", "first"]


async def test_list_by_status_uses_the_current_execution(provider: Provider, turns: Turns) -> None:
    await turns.create("done", status="Completed")
    await turns.create("broken", status="Failed")
    await turns.create("busy")
    await turns.chain("renewed", executions=2, last_status=None)  # execution 1 is CAN
    await turns.create("also-done", status="Completed")

    assert await provider.list_instances_by_status("Completed") == ["also-done", "done"]
    assert await provider.list_instances_by_status("Failed") == ["broken"]
    assert await provider.list_instances_by_status("Running") == ["renewed", "busy"]
    assert await provider.list_instances_by_status("ContinuedAsNew") == []


async def test_list_executions_is_ascending(provider: Provider, turns: Turns) -> None:
    await turns.chain("a", executions=3, last_status="Completed")
    assert await provider.list_executions("a") == [1, 2, 3]
    assert await provider.list_executions("missing") == []


async def test_instance_info_describes_the_current_execution(
    provider: Provider, turns: Turns
) -> None:
    before = now_ms()
    await turns.create("a", name="Report", version="1.2.3")
    created = await provider.get_instance_info("a")
    await turns.turn("a", status="Completed", output='"final"')
    info = await provider.get_instance_info("a")

    assert (info.instance_id, info.orchestration_name, info.orchestration_version) == (
        "a",
        "Report",
        "1.2.3",
    )
    assert (info.current_execution_id, info.status, info.output) == (1, "Completed", '"final"')
    assert info.created_at == created.created_at >= before  # real ms, not 0
    assert created.created_at <= info.updated_at <= now_ms()
    with pytest.raises(InstanceNotFoundError) as caught:
        await provider.get_instance_info("missing")
    assert caught.value.retryable is False and "not found" in str(caught.value)


async def test_execution_info_reports_times_and_event_count(
    provider: Provider, turns: Turns
) -> None:
    before = now_ms()
    await turns.create("a", extra_events=2)
    running = await provider.get_execution_info("a", 1)
    assert (running.status, running.completed_at, running.event_count) == ("Running", None, 3)
    assert running.started_at >= before

    await turns.turn("a", new_events=1, status="Failed", output="boom")
    done = await provider.get_execution_info("a", 1)
    assert (done.execution_id, done.status, done.output, done.event_count) == (
        1,
        "Failed",
        "boom",
        4,
    )
    assert done.completed_at is not None and running.started_at <= done.completed_at <= now_ms()
    with pytest.raises(ProviderError):
        await provider.get_execution_info("a", 2)
    with pytest.raises(ProviderError):
        await provider.get_execution_info("missing", 1)


async def test_system_metrics_count_instances_executions_and_events(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("done", status="Completed", extra_events=1)  # 1 execution, 2 events
    await turns.create("broken", status="Failed")  # 1 execution, 1 event
    await turns.chain("busy", executions=2, last_status=None)  # 2 executions, 4 events
    metrics = await provider.get_system_metrics()
    assert (metrics.total_instances, metrics.total_executions, metrics.total_events) == (3, 4, 7)
    assert (
        metrics.running_instances,
        metrics.completed_instances,
        metrics.failed_instances,
    ) == (1, 1, 1)


async def test_queue_depths_count_unlocked_messages(provider: Provider, turns: Turns) -> None:
    await turns.create("a", worker_items=[activity("a", 2), activity("a", 3)])
    await provider.enqueue_orchestrator(raised("b"))
    await provider.enqueue_orchestrator(raised("c", visible_at_ms=now_ms() + 60_000))
    depths = await provider.get_queue_depths()
    assert (depths.orchestrator_queue, depths.worker_queue, depths.timer_queue) == (2, 2, 0)

    await turns.fetch("b")
    await turns.lease()
    depths = await provider.get_queue_depths()
    assert (depths.orchestrator_queue, depths.worker_queue) == (1, 1)


async def test_instance_stats_describe_the_current_execution(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("a", extra_events=2)
    await provider.enqueue_orchestrator(raised("a"))
    await provider.enqueue_orchestrator(raised("a"))
    stats = await provider.get_instance_stats("a")
    assert stats is not None
    history = await provider.read_history("a")
    assert stats.history_event_count == 3
    assert stats.history_size_bytes == sum(len(e.to_json().encode()) for e in history)
    assert stats.queue_pending_count == 2
    assert (stats.kv_user_key_count, stats.kv_total_value_bytes) == (0, 0)
    assert await provider.get_instance_stats("missing") is None


async def test_list_children_names_direct_sub_orchestrations(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("root")
    await turns.create("kid-1", parent="root")
    await turns.create("kid-2", parent="root")
    await turns.create("grandkid", parent="kid-1")
    assert sorted(await provider.list_children("root")) == ["kid-1", "kid-2"]
    assert await provider.list_children("kid-1") == ["grandkid"]
    assert await provider.list_children("grandkid") == []
    assert await provider.list_children("missing") == []
