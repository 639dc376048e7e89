"""Management calls: listing, info, metrics, queue depths, deletion and pruning."""

from __future__ import annotations

import json
import threading

import pytest

from duraflow import (
    DeleteInstanceResult,
    ExecutionInfo,
    InstanceFilter,
    InstanceInfo,
    PruneOptions,
    PruneResult,
    QueueDepths,
    SystemMetrics,
    SystemStats,
)

from .support import TIMEOUT_MS, completed, failed, poll_until, uid, wait_for_custom_status


def _register_mix(rt):
    rt.register_activity("Work", lambda ctx, v: v)

    @rt.register_orchestration("Succeeds")
    def succeeds(ctx, v):
        return (yield ctx.schedule_activity("Work", v))

    @rt.register_orchestration("Fails")
    def fails(ctx, _):
        yield ctx.schedule_timer(1)
        raise ValueError("planned failure")

    @rt.register_orchestration("Waits")
    def waits(ctx, _):
        ctx.set_custom_status("waiting")
        yield ctx.wait_for_event("finish")
        return "finished"


@pytest.fixture
def three_instances(start_runtime, client):
    """One Completed, one Failed, one Running instance (ids in that order)."""
    start_runtime(_register_mix)
    done, bad, running = uid("done"), uid("bad"), uid("running")
    client.start_orchestration(done, "Succeeds", {"v": 1})
    client.start_orchestration(bad, "Fails", None)
    client.start_orchestration(running, "Waits", None)
    completed(client.wait_for_orchestration(done, TIMEOUT_MS))
    failed(client.wait_for_orchestration(bad, TIMEOUT_MS))
    wait_for_custom_status(client, running, "waiting")
    return done, bad, running


def test_list_all_instances(client, three_instances):
    assert sorted(client.list_all_instances()) == sorted(three_instances)


def test_list_instances_by_status(client, three_instances):
    done, bad, running = three_instances
    assert client.list_instances_by_status("Completed") == [done]
    assert client.list_instances_by_status("Failed") == [bad]
    assert client.list_instances_by_status("Running") == [running]
    assert client.list_instances_by_status("ContinuedAsNew") == []


def test_get_instance_info(client, three_instances):
    done, bad, running = three_instances
    info = client.get_instance_info(done)
    assert isinstance(info, InstanceInfo)
    assert info.instance_id == done
    assert info.orchestration_name == "Succeeds"
    assert info.orchestration_version == "1.0.0"
    assert info.current_execution_id == 1
    assert info.status == "Completed"
    assert json.loads(info.output) == {"v": 1}
    assert info.parent_instance_id is None
    assert client.get_instance_info(bad).status == "Failed"
    assert "planned failure" in client.get_instance_info(bad).output
    assert client.get_instance_info(running).status == "Running"
    with pytest.raises(RuntimeError):
        client.get_instance_info(uid("missing"))


def test_get_execution_info(client, three_instances):
    done, _, running = three_instances
    info = client.get_execution_info(done, 1)
    assert isinstance(info, ExecutionInfo)
    assert info.execution_id == 1
    assert info.status == "Completed"
    assert json.loads(info.output) == {"v": 1}
    assert info.completed_at is not None and info.completed_at > 0
    assert info.event_count == len(client.read_execution_history(done, 1))
    running_info = client.get_execution_info(running, 1)
    assert running_info.status == "Running"
    assert running_info.completed_at is None


def test_read_execution_history_shapes(client, three_instances):
    done, _, _ = three_instances
    history = client.read_execution_history(done, 1)
    assert [e.kind for e in history] == [
        "OrchestrationStarted", "ActivityScheduled", "ActivityCompleted",
        "OrchestrationCompleted"]
    assert [e.event_id for e in history] == [1, 2, 3, 4]
    started = json.loads(history[0].data)
    assert started["name"] == "Succeeds"
    scheduled = json.loads(history[1].data)
    assert scheduled["name"] == "Work"
    assert history[2].source_event_id == history[1].event_id
    assert json.loads(history[3].data) == {"v": 1}
    assert all(e.timestamp_ms > 0 for e in history)


