"""Building blocks of the build tests: instances pinned to a build, raw SQL on either store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from duraflow.core import workitems as wi
from duraflow.providers.items import OrchestrationItem, OutboundMessage, TurnCommit, WorkerItem
from duraflow.providers.protocol import Provider
from duraflow.providers.sqlite import SqliteProvider

from .support import LONG_LOCK_MS, ORCH, VERSION, event, start_msg, started


async def fetch(provider: Provider, build: str | None) -> OrchestrationItem | None:
    return await provider.fetch_orchestration_item(LONG_LOCK_MS, None, None, build)


async def fetched(provider: Provider, build: str | None) -> list[str]:
    """Instances a fetcher of ``build`` locks, until it finds nothing."""
    taken = []
    while (item := await fetch(provider, build)) is not None:
        taken.append(item.instance_id)
    return taken


async def start_on(provider: Provider, instance: str, build: str | None,
                   worker_items: Sequence[WorkerItem] = (), status: str | None = None,
                   name: str = ORCH) -> None:
    """Start ``instance`` and run its first turn on a runtime of ``build``."""
    await provider.enqueue_orchestrator(start_msg(instance, name))
    item = await fetch(provider, build)
    assert item is not None and item.instance_id == instance, item
    await provider.ack_orchestration_item(item.lock_token, TurnCommit(
        execution_id=1, history_delta=[started(name), event(2)], orchestration_name=name,
        orchestration_version=VERSION, worker_items=list(worker_items), status=status,
        build_id=build))


async def raise_on(provider: Provider, instance: str) -> None:
    await provider.enqueue_orchestrator(
        OutboundMessage(instance, wi.external_raised(instance, "evt", "1")))


async def raw(provider: Provider, sql: str, *args: Any) -> Any:
    """One statement on the provider's own store (``?`` placeholders become ``$n`` on
    PostgreSQL, tables are in its schema); returns the first column of the first row."""
    if isinstance(provider, SqliteProvider):
        def run(conn: Any) -> Any:
            row = conn.execute(sql.replace("{s}.", ""), args).fetchone()
            return None if row is None else row[0]

        return await provider._db.run("test", run)
    db = provider._db  # type: ignore[attr-defined]
    for n in range(1, len(args) + 1):
        sql = sql.replace("?", f"${n}", 1)
    return await db.fetchval("test", sql.replace("{s}.", f"{db.s}."), *args, idempotent=True)
