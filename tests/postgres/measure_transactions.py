"""Measure round trips and committed transactions per orchestration turn and per activity.

Not a test (pytest does not collect it). Run
``.venv/bin/python tests/postgres/measure_transactions.py [listen|nolisten]``.
It creates and drops a scratch database ``df_measure`` so ``pg_stat_database.xact_commit``
counts only this provider, and waits 11 s before each reading because idle PostgreSQL 15
backends flush their statistics within 10 s. Each orchestration: turn 1 schedules one
activity, the activity completes, turn 2 completes the orchestration.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import asyncpg

from duraflow.core import events as ev
from duraflow.core import workitems as wi
from duraflow.core.events import HistoryEvent
from duraflow.providers.items import OutboundMessage, TurnCommit, WorkerItem
from duraflow.providers.postgres import PostgresProvider

BASE = os.environ.get("DURAFLOW_PG_BASE", "postgresql://postgres@127.0.0.1:5432")
N = 300
TABLES = ("instances", "executions", "history", "orchestrator_queue", "worker_queue")


async def commits(stat: asyncpg.Connection) -> int:
    await asyncio.sleep(11)
    value = await stat.fetchval(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = 'df_measure'"
    )
    return int(value) - 1  # minus this reading's own transaction


async def main(listen: bool) -> None:
    admin = await asyncpg.connect(BASE + "/postgres")
    await admin.execute("DROP DATABASE IF EXISTS df_measure")
    await admin.execute("CREATE DATABASE df_measure")
    p = await PostgresProvider.connect_async(BASE + "/df_measure", "m", listen=listen)
    stat = await asyncpg.connect(BASE + "/df_measure")
    for table in TABLES:  # autovacuum's own transactions would be counted too
        await stat.execute(f"ALTER TABLE m.{table} SET (autovacuum_enabled = false)")
    calls: list[str] = []
    run = p._db.run

    async def counting(operation: str, fn: Any, **kw: Any) -> Any:
        calls.append(operation)
        return await run(operation, fn, **kw)

    p._db.run = counting  # type: ignore[method-assign]
    for n in range(N):
        await p.enqueue_orchestrator(
            OutboundMessage(f"i{n}", wi.start_orchestration(f"i{n}", "O", "null", "1"))
        )
    results: list[tuple[str, int, int, float]] = []
    start = await commits(stat)

    async def phase(name: str, body: Any) -> None:
        nonlocal start
        calls.clear()
        began = time.perf_counter()
        for _ in range(N):
            await body()
        elapsed = time.perf_counter() - began
        trips = len(calls)
        now = await commits(stat)
        results.append((name, trips, now - start, elapsed))
        start = now

    async def first_turn() -> None:
        item = await p.fetch_orchestration_item(30_000)
        assert item is not None
        act = wi.activity_execute(item.instance_id, 1, 2, "A", "null", "O", "1")
        delta = [
            HistoryEvent(1, ev.ORCHESTRATION_STARTED, {"name": "O"}),
            HistoryEvent(2, ev.ACTIVITY_SCHEDULED, {"name": "A", "input": "null"}),
        ]
        commit = TurnCommit(
            1,
            delta,
            worker_items=[WorkerItem(item.instance_id, 1, 2, act)],
            orchestration_name="O",
            orchestration_version="1",
        )
        await p.ack_orchestration_item(item.lock_token, commit)

    async def activity() -> None:
        lease = await p.fetch_work_item(30_000)
        assert lease is not None
        done = wi.activity_completed(lease.instance_id, 1, 2, '"r"')
        await p.ack_work_item(lease.lock_token, OutboundMessage(lease.instance_id, done))

    async def last_turn() -> None:
        item = await p.fetch_orchestration_item(30_000)
        assert item is not None
        delta = [
            HistoryEvent(3, ev.ACTIVITY_COMPLETED, {"result": "r"}),
            HistoryEvent(4, ev.ORCHESTRATION_COMPLETED, {"output": "r"}),
        ]
        commit = TurnCommit(1, delta, status="Completed", output='"r"')
        await p.ack_orchestration_item(item.lock_token, commit)

    await phase("turn (start, schedule activity)", first_turn)
    await phase("activity (fetch, ack)", activity)
    await phase("turn (complete)", last_turn)
    calls.clear()
    await asyncio.sleep(20)
    idle = await commits(stat) - start
    print(f"listener: {'on' if listen else 'off'}; {N} orchestrations")
    for name, trips, xacts, elapsed in results:
        print(
            f"  {name:32} {trips / N:.2f} round trips, {xacts / N:.2f} commits, "
            f"{elapsed / N * 1000:.2f} ms each"
        )
    print(f"  idle ~31 s afterwards: {len(calls)} provider calls, {idle} commits")
    await stat.close()
    await p.close()
    await admin.execute("DROP DATABASE df_measure WITH (FORCE)")
    await admin.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:2] != ["nolisten"]))
