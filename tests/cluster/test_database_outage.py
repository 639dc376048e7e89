"""A PostgreSQL outage while a runtime is busy: it logs, backs off, and resumes.

The outage is real from the runtime's point of view: every connection to its database is
terminated and new ones are refused for a few seconds, on a database created for this test
alone (so other tests are not disturbed). Nothing may be lost or duplicated.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from duraflow import AsyncClient, AsyncRuntime, RuntimeOptions
from duraflow.providers.postgres import PostgresProvider

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
OUTAGE_S = 3.0


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def test_runtime_survives_a_database_outage(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="duraflow")
    database = f"outage_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    url = with_database(postgres_url, database)
    provider = await PostgresProvider.connect_async(url, "public")
    runtime = AsyncRuntime(provider, RuntimeOptions(orchestrator_lock_timeout_ms=2_000,
                                                    worker_lock_timeout_ms=3_000))
    calls: Counter[int] = Counter()

    @runtime.register_activity("Work")
    def work(ctx: Any, n: int) -> int:
        calls[n] += 1
        return n * 10

    @runtime.register_orchestration("Flow")
    def flow(ctx: Any, n: int) -> Any:
        a = yield ctx.schedule_activity("Work", n)
        yield ctx.schedule_timer(OUTAGE_S * 1000 / 2)
        b = yield ctx.schedule_activity("Work", n + 1000)
        return a + b

    try:
        await runtime.start()
        client = AsyncClient(provider)
        for n in range(30):
            await client.start_orchestration(f"flow-{n}", "Flow", n)
        while sum(calls.values()) < 30:  # every first activity ran: all are on their timer
            await asyncio.sleep(0.02)

        await admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            database,
        )
        await asyncio.sleep(OUTAGE_S)  # the outage itself, not a synchronisation
        await admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')

        for n in range(30):
            result = await client.wait_for_orchestration(f"flow-{n}", 60_000)
            assert result.status == "Completed", result.error
            assert result.output == n * 10 + (n + 1000) * 10
            history = await provider.read_history(f"flow-{n}")
            sources = Counter(e.source_event_id for e in history
                              if e.kind in ("ActivityCompleted", "TimerFired"))
            assert len(sources) == 3 and set(sources.values()) == {1}
        assert any("retrying" in r.getMessage() for r in caplog.records), "outage not logged"
    finally:
        await runtime.shutdown(2_000)
        await provider.close()
        await admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
