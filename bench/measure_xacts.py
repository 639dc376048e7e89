"""PostgreSQL transactions per W1 orchestration, with 0, 1 or more worker processes.

W1 of ../shared/bench/README.md (500 orchestrations started at once, 5 sequential activities
each), run against a scratch database ``df_xacts`` so ``pg_stat_database.xact_commit`` counts
only this run: every transaction of every backend (pool connections, LISTEN connections,
client waits, autovacuum), read only after all of the run's backends have exited, because a
live PostgreSQL 15 backend may hold up to 10 s of counts it has not flushed yet.

``--workers 0`` runs the runtime inside the driver (the shape of the in-process benchmark
programs and of the README figures); ``--workers N`` starts N worker processes and the driver
is only a client.

    .venv/bin/python bench/measure_xacts.py --workers 0,1,3 [-n 500]
    .venv/bin/python bench/measure_xacts.py --workers 1 --statements   # needs pg_stat_statements

Not a test: it prints figures and writes nothing but the scratch database (dropped at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import asyncpg

from duraflow import AsyncClient, AsyncRuntime, RuntimeOptions
from duraflow.providers.postgres import PostgresProvider

BASE = os.environ.get("DURAFLOW_PG_BASE", "postgresql://postgres@127.0.0.1:5432")
DATABASE = "df_xacts"
SCHEMA = "w1"
STEPS = 5


def register(runtime: Any) -> None:
    """The W1 program (``Noop`` activity, ``W1`` orchestration of 5 sequential calls)."""
    runtime.register_activity("Noop", lambda ctx, x: x)

    def w1(ctx: Any, x: Any) -> Any:
        for _ in range(STEPS):
            x = yield ctx.schedule_activity("Noop", x)
        return x

    runtime.register_orchestration("W1", w1)


# ─── Worker process ──────────────────────────────────────────────────────────


async def serve(url: str, listen: bool) -> None:
    """Run a runtime until stdin closes (the driver's way of saying "stop")."""
    provider = await PostgresProvider.connect_async(url, SCHEMA, listen=listen)
    runtime = AsyncRuntime(provider, RuntimeOptions())
    register(runtime)
    await runtime.start()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await runtime.shutdown(5_000)
    await provider.close()


# ─── Driver ──────────────────────────────────────────────────────────────────


@dataclass
class Result:
    workers: int
    orchestrations: int
    seconds: float
    xacts: int
    statements: list[tuple[int, float, str]]

    def show(self, listen: bool) -> str:
        shape = "in-process runtime" if self.workers == 0 else f"{self.workers} worker process(es)"
        return (
            f"W1 {self.orchestrations} x {STEPS} activities, {shape}, listen={listen}: "
            f"{self.orchestrations / self.seconds:.1f} orch/s, "
            f"{self.xacts} transactions = {self.xacts / self.orchestrations:.2f} per orchestration"
        )


async def xact_commit(admin: asyncpg.Connection) -> int:
    value = await admin.fetchval(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", DATABASE
    )
    return int(value)


async def wait_no_backends(admin: asyncpg.Connection, timeout_s: float = 60.0) -> None:
    """Until no backend (client, listener, autovacuum) is connected to the scratch database."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        count = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", DATABASE
        )
        if count == 0:
            await admin.execute("SELECT pg_stat_clear_snapshot()")
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"backends still connected to {DATABASE} after {timeout_s} s")


def spawn(url: str, listen: bool) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, "--serve", url]
    if not listen:
        cmd.append("--no-listen")
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "ready" not in line:
        proc.kill()
        raise RuntimeError(f"worker did not start: {line!r}")
    return proc


async def run_w1(client: AsyncClient, n: int, tag: str) -> float:
    began = time.perf_counter()
    for i in range(n):
        await client.start_orchestration(f"{tag}-{i}", "W1", i)
    for i in range(n):
        result = await client.wait_for_orchestration(f"{tag}-{i}", 300_000)
        if result.status != "Completed":
            raise RuntimeError(f"{tag}-{i}: {result.status} {result.error}")
    return time.perf_counter() - began


async def measure(workers: int, n: int, listen: bool, statements: bool) -> Result:
    admin = await asyncpg.connect(BASE + "/postgres")
    url = f"{BASE}/{DATABASE}"
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {DATABASE}")
        setup = await PostgresProvider.connect_async(url, SCHEMA, listen=False)  # migrates
        await setup.close()
        if statements:
            conn = await asyncpg.connect(url)
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await conn.execute("SELECT pg_stat_statements_reset()")
            await conn.close()
        await wait_no_backends(admin)
        before = await xact_commit(admin)

        procs = [spawn(url, listen) for _ in range(workers)]
        provider = await PostgresProvider.connect_async(url, SCHEMA, listen=listen)
        runtime = None
        if workers == 0:
            runtime = AsyncRuntime(provider, RuntimeOptions())
            register(runtime)
            await runtime.start()
        try:
            seconds = await run_w1(AsyncClient(provider), n, f"w1-{time.time_ns():x}")
        finally:
            if runtime is not None:
                await runtime.shutdown(5_000)
            await provider.close()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.close()
            for proc in procs:
                proc.wait(30)
        await wait_no_backends(admin)
        xacts = await xact_commit(admin) - before
        top: list[tuple[int, float, str]] = []
        if statements:
            conn = await asyncpg.connect(url)
            rows = await conn.fetch(
                "SELECT calls, total_exec_time, query FROM pg_stat_statements"
                " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)"
                " ORDER BY total_exec_time DESC LIMIT 15",
                DATABASE,
            )
            top = [(int(r[0]), float(r[1]), " ".join(str(r[2]).split())[:110]) for r in rows]
            await conn.close()
        return Result(workers, n, seconds, xacts, top)
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="0,1,3",
                        help="comma-separated worker-process counts (0 = in the driver)")
    parser.add_argument("-n", type=int, default=500, help="orchestrations per run")
    parser.add_argument("--no-listen", action="store_true", help="providers without LISTEN")
    parser.add_argument("--statements", action="store_true",
                        help="print the top statements from pg_stat_statements (must be loaded)")
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    listen = not args.no_listen
    if args.serve:
        asyncio.run(serve(args.serve, listen))
        return
    for count in (int(w) for w in args.workers.split(",")):
        result = asyncio.run(measure(count, args.n, listen, args.statements))
        print(result.show(listen), flush=True)
        for calls, total_ms, query in result.statements:
            print(f"    {calls:7d} calls {total_ms:9.1f} ms  {query}")


if __name__ == "__main__":
    main()
