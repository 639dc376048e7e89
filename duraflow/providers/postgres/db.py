"""The connection pool and the one place where database calls are retried.

Every provider operation is a single statement (usually one call of a server-side function)
on a pooled connection, so an operation is one round trip and one implicit transaction.
``Database.run`` wraps that with the retry policy:

* failing to *get* a connection (database restarting, pool reconnecting) is always retried,
  since nothing was sent;
* an error PostgreSQL reports for the statement means its transaction rolled back, so a
  retryable one (serialization failure, deadlock, admin shutdown, stale cached plan) is
  retried for every operation;
* a broken connection *during* a statement is ambiguous (the commit may have happened), so
  it is retried only for idempotent operations (reads, fetches, renewals); for acks and
  enqueues the retryable ``ProviderError`` goes to the runtime, which knows what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import asyncpg

from duraflow.providers.errors import ProviderError
from duraflow.providers.postgres.errors import (
    DB_ERRORS,
    connect_error,
    connection_broken,
    map_error,
)
from duraflow.providers.postgres.sql import quote_ident

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    #: What a provider operation receives: a connection borrowed from the pool.
    Conn: TypeAlias = PoolConnectionProxy[asyncpg.Record]
else:
    Conn = Any

T = TypeVar("T")

MAX_ATTEMPTS = 3
BACKOFF_S = 0.05
DEFAULT_POOL_MAX = 10
#: A connection kept warm (see ``Database._idle``) and unused this long goes back to the pool,
#: whose own inactivity timeout then closes it: a burst does not pin backends forever.
KEEP_WARM_S = 60.0


def pool_size(value: int | None) -> int:
    """``value``, else 10; at least 1. Never the environment: the ``duraflow`` command and
    the operator pass ``DURAFLOW_PG_POOL_MAX`` in as ``pool_max``."""
    return DEFAULT_POOL_MAX if value is None else max(1, int(value))


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release hook: skip asyncpg's default reset query.

    The default runs ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` on
    every release: one more round trip and one more transaction per operation. Provider
    operations leave no session state behind (no SET, cursors or LISTEN on pooled
    connections; the migration releases its advisory lock itself), and asyncpg still rolls
    back any transaction left open, so there is nothing to reset.
    """


async def open_database(
    url: str, schema: str, *, pool_max: int | None, connect_timeout_s: float,
    init: Callable[[asyncpg.Connection], Coroutine[Any, Any, None]] | None = None,
) -> Database:
    """Create the pool (one connection up front, proving the DSN works) within the timeout.
    ``init`` runs on every new connection before its first use."""
    try:
        pool = await asyncio.wait_for(
            asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size(pool_max),
                timeout=connect_timeout_s,
                server_settings={"application_name": f"duraflow/{schema}"},
                reset=_keep_session,
                init=init,
            ),
            connect_timeout_s,
        )
    except Exception as exc:  # every failure becomes one clear sentence, no traceback
        raise connect_error(url, exc, connect_timeout_s) from None
    return Database(pool, schema, acquire_timeout_s=max(connect_timeout_s, 1.0))


def _reusable(conn: Conn) -> bool:
    """Open and outside a transaction. When the server closes a pooled connection, asyncpg
    hands it back to the pool by itself and detaches the proxy (whose every call then
    raises): such a proxy is not reusable either."""
    try:
        return not conn.is_closed() and not conn.is_in_transaction()
    except asyncpg.InterfaceError:
        return False


