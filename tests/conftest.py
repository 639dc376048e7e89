"""Shared test harness: a PostgreSQL server for every test that needs one.

``postgres_url`` finds a server, in order: ``DATABASE_URL``; the local default
``postgresql://postgres@127.0.0.1:5432/test``; a throwaway server started from Debian's
PostgreSQL binaries in a temporary directory on a free port (run as the ``postgres`` user
when the tests run as root) and stopped at the end of the session. With none available the
PostgreSQL tests skip, except under ``CI=true``, where they fail: CI must never pass by
silently testing nothing.

``postgres_provider_factory`` hands out fresh providers, each on its own random schema,
built in the calling test's event loop. Closing a provider drops its schema; any schema a
test forgot to close is dropped at the end of the session.
"""

from __future__ import annotations

import asyncio
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


# pytest-xdist's workers inherit COLUMNS=80 and LINES=24 from execnet, not from a terminal:
# the CLI's tables would then be shrunk to 80 columns as in a narrow terminal. The tests run the
# CLI as a pipe does, so the workers lose what no user's pipe carries.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


def _run_in_thread(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine to completion on a private loop in a private thread."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro_fn())  # type: ignore[arg-type]
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(60)
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _reachable(url: str, timeout_s: float = 3.0) -> str | None:
    """None when ``url`` accepts a connection, else the reason it does not."""
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=timeout_s)
        await conn.close()

    try:
        _run_in_thread(probe)
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Throwaway:
    """A private PostgreSQL cluster in a temp dir (initdb + pg_ctl)."""

    def __init__(self) -> None:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
        if not candidates:
            raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
        self.bindir = os.path.dirname(candidates[0])
        self.root = tempfile.mkdtemp(prefix="duraflow-pg-")
        self.datadir = os.path.join(self.root, "data")
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")

    def _cmd(self, *args: str) -> list[str]:
        return (["runuser", "-u", "postgres", "--"] if self.as_root else []) + list(args)

    def start(self) -> str:
        subprocess.run(
            self._cmd(
                f"{self.bindir}/initdb",
                "-D",
                self.datadir,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            self._cmd(
                f"{self.bindir}/pg_ctl",
                "-D",
                self.datadir,
                "-o",
                options,
                "-l",
                os.path.join(self.root, "log"),
                "-w",
                "-t",
                "60",
                "start",
            ),
            check=True,
            capture_output=True,
            timeout=90,
        )
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run(
            self._cmd(f"{self.bindir}/pg_ctl", "-D", self.datadir, "-m", "immediate", "stop"),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required under CI=true but unavailable: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    explicit = os.environ.get("DATABASE_URL")
    if explicit:
        problem = _reachable(explicit)
        if problem is not None:
            _unavailable(f"DATABASE_URL is set but not reachable ({problem})")
        yield explicit
        return
    if _reachable(DEFAULT_URL) is None:
        yield DEFAULT_URL
        return
    try:
        server = _Throwaway()
    except (RuntimeError, OSError, LookupError) as exc:
        _unavailable(f"no server at {DEFAULT_URL} and cannot start one ({exc})")
        return
    try:
        url = server.start()
    except (subprocess.SubprocessError, OSError) as exc:
        server.stop()
        _unavailable(f"no server at {DEFAULT_URL}; starting a throwaway one failed ({exc})")
        return
    try:
        yield url
    finally:
        server.stop()


class PostgresProviderFactory:
    """``await factory()`` → a fresh ``PostgresProvider`` on a new schema ``t_<hex>``.

    Closing the provider drops its schema. ``corrupt_history`` is the conformance suite's
    hook for damaging stored history.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.schemas: set[str] = set()

    async def __call__(self, **options: Any) -> Any:
        from duraflow.providers.postgres import PostgresProvider

        schema = "t_" + secrets.token_hex(6)
        self.schemas.add(schema)
        provider = await PostgresProvider.connect_async(self.url, schema, **options)
        provider._test_url = self.url  # lets tests open peers on the same schema
        close = provider.close

        async def close_and_drop() -> None:
            if not provider._closed:
                try:
                    await provider.drop_schema()
                    self.schemas.discard(schema)
                except Exception:
                    pass
            await close()

        provider.close = close_and_drop  # type: ignore[method-assign]
        return provider

    async def corrupt_history(self, provider: Any, instance_id: str, execution_id: int) -> None:
        await provider._db.fetchval(
            "corrupt_history",
            f"UPDATE {provider._db.s}.history SET event_data = $3"
            " WHERE instance_id = $1 AND execution_id = $2 AND event_id = 1",
            instance_id,
            execution_id,
            '{"event_id":1,"kind":"KindFromTheFuture","data":{}}',
            idempotent=True,
        )

    def drop_leftovers(self) -> None:
        if not self.schemas:
            return
        import asyncpg

        async def drop() -> None:
            conn = await asyncpg.connect(self.url, timeout=10)
            try:
                for schema in sorted(self.schemas):
                    await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()

        _run_in_thread(drop)
        self.schemas.clear()


@pytest.fixture(scope="session")
def postgres_provider_factory(postgres_url: str) -> Iterator[PostgresProviderFactory]:
    factory = PostgresProviderFactory(postgres_url)
    yield factory
    factory.drop_leftovers()