def test_get_system_metrics(client, three_instances):
    metrics = client.get_system_metrics()
    assert isinstance(metrics, SystemMetrics)
    assert metrics.total_instances == 3
    assert metrics.total_executions == 3
    assert metrics.completed_instances == 1
    assert metrics.failed_instances == 1
    assert metrics.running_instances == 1
    assert metrics.total_events == sum(
        len(client.read_execution_history(i, 1)) for i in three_instances)


def test_get_queue_depths(start_runtime, client):
    # Without a runtime, started instances wait in the orchestrator queue.
    assert client.get_queue_depths() == QueueDepths(0, 0, 0)
    queued = [uid("queued-a"), uid("queued-b")]
    for iid in queued:
        client.start_orchestration(iid, "Unprocessed", None)
    depths = client.get_queue_depths()
    assert depths.orchestrator_queue == 2
    assert depths.worker_queue == 0

    def register(rt):
        @rt.register_orchestration("Unprocessed")
        def unprocessed(ctx, _):
            task = ctx.schedule_activity("NoWorkerRunsThis", None)
            ctx.set_custom_status("scheduled")
            yield task

    # Orchestrations run, but no worker takes activities: they stay queued.
    start_runtime(register, worker_concurrency=0)
    for iid in queued:
        wait_for_custom_status(client, iid, "scheduled")
    depths = client.get_queue_depths()
    assert depths.orchestrator_queue == 0
    assert depths.worker_queue == 2


def test_delete_completed_instance(client, three_instances):
    done, _, _ = three_instances
    events = len(client.read_execution_history(done, 1))
    result = client.delete_instance(done)
    assert isinstance(result, DeleteInstanceResult)
    assert result.instances_deleted == 1
    assert result.executions_deleted == 1
    assert result.events_deleted == events
    assert client.get_status(done).status == "NotFound"
    assert done not in client.list_all_instances()


def test_delete_running_instance_needs_force(client, three_instances):
    _, _, running = three_instances
    with pytest.raises(RuntimeError, match="running"):
        client.delete_instance(running)
    assert client.get_status(running).status == "Running"
    result = client.delete_instance(running, force=True)
    assert result.instances_deleted == 1
    assert client.get_status(running).status == "NotFound"


