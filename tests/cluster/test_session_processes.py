"""Sessions across real worker processes, one of them SIGKILLed mid-run.

Three processes serve twelve sessions on one store (PostgreSQL, or a SQLite file). Killing an
owner must lose nothing and must never let two live workers run one session at once: its
sessions move only after their leases lapse. Each step reports its worker and time span, so the
test can check that the spans of one session on different workers never overlap.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
import time
from collections import Counter

import pytest

from duraflow import AsyncClient
from duraflow.providers.protocol import Provider
from tests.cluster.processes import spawn_runner, stop

pytestmark = [pytest.mark.slow]


SESSIONS = 12
SESSION_STEPS = 8


async def test_sessions_never_run_on_two_live_workers_at_once(
    shared_store: tuple[Provider, str, str],
) -> None:
    """Three worker processes serve 12 sessions; one is SIGKILLed mid-run. Every step of every
    session runs exactly once in order, and the spans of one session's steps on different
    workers never overlap: a session moves only once its owner's lease has lapsed."""
    provider, url, schema = shared_store
    options = {
        "session_lock_timeout_ms": 1500, "worker_lock_timeout_ms": 2000,
        "orchestrator_lock_timeout_ms": 2000, "max_sessions_per_runtime": 6,
        "session_idle_timeout_ms": 2000,
        "worker_concurrency": 4, "idle_poll_interval_ms": 500,
    }
    workers: list[subprocess.Popen[str]] = []
    try:
        workers = [spawn_runner(url, schema, {**options, "worker_node_id": f"node-{i}"})
                   for i in range(3)]
        client = AsyncClient(provider)
        ids = [f"sess-{i}" for i in range(SESSIONS)]
        for index, instance_id in enumerate(ids):
            await client.start_orchestration(
                instance_id, "SessionPipeline", {"session": f"s{index}", "steps": SESSION_STEPS}
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = 0
            for instance_id in ids:
                history = await provider.read_history(instance_id)
                done += sum(e.kind == "ActivityCompleted" for e in history)
            if done >= SESSIONS * SESSION_STEPS // 4:
                break
            await asyncio.sleep(0.05)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)

        moved = 0
        for instance_id in ids:
            result = await client.wait_for_orchestration(instance_id, 90_000)
            assert result.status == "Completed", (instance_id, result.error)
            steps = result.output
            assert [s["n"] for s in steps] == list(range(SESSION_STEPS)), instance_id
            history = await provider.read_history(instance_id)
            completions = Counter(
                e.source_event_id for e in history if e.kind == "ActivityCompleted"
            )
            assert set(completions.values()) == {1}, instance_id
            by_worker: dict[str, tuple[float, float]] = {}
            for step in steps:
                first, last = by_worker.get(step["worker"], (step["start"], step["end"]))
                by_worker[step["worker"]] = (min(first, step["start"]), max(last, step["end"]))
            spans = sorted(by_worker.values())
            for (_, end), (start, _) in itertools.pairwise(spans):
                assert end <= start, (instance_id, by_worker)  # never two owners at once
            if len(by_worker) > 1:
                assert "node-0" in by_worker, (instance_id, by_worker)  # only the dead moved
                moved += 1
        print(f"{moved} of {SESSIONS} sessions moved after the kill")
    finally:
        for proc in workers:
            stop(proc)
