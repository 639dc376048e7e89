"""SIGTERM: running work gets the grace period, then goes to another worker at once.

Lock timeouts here are two minutes, so if the second worker only got the activity when the
first worker's lock expired, the deadlines below would fail by a wide margin. The activity
is a *sync* function (it runs in a thread, which Python cannot interrupt), and the worker must
exit 0 right after its grace period anyway, not when the activity returns.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from duraflow import AsyncClient
from duraflow.providers.postgres import PostgresProvider
from tests.worker.conftest import WorkerFactory
from tests.worker.support import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
LONG_LOCKS = {"DURAFLOW_ORCHESTRATOR_LOCK_TIMEOUT_MS": "120000",
              "DURAFLOW_WORKER_LOCK_TIMEOUT_MS": "120000"}
GRACE_MS = 1_000
#: The exit deadline after SIGTERM: the grace period plus the shutdown margin plus slack for
#: a loaded machine. The activity still running takes far longer than this.
EXIT_DEADLINE_S = GRACE_MS / 1000 + 3.0 + 4.0


async def test_sigterm_mid_activity_hands_it_to_another_worker_at_once(
    postgres_url: str, schema: str, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    first = start_worker("pod-a", DURAFLOW_GRACE_MS=str(GRACE_MS), **LONG_LOCKS)
    provider = await PostgresProvider.connect_async(postgres_url, schema)
    try:
        client = AsyncClient(provider)
        await client.start_orchestration(
            "long-1", "Slow", {"seconds": 4, "markers": str(tmp_path)})
        wait_until(lambda: (tmp_path / "pod-a-started").exists(), 30,
                   "the activity to start on pod-a")

        first.terminate()
        assert first.wait_exit(EXIT_DEADLINE_S) == 0
        assert not (tmp_path / "pod-b-started").exists()
        second = start_worker("pod-b", **LONG_LOCKS)
        taken = time.monotonic()
        # Taken over at once: well before pod-a's 120 s lock would have expired.
        wait_until(lambda: (tmp_path / "pod-b-started").exists(), 20,
                   "pod-b to pick up the released activity")
        result = await client.wait_for_orchestration("long-1", 30_000)
        assert result.status == "Completed", result.error
        assert result.output == "pod-b"
        assert time.monotonic() - taken < 60, "picked up by lock expiry, not by release"

        history = await provider.read_history("long-1")
        completions = Counter(e.kind for e in history)
        assert completions["ActivityScheduled"] == 1 and completions["ActivityCompleted"] == 1
        assert "their work was released to other workers" in first.log()
        assert second.get("/readyz")[0] == 200
    finally:
        await provider.close()


async def test_sigterm_exits_after_the_grace_period_while_a_sync_activity_runs(
    postgres_url: str, schema: str, start_worker: WorkerFactory, tmp_path: Path
) -> None:
    worker = start_worker("pod-c", DURAFLOW_GRACE_MS=str(GRACE_MS), **LONG_LOCKS)
    provider = await PostgresProvider.connect_async(postgres_url, schema)
    admin = await asyncpg.connect(postgres_url)
    try:
        client = AsyncClient(provider)
        await client.start_orchestration(
            "stuck-1", "Slow", {"seconds": 120, "markers": str(tmp_path)})
        wait_until(lambda: (tmp_path / "pod-c-started").exists(), 30,
                   "the activity to start on pod-c")
        worker.terminate()
        # /readyz stops answering 200 as soon as the stop begins.
        wait_until(lambda: worker.get("/readyz")[0] != 200, 5, "/readyz to turn non-200")
        assert worker.wait_exit(EXIT_DEADLINE_S) == 0
        log = worker.log()
        assert "SIGTERM received" in log and "stopped" in log
        # Released, not left locked, and the shutdown did not count as a failed attempt.
        rows = await admin.fetch(
            f'SELECT lock_token, attempt_count FROM "{schema}".worker_queue')
        assert [(r["lock_token"], r["attempt_count"]) for r in rows] == [(None, 0)]
        assert (await provider.get_queue_depths()).worker_queue == 1
    finally:
        await admin.close()
        await provider.close()