def test_delete_sub_orchestration_is_rejected_and_root_delete_takes_tree(
    start_runtime, client
):
    iid = uid("family")
    child_id = f"{iid}-child"

    def register(rt):
        @rt.register_orchestration("Kid")
        def kid(ctx, _):
            return "kid"
            yield

        @rt.register_orchestration("Family")
        def family(ctx, _):
            return (yield ctx.schedule_sub_orchestration_with_id("Kid", child_id, None))

    start_runtime(register)
    client.start_orchestration(iid, "Family", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "kid"
    with pytest.raises(RuntimeError, match="sub-orchestration"):
        client.delete_instance(child_id)
    assert client.get_status(child_id).status == "Completed"
    result = client.delete_instance(iid)
    assert result.instances_deleted == 2
    assert client.get_status(child_id).status == "NotFound"
    assert client.get_status(iid).status == "NotFound"


def test_delete_instance_bulk_skips_running(client, three_instances):
    done, bad, running = three_instances
    result = client.delete_instance_bulk(InstanceFilter(instance_ids=[done, bad, running]))
    assert result.instances_deleted == 2
    assert client.get_status(done).status == "NotFound"
    assert client.get_status(bad).status == "NotFound"
    assert client.get_status(running).status == "Running"
    assert client.list_all_instances() == [running]


def test_delete_instance_bulk_respects_limit(client, three_instances):
    result = client.delete_instance_bulk(InstanceFilter(limit=1))
    assert result.instances_deleted == 1
    assert len(client.list_all_instances()) == 2


def test_prune_executions_keep_last_after_continue_as_new(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Eternal")
        def eternal(ctx, n):
            yield ctx.schedule_timer(1)
            if n < 3:
                return (yield ctx.continue_as_new(n + 1))
            return n

    start_runtime(register)
    iid = uid("prune")
    client.start_orchestration(iid, "Eternal", 0)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == 3
    assert client.list_executions(iid) == [1, 2, 3, 4]
    pruned_events = sum(len(client.read_execution_history(iid, e)) for e in (1, 2))
    result = client.prune_executions(iid, PruneOptions(keep_last=2))
    assert isinstance(result, PruneResult)
    assert result.instances_processed == 1
    assert result.executions_deleted == 2
    assert result.events_deleted == pruned_events
    assert client.list_executions(iid) == [3, 4]
    result = client.prune_executions(iid, PruneOptions(keep_last=1))
    assert result.executions_deleted == 1
    assert client.list_executions(iid) == [4]
    # The current execution and the instance's result are untouched.
    assert completed(client.get_status(iid)) == 3
    assert client.get_instance_info(iid).current_execution_id == 4


def test_get_orchestration_stats(client, three_instances):
    done, _, _ = three_instances
    stats = client.get_orchestration_stats(done)
    assert isinstance(stats, SystemStats)
    assert stats.history_event_count == len(client.read_execution_history(done, 1))
    assert stats.history_size_bytes > 0
    assert client.get_orchestration_stats(uid("missing")) is None


def test_prune_executions_bulk(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Rolling")
        def rolling(ctx, n):
            if n < 2:
                return (yield ctx.continue_as_new(n + 1))
            return n

    start_runtime(register)
    ids = [uid("bulk-prune-a"), uid("bulk-prune-b")]
    for iid in ids:
        client.start_orchestration(iid, "Rolling", 0)
    for iid in ids:
        assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == 2
    result = client.prune_executions_bulk(InstanceFilter(instance_ids=ids),
                                          PruneOptions(keep_last=1))
    assert result.instances_processed == 2
    assert result.executions_deleted == 4
    for iid in ids:
        assert client.list_executions(iid) == [3]


def test_instance_id_is_reusable_after_delete(start_runtime, client):
    def register(rt):
        @rt.register_orchestration("Reusable")
        def reusable(ctx, value):
            yield ctx.schedule_timer(1)
            return value

    start_runtime(register)
    iid = uid("reuse")
    client.start_orchestration(iid, "Reusable", "first life")
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "first life"
    client.delete_instance(iid)
    client.start_orchestration(iid, "Reusable", "second life")
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == "second life"
    assert client.list_executions(iid) == [1]


def test_force_delete_running_instance_with_activity_in_flight(start_runtime, client):
    started, release = threading.Event(), threading.Event()

    def register(rt):
        def held(ctx, _):
            started.set()
            release.wait(TIMEOUT_MS / 1000)
            return "late result"

        rt.register_activity("Held", held)

        @rt.register_orchestration("Doomed")
        def doomed(ctx, _):
            return (yield ctx.schedule_activity("Held", None))

        @rt.register_orchestration("Survivor")
        def survivor(ctx, _):
            return "alive"
            yield

    start_runtime(register)
    iid = uid("doomed")
    client.start_orchestration(iid, "Doomed", None)
    assert started.wait(TIMEOUT_MS / 1000)
    assert client.delete_instance(iid, force=True).instances_deleted == 1
    release.set()  # the late completion must find nothing and recreate nothing
    other = uid("survivor")
    client.start_orchestration(other, "Survivor", None)
    assert completed(client.wait_for_orchestration(other, TIMEOUT_MS)) == "alive"
    poll_until(lambda: client.get_queue_depths().orchestrator_queue == 0,
               "the late completion to be consumed")
    assert client.get_status(iid).status == "NotFound"
    assert iid not in client.list_all_instances()
