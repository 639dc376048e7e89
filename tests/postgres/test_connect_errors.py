"""Connecting fails fast and says where and why, without leaking secrets or tracebacks."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from duraflow.providers.errors import ProviderError
from duraflow.providers.postgres import PostgresConnectError, PostgresProvider

pytestmark = pytest.mark.postgres


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and then never says anything."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()


async def test_wrong_port_names_host_and_port_quickly() -> None:
    port = _closed_port()
    started = time.monotonic()
    with pytest.raises(PostgresConnectError) as info:
        await PostgresProvider.connect_async(f"postgresql://postgres@127.0.0.1:{port}/test")
    assert time.monotonic() - started < 12
    error = info.value
    assert str(error) == f"Failed to connect to PostgreSQL at 127.0.0.1:{port}: connection refused"
    assert isinstance(error, ProviderError) and isinstance(error, ConnectionError)
    assert error.retryable
    assert error.__cause__ is None and error.__suppress_context__


async def test_password_is_never_echoed(postgres_url: str) -> None:
    secret = "Sup3r-S3cret-pw"
    port = _closed_port()
    with pytest.raises(PostgresConnectError) as refused:
        await PostgresProvider.connect_async(f"postgresql://postgres:{secret}@127.0.0.1:{port}/x")
    assert secret not in str(refused.value) and secret not in repr(refused.value)

    # A reachable server that rejects the role: the server's reason, still no password.
    rest = postgres_url.split("://", 1)[1].split("@", 1)[-1]
    with pytest.raises(PostgresConnectError) as rejected:
        await PostgresProvider.connect_async(f"postgresql://no_such_role_x:{secret}@{rest}")
    text = str(rejected.value)
    assert secret not in text and secret not in repr(rejected.value)
    assert "Failed to connect to PostgreSQL at" in text and "no_such_role_x" in text
    assert not rejected.value.retryable


async def test_unknown_database_is_reported(postgres_url: str) -> None:
    base = postgres_url.rsplit("/", 1)[0]
    with pytest.raises(PostgresConnectError, match="no_such_db_x"):
        await PostgresProvider.connect_async(f"{base}/no_such_db_x")


async def test_unresponsive_server_times_out_within_the_configured_bound(
    silent_server: int,
) -> None:
    started = time.monotonic()
    with pytest.raises(PostgresConnectError) as info:
        await PostgresProvider.connect_async(
            f"postgresql://postgres@127.0.0.1:{silent_server}/test", connect_timeout_s=1.0
        )
    assert time.monotonic() - started < 5
    assert f"127.0.0.1:{silent_server}" in str(info.value)
    assert "timed out" in str(info.value)


async def test_malformed_url_is_a_clear_error() -> None:
    with pytest.raises(PostgresConnectError, match="Failed to connect to PostgreSQL"):
        await PostgresProvider.connect_async("mysql://root:pw@127.0.0.1:1/x")


def test_blocking_constructor_runs_on_the_shared_loop(postgres_url: str) -> None:
    from duraflow.bridge import background_loop, run_sync

    provider = PostgresProvider.connect_with_schema(postgres_url, "t_sync_ctor")
    try:
        assert provider.loop is background_loop()
        assert provider._type == "postgres" and provider.name == "postgres"
        assert run_sync(provider.list_instances()) == []
    finally:
        run_sync(provider.drop_schema())
        run_sync(provider.close())
        run_sync(provider.close())  # idempotent


async def test_close_is_idempotent_and_later_calls_fail_cleanly(
    postgres_provider_factory: Any,
) -> None:
    provider = await postgres_provider_factory()
    await provider.close()
    await provider.close()
    with pytest.raises(ProviderError, match="closed") as info:
        await provider.list_instances()
    assert not info.value.retryable
    await asyncio.sleep(0)
