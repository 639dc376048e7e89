"""Schemas: names are validated, each schema is its own world, migration runs exactly once."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import pytest

from duraflow.providers.postgres import InvalidSchemaError, PostgresProvider
from duraflow.providers.postgres.migrations import LATEST_VERSION, MIGRATIONS
from duraflow.providers.postgres.sql import Channels

from .helpers import admin_connection, create, raised

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize(
    "name",
    [
        "",
        "1abc",
        "a-b",
        'x"; DROP SCHEMA public CASCADE; --',
        "public; DROP TABLE x",
        "a b",
        "é",
        "a" * 64,
        "sch.ema",
    ],
)
async def test_unsafe_schema_names_are_rejected_before_connecting(name: str) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidSchemaError) as info:
        # an unreachable URL proves validation happens before any connection attempt
        await PostgresProvider.connect_async("postgresql://postgres@127.0.0.1:1/x", name)
    assert time.monotonic() - started < 1
    assert isinstance(info.value, ValueError)
    assert not info.value.retryable


async def test_longest_schema_name_works_and_gets_short_channels(postgres_url: str) -> None:
    schema = "s" + secrets.token_hex(31)  # 63 characters
    provider = await PostgresProvider.connect_async(postgres_url, schema)
    try:
        assert all(
            len(c) <= 63
            for c in (
                provider.channels.orchestrator,
                provider.channels.worker,
                provider.channels.instance,
            )
        )
        await provider.enqueue_orchestrator(raised("a"))
        assert (await provider.fetch_orchestration_item(1000)) is not None
    finally:
        await provider.drop_schema()
        await provider.close()


def test_channels_are_schema_specific() -> None:
    a, b = Channels.for_schema("alpha"), Channels.for_schema("beta")
    assert {a.orchestrator, a.worker, a.instance}.isdisjoint({b.orchestrator, b.worker, b.instance})


async def test_two_schemas_are_isolated(postgres_provider_factory: Any) -> None:
    a = await postgres_provider_factory()
    b = await postgres_provider_factory()
    try:
        await create(a, "same-id", status="Completed", output="1")
        await a.enqueue_orchestrator(raised("other"))
        assert await b.list_instances() == []
        assert await b.get_instance_status("same-id") is None
        assert await b.fetch_orchestration_item(1000) is None
        await create(b, "same-id")
        assert (await a.get_instance_status("same-id")).status == "Completed"  # type: ignore[union-attr]
        assert (await b.get_instance_status("same-id")).status == "Running"  # type: ignore[union-attr]

        # b's listener does not hear a's schema: its waiter sleeps the full timeout.
        await b.notifier.wait_orchestrator(0)
        waiter = asyncio.create_task(b.notifier.wait_orchestrator(0.5))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await a.enqueue_orchestrator(raised("x"))
        await waiter
        assert time.monotonic() - started > 0.35
    finally:
        await a.close()
        await b.close()


async def test_concurrent_startup_migrates_exactly_once(postgres_url: str) -> None:
    schema = "t_mig_" + secrets.token_hex(4)
    providers: list[PostgresProvider] = []
    try:
        results = await asyncio.gather(
            *(PostgresProvider.connect_async(postgres_url, schema, pool_max=2) for _ in range(10)),
            return_exceptions=True,
        )
        providers = [r for r in results if isinstance(r, PostgresProvider)]
        errors = [r for r in results if not isinstance(r, PostgresProvider)]
        assert errors == []
        conn = await admin_connection(postgres_url)
        try:
            rows = await conn.fetch(
                f'SELECT version, name FROM "{schema}"._duraflow_migrations ORDER BY version'
            )
        finally:
            await conn.close()
        assert [(r["version"], r["name"]) for r in rows] == [
            (m.version, m.name) for m in MIGRATIONS
        ]
        assert rows[-1]["version"] == LATEST_VERSION
        # every process can work on the result
        await providers[3].enqueue_orchestrator(raised("a"))
        assert (await providers[7].fetch_orchestration_item(1000)) is not None
    finally:
        if providers:
            await providers[0].drop_schema()
        for provider in providers:
            await provider.close()


async def test_reopening_a_migrated_schema_applies_nothing(postgres_provider_factory: Any) -> None:
    first = await postgres_provider_factory()
    try:
        await create(first, "kept")
        again = await PostgresProvider.connect_async(first._test_url, first.schema)
        try:
            assert (await again.get_instance_status("kept")) is not None
        finally:
            await again.close()
    finally:
        await first.close()


async def test_a_schema_from_a_newer_duraflow_is_refused(postgres_provider_factory: Any) -> None:
    from duraflow.providers.errors import SchemaTooNewError

    first = await postgres_provider_factory()
    try:
        await first._db.fetchval(
            "test",
            f"INSERT INTO {first._db.s}._duraflow_migrations (version, name) VALUES (999, 'x')",
            idempotent=False,
        )
        with pytest.raises(SchemaTooNewError, match="999") as info:
            await PostgresProvider.connect_async(first._test_url, first.schema)
        assert not info.value.retryable
    finally:
        await first.close()
