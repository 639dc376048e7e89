"""One connection, one thread: how the SQLite provider talks to the database without blocking.

``sqlite3`` calls block, so they must stay off the event loop. Rather than a pool (which for
SQLite buys nothing: there is one writer at a time anyway), every provider owns a single
connection living on a single dedicated thread. Each provider operation is one plain function
run there in one hop, so a whole turn commit is one ``BEGIN IMMEDIATE`` … ``COMMIT`` with no
awaits inside it, and operations of one provider are naturally serialised. Several processes
can still share a file: ``BEGIN IMMEDIATE`` takes SQLite's write lock up front (waiting up to
``busy_timeout``), so a read-then-write sequence can never be interleaved with another
writer's.

The same single-thread ownership is what makes ``:memory:`` work: a private in-memory
database lives exactly as long as its one connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from duraflow.providers.clock import now_ms
from duraflow.providers.errors import ProviderError, SchemaTooNewError
from duraflow.providers.sqlite.migrations import migrate

T = TypeVar("T")
P = ParamSpec("P")

MEMORY = ":memory:"
BUSY_TIMEOUT_MS = 60_000


class SqliteOpenError(ProviderError, RuntimeError):
    """The database could not be opened or migrated.

    It is a ``RuntimeError`` (what duroxide-python raises, ``"Failed to open SQLite: ..."``)
    and a non-retryable ``ProviderError`` so both kinds of caller can catch it.
    """

    def __init__(self, message: str) -> None:
        super().__init__("Failed to open SQLite", message, retryable=False)


def parse_location(url: str) -> str:
    """``sqlite:path``, ``sqlite://path``, ``sqlite:///abs/path`` or a bare path → a path.

    A ``?query`` suffix (duroxide URLs carry ``?mode=rwc``) is ignored; ``:memory:`` and
    ``sqlite::memory:`` name a private in-memory database.
    """
    text = url.strip()
    if text.startswith("sqlite://"):
        text = text[len("sqlite://") :]
    elif text.startswith("sqlite:"):
        text = text[len("sqlite:") :]
    if "?" in text:
        text = text.split("?", 1)[0]
    if not text:
        raise SqliteOpenError(f"no database path in {url!r}")
    return text


def map_error(operation: str, exc: sqlite3.Error) -> ProviderError:
    """Lock contention and I/O trouble are worth retrying; broken constraints are not."""
    if isinstance(exc, sqlite3.IntegrityError):
        return ProviderError(operation, f"constraint violated: {exc}", retryable=False)
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        transient = "locked" in text or "busy" in text or "i/o" in text or "full" in text
        return ProviderError(operation, f"database error: {exc}", retryable=transient)
    return ProviderError(operation, f"database error: {exc}", retryable=False)


@contextmanager
def transaction(conn: sqlite3.Connection, *, write: bool) -> Iterator[int]:
    """A transaction yielding the clock read *after* the lock was taken.

    Reading the clock only once the write lock is held matters: a process that waited for
    the lock must not compute lock expiries from the moment it started waiting.
    """
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield now_ms()
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class Database:
    """The connection and its thread. Built with ``await Database.open(path)``."""

    def __init__(self, executor: ThreadPoolExecutor, conn: sqlite3.Connection, path: str) -> None:
        self._executor = executor
        self._conn = conn
        self.path = path
        self._closed = False

    @staticmethod
    async def open(location: str) -> Database:
        path = parse_location(location)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duraflow-sqlite")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(executor, _connect, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return Database(executor, conn, path)

    @property
    def is_memory(self) -> bool:
        return self.path == MEMORY

    async def run(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on the database thread; sqlite errors become ProviderError."""
        if self._closed:
            raise ProviderError(operation, "provider is closed", retryable=False)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._call, operation, fn, args)
        except RuntimeError as exc:
            if self._closed or "shutdown" in str(exc):
                raise ProviderError(operation, "provider is closed", retryable=False) from exc
            raise

    def _call(self, operation: str, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            return fn(self._conn, *args)
        except sqlite3.Error as exc:
            raise map_error(operation, exc) from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._conn.close)
        finally:
            self._executor.shutdown(wait=True)


def _connect(path: str) -> sqlite3.Connection:
    try:
        if path != MEMORY:
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, nothing implicit.
        conn = sqlite3.connect(
            path if path == MEMORY else str(Path(path).expanduser()),
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
        )
    except (OSError, sqlite3.Error) as exc:
        raise SqliteOpenError(f"{path}: {exc}") from exc
    try:
        conn.execute("PRAGMA busy_timeout = 60000")  # = BUSY_TIMEOUT_MS
        conn.execute("PRAGMA foreign_keys = ON")
        if path != MEMORY:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise SqliteOpenError(f"{path}: could not enable WAL journal mode")
            conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn)
    except SqliteOpenError:
        conn.close()
        raise
    except SchemaTooNewError as exc:
        conn.close()
        raise SqliteOpenError(f"{path}: {exc.message}") from exc
    except sqlite3.Error as exc:
        conn.close()
        raise SqliteOpenError(f"{path}: {exc}") from exc
    return conn
