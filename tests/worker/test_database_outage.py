"""What a pod's owner sees when the database goes away and comes back.

``/readyz`` answers 503 while the database is unreachable and 200 again once it is back.
The log says so ONCE: one warning when the outage starts, one line when the worker has
recovered, however many operations were in flight (before, a PostgreSQL restart printed a
``retrying`` line per failed call: dozens). Work in flight is neither lost nor duplicated.

The first test cuts off a database created for it on the shared server (connections
terminated and refused); the second restarts a PostgreSQL server of its own, for real.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from duraflow import AsyncClient
from duraflow.providers.postgres import PostgresProvider
from tests.worker.conftest import WorkerFactory
from tests.worker.support import RestartableServer, WorkerProcess, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
SHORT_LOCKS = {"DURAFLOW_ORCHESTRATOR_LOCK_TIMEOUT_MS": "5000",
               "DURAFLOW_WORKER_LOCK_TIMEOUT_MS": "5000"}
OUTAGE_S = 3.0
INSTANCES = 20


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@pytest.fixture
async def own_database(postgres_url: str) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    """A database of this test on the shared server, and an admin connection to cut it off."""
    name = f"ready_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name, admin
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def warnings_and_errors(worker: WorkerProcess) -> list[dict[str, str]]:
    records = [json.loads(line) for line in worker.lines if line.startswith("{")]
    return [r for r in records if r["level"] in ("WARNING", "ERROR", "CRITICAL")]


async def test_readyz_follows_the_database(
    postgres_url: str, own_database: tuple[str, asyncpg.Connection],
    start_worker: WorkerFactory,
) -> None:
    name, admin = own_database
    worker = start_worker("pod-r", database_url=with_database(postgres_url, name))
    wait_until(lambda: worker.get("/readyz")[0] == 200, 10, "/readyz 200 at start")

    await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
    await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
    status, body = wait_until(lambda: (r := worker.get("/readyz"))[0] != 200 and r, 20,
                              "/readyz to turn non-200 while the database is cut off")
    assert status == 503 and body.startswith("database unavailable")
    assert worker.get("/healthz")[0] == 200  # alive: restarting the pod would not help

    await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
    wait_until(lambda: worker.get("/readyz")[0] == 200, 30,
               "/readyz to answer 200 again once the database is back")


async def test_a_database_restart_logs_one_warning_and_one_recovery(
    start_worker: WorkerFactory, tmp_path: Path
) -> None:
    server = await asyncio.to_thread(RestartableServer)
    provider: PostgresProvider | None = None
    try:
        worker = start_worker("pod-o", database_url=server.url, DURAFLOW_SCHEMA="public",
                              DURAFLOW_LOG_FORMAT="json", **SHORT_LOCKS)
        provider = await PostgresProvider.connect_async(server.url, "public")
        client = AsyncClient(provider)
        for i in range(INSTANCES):  # activities and timers in flight during the restart
            await client.start_orchestration(
                f"o-{i}", "Slow", {"seconds": 0.3, "timer_ms": 1500, "markers": str(tmp_path)})
        wait_until(lambda: (tmp_path / "pod-o-started").exists(), 30, "activities to run")

        await asyncio.to_thread(server.stop_server)
        wait_until(lambda: worker.get("/readyz")[0] == 503, 20, "/readyz 503 in the outage")
        await asyncio.sleep(OUTAGE_S)  # the outage itself, not a synchronisation
        await asyncio.to_thread(server.start_server)
        wait_until(lambda: worker.get("/readyz")[0] == 200, 30, "/readyz 200 after restart")

        for i in range(INSTANCES):
            result = await client.wait_for_orchestration(f"o-{i}", 60_000)
            assert result.status == "Completed", result.error
            history = await provider.read_history(f"o-{i}")
            kinds = Counter(e.kind for e in history)
            assert kinds["ActivityCompleted"] == 1 and kinds["TimerFired"] == 1

        noisy = warnings_and_errors(worker)
        assert len(noisy) == 1, "\n".join(json.dumps(r) for r in noisy)
        assert noisy[0]["message"].startswith("database unavailable")
        recovered = [line for line in worker.lines if "database available again" in line]
        assert len(recovered) == 1, worker.log()
        assert json.loads(recovered[0])["level"] == "INFO"
    finally:
        if provider is not None:
            await provider.close()
        await asyncio.to_thread(server.remove)
