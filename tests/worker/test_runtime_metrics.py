"""The runtime's Prometheus series count each event once, per runtime, with bounded labels.

In-process on SQLite: every outcome the interface names is produced on purpose (success,
failure, retry, cancellation, poison-free completion, continue-as-new) and the registry is
read back with prometheus-client's own ``get_sample_value``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from prometheus_client import generate_latest

from duraflow import AsyncClient, AsyncRuntime, Client, Runtime, RuntimeOptions
from duraflow.core.models import QueueDepths
from duraflow.providers.errors import ProviderError
from duraflow.providers.sqlite import SqliteProvider
from duraflow.runtime.health import DatabaseHealth
from duraflow.runtime.prometheus import QueueDepthCollector

TIMEOUT_MS = 15_000


def register(rt: AsyncRuntime, flaky_failures: dict[str, int]) -> None:
    lock = threading.Lock()

    def echo(ctx: Any, value: Any) -> Any:
        return value

    def flaky(ctx: Any, key: str) -> str:
        with lock:
            flaky_failures[key] = flaky_failures.get(key, 0) + 1
            if flaky_failures[key] <= 2:
                raise ConnectionError("transient")
        return "ok"

    def wait_for_cancel(ctx: Any, _: Any) -> str:
        ctx.wait_cancelled(10)
        return "late"

    def pipeline(ctx: Any, n: int) -> Any:
        a = yield ctx.schedule_activity("Echo", n)
        b = yield ctx.schedule_activity_with_retry("Flaky", f"k{n}", {"max_attempts": 3,
                                                                     "backoff": "none"})
        return [a, b]

    def looping(ctx: Any, n: int) -> Any:
        if n > 0:
            return (yield ctx.continue_as_new(n - 1))
        return "done"

    def racing(ctx: Any, _: Any) -> Any:
        winner = yield ctx.race(ctx.schedule_activity("WaitForCancel", None),
                                ctx.schedule_timer(50))
        return winner["index"]

    rt.register_activity("Echo", echo)
    rt.register_activity("Flaky", flaky)
    rt.register_activity("WaitForCancel", wait_for_cancel)
    rt.register_orchestration("Pipeline", pipeline)
    rt.register_orchestration("Loop", looping)
    rt.register_orchestration("Race", racing)

    def pinned(ctx: Any, session: str) -> Any:
        return (yield ctx.schedule_activity_on_session("Echo", session, session))

    rt.register_orchestration("Pinned", pinned)


async def test_each_event_is_counted_once_with_its_labels() -> None:
    provider = await SqliteProvider.in_memory_async()
    rt = AsyncRuntime(provider, RuntimeOptions(dispatcher_poll_interval_ms=20))
    other = AsyncRuntime(provider, RuntimeOptions())  # a second runtime: its own registry
    register(rt, {})
    await rt.start()
    try:
        client = AsyncClient(provider)
        for n in range(3):
            await client.start_orchestration(f"p-{n}", "Pipeline", n)
        await client.start_orchestration("loop", "Loop", 1)
        await client.start_orchestration("race", "Race", None)
        for n in range(3):
            result = await client.wait_for_orchestration(f"p-{n}", TIMEOUT_MS)
            assert result.status == "Completed" and result.output == [n, "ok"]
        assert (await client.wait_for_orchestration("loop", TIMEOUT_MS)).output == "done"
        assert (await client.wait_for_orchestration("race", TIMEOUT_MS)).output == 1
        assert rt.metrics.registry.get_sample_value("duraflow_active_sessions") == 0
        await client.start_orchestration("pinned", "Pinned", "s-1")
        assert (await client.wait_for_orchestration("pinned", TIMEOUT_MS)).output == "s-1"
        # The session stays with this runtime until it idles out.
        assert rt.metrics.registry.get_sample_value("duraflow_active_sessions") == 1
    finally:
        await rt.shutdown(5_000)
        await provider.close()

    def value(name: str, **labels: str) -> float | None:
        return rt.metrics.registry.get_sample_value(name, labels)

    assert value("duraflow_orchestrations_started_total", orchestration="Pipeline") == 3
    assert value("duraflow_orchestrations_finished_total", orchestration="Pipeline",
                 outcome="completed") == 3
    # Loop(1) continues as new once: two executions started, one per outcome.
    assert value("duraflow_orchestrations_started_total", orchestration="Loop") == 2
    assert value("duraflow_orchestrations_finished_total", orchestration="Loop",
                 outcome="continued_as_new") == 1
    assert value("duraflow_orchestrations_finished_total", orchestration="Loop",
                 outcome="completed") == 1
    assert value("duraflow_activity_executions_total", activity="Echo", outcome="success") == 4
    assert value("duraflow_activity_executions_total", activity="Flaky",
                 outcome="failure") == 6
    assert value("duraflow_activity_executions_total", activity="Flaky", outcome="success") == 3
    assert value("duraflow_activity_retries_total", activity="Flaky") == 6
    assert value("duraflow_activity_retries_total", activity="Echo") is None
    assert value("duraflow_activity_executions_total", activity="WaitForCancel",
                 outcome="cancelled") == 1
    assert value("duraflow_activity_duration_seconds_count", activity="Echo") == 4
    # Pipeline: start turn + 1 per activity result + ... every turn observed once.
    turns = value("duraflow_turn_duration_seconds_count", orchestration="Pipeline")
    assert turns is not None and turns >= 3 * 3
    hits = value("duraflow_replay_cache_hits_total")
    assert hits is not None and hits > 0
    # duroxide's snapshot counts the cancelled activity that returned as a success (its
    # fields have no "cancelled"); the Prometheus series says what happened to the result.
    assert rt.metrics.snapshot().activity_success == 4 + 3 + 1
    # Two runtimes, two registries: nothing of the first shows in the second.
    assert other.metrics.registry.get_sample_value(
        "duraflow_orchestrations_started_total", {"orchestration": "Pipeline"}) is None
    exposition = generate_latest(rt.metrics.registry).decode()
    assert "p-0" not in exposition and "loop\"" not in exposition  # never an instance id


def test_blocking_runtimes_expose_their_own_registries() -> None:
    provider = SqliteProvider.in_memory()
    first, second = Runtime(provider), Runtime(provider)
    first.register_activity("Echo", lambda ctx, value: value)

    @first.register_orchestration("One")
    def one(ctx: Any, value: Any) -> Any:
        return (yield ctx.schedule_activity("Echo", value))

    first.start()
    try:
        client = Client(provider)
        client.start_orchestration("one", "One", 1)
        assert client.wait_for_orchestration("one", TIMEOUT_MS).output == 1
    finally:
        first.shutdown(5_000)
    name, labels = "duraflow_orchestrations_finished_total", {"orchestration": "One",
                                                              "outcome": "completed"}
    assert first.prometheus_registry.get_sample_value(name, labels) == 1
    assert second.prometheus_registry.get_sample_value(name, labels) is None
    assert first.prometheus_registry is not second.prometheus_registry


def test_an_outage_logs_one_warning_and_one_recovery(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="duraflow")
    clock = [100.0]
    health = DatabaseHealth(clock=lambda: clock[0])
    down = ProviderError("fetch_work_item", "connection refused")
    in_flight = health.now()  # an operation that began before the outage...
    for _ in range(20):  # many concurrent operations fail while the database is down
        health.failed("fetch_work_item", down)
        clock[0] += 0.1
    assert not health.healthy
    health.succeeded(in_flight)  # ...and answered late: not a recovery
    assert not health.healthy
    started = health.now()
    clock[0] += 0.1
    health.succeeded(started)
    assert health.healthy
    health.failed("ack_work_item", down, started=in_flight)  # began before the recovery
    assert health.healthy
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage()[:20] for r in warnings] == ["database unavailable"]
    recoveries = [r for r in caplog.records if "available again" in r.getMessage()]
    assert len(recoveries) == 1 and "20 failed operations" in recoveries[0].getMessage()


async def test_queue_depths_are_read_at_most_once_per_ttl() -> None:
    clock = [0.0]
    reads: list[int] = []
    collector = QueueDepthCollector(ttl_s=5.0, clock=lambda: clock[0])

    async def read() -> QueueDepths:
        reads.append(1)
        return QueueDepths(orchestrator_queue=2, worker_queue=3, timer_queue=0)

    for _ in range(50):  # a scrape flood
        await collector.refresh(read)
    assert len(reads) == 1
    samples = {s.labels["queue"]: s.value for m in collector.collect() for s in m.samples}
    assert samples == {"orchestrator": 2, "worker": 3, "timer": 0}
    clock[0] += 5.0
    await collector.refresh(read)
    assert len(reads) == 2
