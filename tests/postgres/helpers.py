"""Small helpers shared by the PostgreSQL-specific tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from duraflow.core import events as ev
from duraflow.core import workitems as wi
from duraflow.core.events import HistoryEvent
from duraflow.providers.items import OutboundMessage, TurnCommit, WorkerItem
from duraflow.providers.postgres import PostgresProvider


def start(instance: str) -> OutboundMessage:
    return OutboundMessage(instance, wi.start_orchestration(instance, "Orch", "null", "1.0.0"))


def raised(instance: str, visible_at_ms: int | None = None) -> OutboundMessage:
    return OutboundMessage(instance, wi.external_raised(instance, "evt", "1"), visible_at_ms)


def activity(instance: str, activity_id: int) -> WorkerItem:
    item = wi.activity_execute(instance, 1, activity_id, "Act", "null", "Orch", "1.0.0")
    return WorkerItem(instance, 1, activity_id, item)


def first_turn(**fields: object) -> TurnCommit:
    started = HistoryEvent(1, ev.ORCHESTRATION_STARTED, {"name": "Orch", "version": "1.0.0"})
    return TurnCommit(
        execution_id=1,
        history_delta=[started],
        orchestration_name="Orch",
        orchestration_version="1.0.0",
        **fields,  # type: ignore[arg-type]
    )


def count_round_trips(provider: Any) -> list[str]:
    """From now on, the operation of every ``Database.run`` of ``provider`` (one round trip
    or transaction each), in order."""
    calls: list[str] = []
    run: Callable[..., Awaitable[Any]] = provider._db.run

    async def counting(operation: str, fn: Any, **kw: Any) -> Any:
        calls.append(operation)
        return await run(operation, fn, **kw)

    provider._db.run = counting
    return calls


async def create(provider: PostgresProvider, instance: str, **fields: object) -> None:
    await provider.enqueue_orchestrator(start(instance))
    item = await provider.fetch_orchestration_item(30_000)
    assert item is not None and item.instance_id == instance
    await provider.ack_orchestration_item(item.lock_token, first_turn(**fields))


@asynccontextmanager
async def peer(provider: PostgresProvider) -> AsyncIterator[PostgresProvider]:
    """A second provider (own pool, own listener) on the same schema, like another pod.

    Closed without dropping the schema; the factory-made provider owns the schema.
    """
    other = await PostgresProvider.connect_async(_url(provider), provider.schema)
    try:
        yield other
    finally:
        await other.close()


def _url(provider: PostgresProvider) -> str:
    url = getattr(provider, "_test_url", None)
    assert isinstance(url, str), "provider was not made by postgres_provider_factory"
    return url


async def admin_connection(url: str) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(url, timeout=10)
    return conn


async def wait_until(predicate: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(0.02)
