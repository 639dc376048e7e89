"""Several real worker processes on one PostgreSQL database, one of them SIGKILLed.

This is the production shape (many pods, one database). Killing a worker mid-run must lose
nothing and duplicate nothing: every orchestration completes, every activity completion is
in history exactly once, and the surviving worker picks up the dead one's locked work after
its locks expire.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from duraflow import AsyncClient
from duraflow.providers.postgres import PostgresProvider
from tests.cluster.app import STEPS

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
ORCHESTRATIONS = 200


def spawn_worker(url: str, schema: str, node_id: str) -> subprocess.Popen[str]:
    cmd = [
        sys.executable, "-m", "duraflow.cli", "worker",
        "--database-url", url, "--schema", schema, "--app", "tests.cluster.app:register",
        "--worker-node-id", node_id,
        "--orchestrator-lock-timeout-ms", "2000", "--worker-lock-timeout-ms", "3000",
        "--metrics-port", "0",
    ]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # blocks until the worker logs that it is ready (or exits)
        seen.append(line)
        if " ready (" in line:
            return proc
    raise AssertionError(f"worker {node_id} did not start: {''.join(seen)}")


@pytest.fixture
def schema() -> Iterator[str]:
    yield f"mp_{uuid.uuid4().hex[:10]}"


async def test_two_workers_one_killed_lose_and_duplicate_nothing(
    postgres_url: str, schema: str
) -> None:
    provider = await PostgresProvider.connect_async(postgres_url, schema)
    workers: list[subprocess.Popen[str]] = []
    try:
        workers = [spawn_worker(postgres_url, schema, f"node-{i}") for i in (0, 1)]
        client = AsyncClient(provider)
        ids = [f"pipe-{i}" for i in range(ORCHESTRATIONS)]
        for index, instance_id in enumerate(ids):
            await client.start_orchestration(instance_id, "Pipeline", index)

        # Kill worker 0 once a fair share of the work is done, while much is still running.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = len(await provider.list_instances_by_status("Completed"))
            if done >= ORCHESTRATIONS // 4:
                break
            await asyncio.sleep(0.05)
        assert done < ORCHESTRATIONS, "the run finished before the kill; make it longer"
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)

        results: dict[str, Any] = {}
        for instance_id in ids:
            result = await client.wait_for_orchestration(instance_id, 90_000)
            assert result.status == "Completed", (instance_id, result.error)
            results[instance_id] = result.output
        for index, instance_id in enumerate(ids):
            assert results[instance_id]["value"] == index + STEPS
            history = await provider.read_history(instance_id)
            completions = Counter(
                e.source_event_id for e in history if e.kind == "ActivityCompleted"
            )
            assert len(completions) == STEPS and set(completions.values()) == {1}, instance_id
        did_work = Counter(w for out in results.values() for w in out["workers"])
        assert set(did_work) == {"node-0", "node-1"}, did_work
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        await provider.drop_schema()
        await provider.close()

