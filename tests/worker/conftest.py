"""Fixtures for the ``duraflow worker`` process tests: a fresh schema and a worker factory."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.worker.support import WorkerProcess, free_port

WorkerFactory = Callable[..., WorkerProcess]


@pytest.fixture
def schema(postgres_url: str) -> Iterator[str]:
    """A schema name for this test; dropped afterwards (the workers create it)."""
    import asyncpg

    name = f"wk_{uuid.uuid4().hex[:10]}"
    yield name

    async def drop() -> None:
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture
def start_worker(postgres_url: str, schema: str) -> Iterator[WorkerFactory]:
    """``start_worker(name, **env)`` → a ready worker on this test's schema; all are stopped
    at the end. ``database_url=`` points one elsewhere."""
    started: list[WorkerProcess] = []

    def start(name: str, database_url: str | None = None, **env: str) -> WorkerProcess:
        base = {
            "DURAFLOW_DATABASE_URL": database_url or postgres_url,
            "DURAFLOW_SCHEMA": schema,
            "DURAFLOW_APP": "tests.worker.app:register",
            "DURAFLOW_METRICS_PORT": str(free_port()),
        }
        worker = WorkerProcess(name, {**base, **env})
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()
