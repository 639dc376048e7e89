"""``duraflow worker`` runs what a client starts, and a real Prometheus scrapes what it did.

The worker process is configured the way the operator's StatefulSet configures a pod (env
variables only). Prometheus is the real server (Debian package), scraping ``/metrics`` every
second; its query API must show exactly the completed and failed orchestrations and activity
executions that ran, and the activity duration histogram. ``promtool check metrics`` (the
Prometheus project's linter for exposition format and naming) must pass on the exposition.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from duraflow import AsyncClient
from duraflow.providers.postgres import PostgresProvider
from tests.worker.conftest import WorkerFactory
from tests.worker.support import Prometheus, ensure_prometheus, wait_until

# The first run may install the prometheus package (apt-get): allow for a slow mirror.
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]
SUCCEEDING, FAILING = 7, 3


async def test_worker_runs_orchestrations_and_prometheus_sees_them(
    postgres_url: str, schema: str, start_worker: WorkerFactory
) -> None:
    binary = ensure_prometheus()
    worker = start_worker("pod-0")
    assert worker.get("/healthz")[0] == 200
    assert worker.get("/readyz") == (200, "ready\n")

    provider = await PostgresProvider.connect_async(postgres_url, schema)
    try:
        client = AsyncClient(provider)
        for i in range(SUCCEEDING):
            await client.start_orchestration(f"ok-{i}", "Succeed", {"i": i})
        for i in range(FAILING):
            await client.start_orchestration(f"bad-{i}", "Failing", f"boom {i}")
        for i in range(SUCCEEDING):
            result = await client.wait_for_orchestration(f"ok-{i}", 30_000)
            assert result.status == "Completed" and result.output == {"i": i}
        for i in range(FAILING):
            result = await client.wait_for_orchestration(f"bad-{i}", 30_000)
            assert result.status == "Failed" and f"boom {i}" in str(result.error)
    finally:
        await provider.close()

    status, exposition = worker.get("/metrics")
    assert status == 200
    assert 'duraflow_queue_depth{queue="worker"} 0.0' in exposition
    promtool = shutil.which("promtool")
    assert promtool is not None, "the prometheus package brings promtool"
    lint = subprocess.run([promtool, "check", "metrics"], input=exposition, text=True,
                          capture_output=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    prometheus = Prometheus(binary, [f"127.0.0.1:{worker.port}"])
    try:
        def finished(outcome: str) -> float | None:
            return prometheus.value(
                f'sum(duraflow_orchestrations_finished_total{{outcome="{outcome}"}})')

        wait_until(lambda: finished("completed") is not None, 30, "the first scrape")
        assert finished("completed") == SUCCEEDING
        assert finished("failed") == FAILING
        assert prometheus.value(
            'sum(duraflow_orchestrations_started_total{orchestration="Succeed"})') == SUCCEEDING
        assert prometheus.value('duraflow_activity_executions_total'
                                '{activity="Echo",outcome="success"}') == SUCCEEDING
        assert prometheus.value('duraflow_activity_executions_total'
                                '{activity="Fail",outcome="failure"}') == FAILING
        assert prometheus.value(
            'duraflow_activity_duration_seconds_count{activity="Echo"}') == SUCCEEDING
        buckets = prometheus.query('duraflow_activity_duration_seconds_bucket{activity="Echo"}')
        assert {b["metric"]["le"] for b in buckets} >= {"0.005", "1.0", "+Inf"}
        inf = next(b for b in buckets if b["metric"]["le"] == "+Inf")
        assert float(inf["value"][1]) == SUCCEEDING
        assert prometheus.value('duraflow_turn_duration_seconds_count{orchestration="Failing"}'
                                ) == 2 * FAILING  # start turn + completion turn each
        # Series identify what ran, never which instance: no instance ids in any label.
        labels = {key for series in prometheus.query('{__name__=~"duraflow_.*"}')
                  for key in series["metric"]}
        assert labels <= {"__name__", "job", "instance", "orchestration", "activity", "outcome",
                          "queue", "operation", "le"}, labels
    finally:
        prometheus.stop()
