"""PostgreSQL housekeeping for the benchmarks: one database per run, its transaction counter,
its size, and the server's identity.

Every run gets its own database so ``pg_stat_database.xact_commit`` counts that engine's
transactions only (the server is shared with other work). PostgreSQL flushes a backend's
counters lazily (at most once a second while busy, within 10 s when idle, always on exit), so
``wait_backends_gone`` must return before a before/after reading is trusted. All readings
connect to the ``postgres`` maintenance database, never the run's own, so reading a counter
does not change it.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def database_of(url: str) -> str:
    return urllib.parse.urlsplit(url).path.lstrip("/")


def _admin(url: str) -> str:
    return with_database(url, "postgres")


def _run(url: str, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    async def go() -> T:
        conn = await asyncpg.connect(_admin(url), timeout=10)
        try:
            return await fn(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def _check(name: str) -> str:
    if not _NAME.match(name):  # identifiers cannot be bound as parameters
        raise ValueError(f"not a safe database name: {name!r}")
    return name


def create_database(url: str, name: str) -> str:
    """Create database ``name`` (dropping a leftover of the same name); returns its URL."""
    _check(name)

    async def go(conn: asyncpg.Connection) -> None:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')

    _run(url, go)
    return with_database(url, name)


def drop_database(url: str, name: str) -> None:
    _check(name)
    _run(url, lambda c: c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def drop_schema(url: str, schema: str) -> None:
    """Drop ``schema`` (and everything in it) from the database ``url`` names."""
    _check(schema)

    async def go() -> None:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(go())


def backends(url: str, name: str) -> int:
    """How many sessions (engine, autovacuum, …) are connected to database ``name``."""
    return int(_run(url, lambda c: c.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name)))


def wait_backends_gone(url: str, name: str, timeout_s: float = 60.0) -> float:
    """Poll until no session remains on ``name`` (their counters are then flushed).

    Returns the seconds waited; raises TimeoutError if some session lingers.
    """
    began = time.monotonic()
    while backends(url, name):
        if time.monotonic() - began > timeout_s:
            raise TimeoutError(f"sessions still connected to {name} after {timeout_s:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - began


def xact_commit(url: str, name: str) -> int:
    """Committed transactions of database ``name`` so far (as flushed)."""
    value = _run(url, lambda c: c.fetchval(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", name))
    return int(value or 0)


def xact_commit_now(url: str) -> int:
    """``xact_commit`` of the database ``url`` points at."""
    return xact_commit(url, database_of(url))


def database_size(url: str) -> int:
    """Bytes on disk of the database ``url`` points at."""
    return int(_run(url, lambda c: c.fetchval("SELECT pg_database_size($1)", database_of(url))))


def server_version(url: str) -> str:
    return str(_run(url, lambda c: c.fetchval("SHOW server_version")))


def fetch(url: str, query: str, *args: Any) -> Any:
    return _run(url, lambda c: c.fetchval(query, *args))
