"""The provider keeps its warmest connections between calls (``db.py``) and primes every new
connection's hot plans in a transaction that is rolled back (``prime.py``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from duraflow.providers.postgres import db as dbmod
from duraflow.providers.postgres import provider as provider_module

from .helpers import admin_connection, wait_until

pytestmark = pytest.mark.postgres

_TABLES = ("instances", "executions", "history", "orchestrator_queue", "worker_queue",
           "instance_locks")


async def _pid(p: Any) -> int:
    return int(await p._db.fetchval("pid", "SELECT pg_backend_pid()", idempotent=True))


async def test_sequential_calls_reuse_the_warmest_connection(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        pids = {await _pid(p) for _ in range(5)}
        assert len(pids) == 1
        # Two at once need two connections; afterwards the one released last is reused.
        await asyncio.gather(_pid(p), _pid(p))
        top = p._db._idle[-1][0]
        pid = int(await top.fetchval("SELECT pg_backend_pid()"))
        assert await _pid(p) == pid
    finally:
        await p.close()


async def test_a_caller_waiting_for_the_pool_gets_the_next_released_connection(
    postgres_provider_factory: Any,
) -> None:
    """With every connection busy a caller waits in the pool; the next connection released
    must go to it, not onto the warm list (where it waited out the acquire timeout: W1
    stalled for seconds at a time before this was fixed)."""
    p = await postgres_provider_factory(pool_max=1)
    p._db.acquire_timeout_s = 120.0  # a stall would show as the deadline below, not a retry
    try:
        busy = asyncio.create_task(p._db.fetchval(
            "sleep", "SELECT pg_sleep(0.2)", idempotent=True))
        await wait_until(lambda: not p._db._idle and p._db.pool.get_idle_size() == 0)
        waiting = asyncio.create_task(_pid(p))
        await wait_until(lambda: p._db._waiting == 1)
        await busy
        await asyncio.wait_for(waiting, 20)
    finally:
        await p.close()


async def test_unused_connection_goes_back_to_the_pool(
    postgres_provider_factory: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = await postgres_provider_factory()
    try:
        # Three at once (each sleeps long enough for the others to get a connection):
        # released with nobody waiting, all three stay warm.
        await asyncio.gather(*(p._db.fetchval("sleep", "SELECT pg_sleep(0.3)",
                                              idempotent=True) for _ in range(3)))
        assert len(p._db._idle) == 3
        monkeypatch.setattr(dbmod, "KEEP_WARM_S", 0.0)
        for _ in range(len(p._db._idle)):
            await _pid(p)  # each release hands the coldest one back
        await wait_until(lambda: len(p._db._idle) == 1 and not p._db._returning)
    finally:
        await p.close()


async def test_a_connection_the_server_closed_is_not_handed_out(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        old = await _pid(p)
        conn = p._db._idle[-1][0]
        admin = await admin_connection(p._test_url)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", old)
        finally:
            await admin.close()
        await wait_until(lambda: not dbmod._reusable(conn))  # asyncpg noticed
        assert len(p._db._idle) == 1 and p._db._warm() is None  # skipped, not handed out
        assert await _pid(p) != old
    finally:
        await p.close()


async def test_close_returns_warm_connections_and_closes_the_pool(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    await asyncio.gather(_pid(p), _pid(p))
    assert p._db._idle
    await p.close()
    assert p._db._idle == [] and p._db.pool._closed


async def test_new_connections_are_primed_and_priming_leaves_nothing(
    postgres_provider_factory: Any, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    primed: list[int] = []
    real = provider_module.prime

    async def counting(conn: Any, *sql: str) -> None:
        await real(conn, *sql)
        primed.append(int(await conn.fetchval("SELECT pg_backend_pid()")))

    monkeypatch.setattr(provider_module, "prime", counting)
    caplog.set_level(logging.DEBUG, "duraflow.provider")
    p = await postgres_provider_factory()
    try:
        assert len(primed) == 1  # the first connection, once the schema exists
        pids = set(await asyncio.gather(*(_pid(p) for _ in range(3))))
        assert pids <= set(primed) and len(primed) == p._db.pool.get_size()
        assert "could not prime" not in caplog.text
        for table in _TABLES:
            rows = await p._db.fetchval("count", f"SELECT count(*) FROM {p._s}.{table}",
                                        idempotent=True)
            assert rows == 0, table
    finally:
        await p.close()
