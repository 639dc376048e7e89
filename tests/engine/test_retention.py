"""Store retention (``RuntimeOptions(retention_ms=...)``): a runtime deletes the instances
that finished longer ago than the retention, whole trees at a time, and never a running
instance or a finished sub-orchestration of a running parent; one runtime at a time does it
(a lease in the store), and ``duraflow_instances_pruned_total`` counts what it deleted."""

from __future__ import annotations

import time
from typing import Any

import pytest

from duraflow import RuntimeOptions
from duraflow.bridge import run_sync
from duraflow.runtime.metrics import Metrics
from duraflow.runtime.retention import Retention

from .conftest import Store
from .support import TIMEOUT_MS, completed, poll_until


def register(rt: Any) -> None:
    @rt.register_orchestration("Echo")
    def echo(ctx: Any, value: Any) -> Any:
        return value
        yield

    @rt.register_orchestration("Parent")
    def parent(ctx: Any, _: Any) -> Any:
        child = yield ctx.schedule_sub_orchestration_with_id("Echo", "child", "from parent")
        ctx.set_custom_status("child done")
        go = yield ctx.wait_for_event("go")
        return [child, go]


def test_retention_deletes_exactly_the_instances_past_it(
    store: Store, start_runtime: Any, client: Any
) -> None:
    if store.kind == "sqlite-file":
        pytest.skip("runs on sqlite-memory (the same engine) and postgres")
    rt = start_runtime(register, retention_ms=1_000)
    client.start_orchestration("old", "Echo", 1)
    completed(client.wait_for_orchestration("old", TIMEOUT_MS))
    client.start_orchestration("parent", "Parent")
    completed(client.wait_for_orchestration("child", TIMEOUT_MS))
    child_done = time.monotonic()

    def gone(instance_id: str) -> bool:
        return client.get_status(instance_id).status == "NotFound"

    poll_until(lambda: gone("old"), "the finished instance to be deleted")
    client.start_orchestration("young", "Echo", 2)
    completed(client.wait_for_orchestration("young", TIMEOUT_MS))
    assert not gone("young")  # finished less than the retention ago
    poll_until(lambda: time.monotonic() - child_done > 2.5 and gone("young"),
               "the young instance to age, and go")
    # The child finished long ago, but its parent runs: neither is touched.
    assert client.get_status("parent").status == "Running"
    assert client.get_status("child").status == "Completed"
    client.raise_event("parent", "go", "now")
    completed(client.wait_for_orchestration("parent", TIMEOUT_MS))
    poll_until(lambda: gone("parent") and gone("child"), "the finished tree to be deleted")
    pruned = rt.prometheus_registry.get_sample_value("duraflow_instances_pruned_total")
    assert pruned == 4


def test_one_runtime_at_a_time_holds_the_retention_lease(provider: Any) -> None:
    first = Retention(provider, 1_000, "node-a/1", Metrics())
    second = Retention(provider, 1_000, "node-b/2", Metrics())
    assert run_sync(provider.try_lease("retention", "node-a/1", 60_000))
    assert run_sync(second.sweep()) == 0  # a's lease is live: b does nothing
    assert run_sync(first.sweep()) == 0  # a sweeps (nothing to delete yet)
    assert not run_sync(provider.try_lease("retention", "node-b/2", 60_000))


def test_retention_is_whole_milliseconds_of_at_least_a_second() -> None:
    assert RuntimeOptions().retention_ms is None
    assert RuntimeOptions(retention_ms=86_400_000).retention_ms == 86_400_000
    with pytest.raises(ValueError, match="retention_ms must be >= 1000, got 10"):
        RuntimeOptions(retention_ms=10)
    with pytest.raises(TypeError, match="retention_ms must be an int"):
        RuntimeOptions(retention_ms="30d")
