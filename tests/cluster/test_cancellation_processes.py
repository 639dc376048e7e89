"""An activity running in another process learns within about a second that its result is
no longer needed, without waiting for its lock renewal (25 s with default options).

Two real processes share one store: this one runs the orchestration (and no activities), a
worker process runs the activity (and no orchestrations). The orchestration races the
activity against an event; once the event wins, the turn deletes the activity's worker row.
On PostgreSQL a trigger announces the deleted lock token over LISTEN/NOTIFY; on SQLite the
worker checks all its running activities with one query every half second.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from duraflow import AsyncClient, AsyncRuntime, RuntimeOptions
from duraflow.providers.protocol import Provider
from tests.cluster.app import register_sessions
from tests.cluster.processes import spawn_runner, stop

pytestmark = [pytest.mark.slow]
#: Far below the 25 s renewal interval, so only the prompt path can pass.
NOTICE_DEADLINE_S = 5.0


async def _until(path: Path, deadline_s: float) -> float:
    deadline = time.monotonic() + deadline_s
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path.name} did not appear in {deadline_s}s"
        await asyncio.sleep(0.01)
    return float(path.read_text())


async def test_an_activity_in_another_process_sees_cancellation_promptly(
    shared_store: tuple[Provider, str, str], tmp_path: Path
) -> None:
    provider, url, schema = shared_store
    worker = spawn_runner(url, schema, {"orchestration_concurrency": 0,
                                        "worker_node_id": "activities-0"})
    runtime = AsyncRuntime(provider, RuntimeOptions(worker_concurrency=0,
                                                    dispatcher_poll_interval_ms=20))
    register_sessions(runtime)
    try:
        await runtime.start()
        client = AsyncClient(provider)
        marker = tmp_path / "noticed"
        await client.start_orchestration("abandon-1", "Abandoned", str(marker))
        await _until(Path(str(marker) + ".started"), 30.0)
        await client.raise_event("abandon-1", "drop", None)
        result = await client.wait_for_orchestration("abandon-1", 10_000)
        assert (result.status, result.output) == ("Completed", 1)  # the event won
        noticed_at = await _until(marker, NOTICE_DEADLINE_S)
        history = await provider.read_history("abandon-1")
        dropped_at = history[-1].timestamp_ms / 1000  # the turn that dropped the activity
        print(f"cancellation noticed {(noticed_at - dropped_at) * 1000:.0f} ms after the turn "
              "that dropped the activity")
    finally:
        await runtime.shutdown(2_000)
        stop(worker)
