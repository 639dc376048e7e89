"""Quick benchmarks: workloads W1–W5 of ../shared/bench/README.md on Duraflow alone.

Runs each workload once per provider (SQLite file; PostgreSQL when reachable), prints a table
and writes ``bench/results/quick-<timestamp>.json``. It is the measuring stick for the engine
issues; the full side-by-side suite against duroxide (min/median of 3, CPU, RSS, charts) comes
with the benchmark issue. Bounded: every wait has a timeout, every schema is dropped.

    python bench/quick.py [--providers sqlite,postgres] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from duraflow import AsyncClient, AsyncRuntime, RuntimeOptions, SqliteProvider
from duraflow.providers.base import Provider
from duraflow.providers.postgres import PostgresProvider

RESULTS = pathlib.Path(__file__).parent / "results"
DEFAULT_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
Workload = Callable[[AsyncClient, str], Awaitable[dict[str, float]]]


def register(rt: AsyncRuntime) -> None:
    rt.register_activity("Noop", lambda ctx, x: x)

    def w1(ctx: Any, x: Any) -> Any:
        for _ in range(5):
            x = yield ctx.schedule_activity("Noop", x)
        return x

    def fan(ctx: Any, n: int) -> Any:
        return len((yield ctx.all([ctx.schedule_activity("Noop", i) for i in range(n)])))

    def hello(ctx: Any, x: Any) -> Any:
        return (yield ctx.schedule_activity("Noop", x))

    def sequence(ctx: Any, n: int) -> Any:
        for i in range(n):
            yield ctx.schedule_activity("Noop", i)
        return n

    def timer(ctx: Any, ms: int) -> Any:
        yield ctx.schedule_timer(ms)
        return (yield ctx.utc_now())

    for name, fn in [("W1", w1), ("Fan", fan), ("Hello", hello), ("Seq", sequence),
                     ("Timer", timer)]:
        rt.register_orchestration(name, fn)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def w1(client: AsyncClient, run: str) -> dict[str, float]:
    began = time.perf_counter()
    for i in range(500):
        await client.start_orchestration(f"{run}-w1-{i}", "W1", i)
    for i in range(500):
        await client.wait_for_orchestration(f"{run}-w1-{i}", 120_000)
    wall = time.perf_counter() - began
    return {"orch_per_s": 500 / wall, "act_per_s": 2500 / wall}


async def w2(client: AsyncClient, run: str) -> dict[str, float]:
    began = time.perf_counter()
    await client.start_orchestration(f"{run}-w2", "Fan", 500)
    await client.wait_for_orchestration(f"{run}-w2", 120_000)
    return {"act_per_s": 500 / (time.perf_counter() - began)}


async def w3(client: AsyncClient, run: str) -> dict[str, float]:
    latencies = []
    for i in range(200):
        began = time.perf_counter()
        await client.start_orchestration(f"{run}-w3-{i}", "Hello", i)
        await client.wait_for_orchestration(f"{run}-w3-{i}", 60_000)
        latencies.append((time.perf_counter() - began) * 1000)
    return {"p50_ms": pct(latencies, 50), "p95_ms": pct(latencies, 95),
            "p99_ms": pct(latencies, 99)}


async def w4(client: AsyncClient, run: str) -> dict[str, float]:
    began = time.perf_counter()
    await client.start_orchestration(f"{run}-w4", "Seq", 300)
    await client.wait_for_orchestration(f"{run}-w4", 300_000)
    wall = time.perf_counter() - began
    return {"total_s": wall, "ms_per_activity": wall / 300 * 1000}


async def w5(client: AsyncClient, run: str) -> dict[str, float]:
    began = time.perf_counter()
    started = {}
    for i in range(200):
        started[i] = time.time() * 1000
        await client.start_orchestration(f"{run}-w5-{i}", "Timer", 1000)
    overshoot = []
    for i in range(200):
        result = await client.wait_for_orchestration(f"{run}-w5-{i}", 60_000)
        overshoot.append(result.output - started[i] - 1000)
    return {"all_done_s": time.perf_counter() - began, "overshoot_p50_ms": pct(overshoot, 50),
            "overshoot_p95_ms": pct(overshoot, 95), "overshoot_max_ms": max(overshoot)}


WORKLOADS: list[tuple[str, Workload]] = [("W1", w1), ("W2", w2), ("W3", w3), ("W4", w4),
                                         ("W5", w5)]


async def open_provider(kind: str, url: str, tmp: str) -> Provider:
    if kind == "sqlite":
        return await SqliteProvider.open_async(f"{tmp}/bench.db")
    return await PostgresProvider.connect_async(url, f"bench_{os.getpid()}")


async def bench(kind: str, url: str) -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        provider = await open_provider(kind, url, tmp)
        runtime = AsyncRuntime(provider, RuntimeOptions())
        register(runtime)
        await runtime.start()
        results: dict[str, dict[str, float]] = {}
        try:
            client = AsyncClient(provider)
            run = f"{time.time_ns():x}"
            for name, workload in WORKLOADS:
                print(f"  {kind:<8} {name} ...", end="", flush=True)
                cpu = time.process_time()
                results[name] = await workload(client, run)
                results[name]["cpu_s"] = time.process_time() - cpu
                shown = ", ".join(f"{k} {v:.1f}" for k, v in results[name].items())
                print(f" {shown}", flush=True)
        finally:
            await runtime.shutdown(2_000)
            if isinstance(provider, PostgresProvider):
                await provider.drop_schema()
            await provider.close()
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", default="sqlite,postgres")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args()
    report: dict[str, Any] = {"options": repr(RuntimeOptions()), "results": {}}
    for kind in args.providers.split(","):
        try:
            report["results"][kind] = asyncio.run(bench(kind, args.database_url))
        except OSError as exc:  # includes connection failures
            print(f"  {kind}: skipped ({exc})")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"quick-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