class Database:
    """A pool bound to one schema. ``s`` is the quoted schema for building statements."""

    def __init__(self, pool: asyncpg.Pool, schema: str, *, acquire_timeout_s: float) -> None:
        self.pool = pool
        self.schema = schema
        self.s = quote_ident(schema)
        self.acquire_timeout_s = acquire_timeout_s
        self.closed = False
        # Connections between calls, warmest last. Taking one is a list pop: the pool's
        # acquire and release cost ~0.15 ms of event-loop work per call (a timeout task, the
        # holder bookkeeping), which on a sequential step is paid once per round trip.
        # Last in, first out also keeps the busiest connections' plan caches hot.
        self._idle: list[tuple[Conn, float]] = []
        self._returning: set[asyncio.Task[None]] = set()
        # Callers waiting in the pool's acquire: a released connection must go to them, not
        # onto the warm list, or they would wait for a connection that sits unused there.
        self._waiting = 0

    async def run(
        self,
        operation: str,
        fn: Callable[[Conn], Awaitable[T]],
        *,
        idempotent: bool,
    ) -> T:
        attempt = 0
        while True:
            attempt += 1
            if self.closed:
                raise ProviderError(operation, "provider is closed", retryable=False)
            try:
                conn = self._warm() or await self._acquire()
            except DB_ERRORS as exc:
                error = map_error(operation, exc)
                if self.closed:
                    raise ProviderError(operation, "provider is closed", retryable=False) from None
                if error.retryable and attempt < MAX_ATTEMPTS:
                    await asyncio.sleep(BACKOFF_S * attempt)
                    continue
                raise error from None
            broken = False
            try:
                return await fn(conn)
            except DB_ERRORS as exc:
                error = map_error(operation, exc)
                broken = connection_broken(exc)
                # An error the server reported for the statement means its transaction
                # rolled back; a connection lost mid-statement leaves the outcome unknown.
                rolled_back = isinstance(exc, asyncpg.PostgresError) and not isinstance(
                    exc, asyncpg.PostgresConnectionError
                )
                if (
                    error.retryable
                    and (idempotent or rolled_back)
                    and attempt < MAX_ATTEMPTS
                    and not self.closed
                ):
                    await asyncio.sleep(BACKOFF_S * attempt)
                    continue
                raise error from exc
            finally:
                await self._release(conn, broken)

    async def _acquire(self) -> Conn:
        self._waiting += 1
        try:
            return await self.pool.acquire(timeout=self.acquire_timeout_s)
        finally:
            self._waiting -= 1

    def _warm(self) -> Conn | None:
        while self._idle:
            conn, _ = self._idle.pop()
            if _reusable(conn):
                return conn
            self._give_back(conn)
        return None

    def _give_back(self, conn: Conn) -> None:
        task = asyncio.get_running_loop().create_task(self._to_pool(conn))
        self._returning.add(task)
        task.add_done_callback(self._returning.discard)

    async def _release(self, conn: Conn, broken: bool) -> None:
        if not broken and not self.closed and not self._waiting and _reusable(conn):
            now = time.monotonic()
            self._idle.append((conn, now))
            if now - self._idle[0][1] > KEEP_WARM_S:  # the coldest has not been needed
                self._give_back(self._idle.pop(0)[0])
            return
        await self._to_pool(conn, broken)

    async def _to_pool(self, conn: Conn, broken: bool = False) -> None:
        if broken:  # never hand a half-dead session to the next caller: the pool reconnects
            with contextlib.suppress(*DB_ERRORS):
                conn.terminate()
        # A failing release (reset on a dead session) has already terminated the session
        # and freed its pool slot; there is nothing more to do about it.
        with contextlib.suppress(*DB_ERRORS):
            await self.pool.release(conn)

    # Conveniences for single statements ----------------------------------------------

    async def fetchrow(
        self, operation: str, sql: str, *args: Any, idempotent: bool
    ) -> asyncpg.Record | None:
        async def go(conn: Conn) -> asyncpg.Record | None:
            row: asyncpg.Record | None = await conn.fetchrow(sql, *args)
            return row

        return await self.run(operation, go, idempotent=idempotent)

    async def fetch(
        self, operation: str, sql: str, *args: Any, idempotent: bool = True
    ) -> Sequence[asyncpg.Record]:
        async def go(conn: Conn) -> Sequence[asyncpg.Record]:
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows

        return await self.run(operation, go, idempotent=idempotent)

    async def fetchval(self, operation: str, sql: str, *args: Any, idempotent: bool) -> Any:
        async def go(conn: Conn) -> Any:
            return await conn.fetchval(sql, *args)

        return await self.run(operation, go, idempotent=idempotent)

    async def close(self, timeout_s: float = 5.0) -> None:
        if self.closed:
            return
        self.closed = True
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            await self._to_pool(conn)
        if self._returning:
            await asyncio.wait(set(self._returning), timeout=timeout_s)
        try:
            await asyncio.wait_for(self.pool.close(), timeout_s)
        except (TimeoutError, asyncpg.InterfaceError, OSError):
            self.pool.terminate()
