"""Does waiting for each W5 instance in turn delay the timers? ``python -m bench.w5_waits
--mode wait|sleep [--url URL] [--n 200]``.

Runs W5's program (start ``n`` orchestrations that each wait a 1 s durable timer, the blocking
API) and then either waits for each instance in turn as W5 does (``wait``: while the timers
fire) or sleeps 2 s first and only then collects the results (``sleep``: the timers fire with
the runtime alone). Prints the timer overshoot (p50/p95/max), overall and by index, how many
status reads the waits cost, how late each timer's fetch was sent after its due time, and how
many items the dispatcher's fetches carried. ``bench/PROFILE.md``'s W5 section comes from it.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Generator
from typing import Any

import duraflow
from bench import pgstats
from bench.stats import pct
from duraflow.providers.postgres import provider as postgres_provider

READS = [0]
FETCHES: list[int] = []  # items per orchestration fetch
FETCH_LAG: list[float] = []  # ms from a timer's due time to the fetch that took it


def timer(ctx: Any, ms: int) -> Generator[Any, Any, Any]:
    yield ctx.schedule_timer(ms)
    return (yield ctx.utc_now())


def _count_reads() -> None:
    original = postgres_provider.PostgresProvider.get_instance_status

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        READS[0] += 1
        return await original(self, *args, **kwargs)

    postgres_provider.PostgresProvider.get_instance_status = counted  # type: ignore[method-assign]
    fetch = postgres_provider.PostgresProvider.fetch_orchestration_items

    async def stamped(self: Any, *args: Any, **kwargs: Any) -> Any:
        sent = time.time() * 1000
        items = await fetch(self, *args, **kwargs)
        FETCHES.append(len(items))
        FETCH_LAG.extend(sent - float(m["fire_at_ms"]) for item in items
                         for m in item.messages if m.get("type") == "TimerFired")
        return items

    postgres_provider.PostgresProvider.fetch_orchestration_items = stamped  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--mode", choices=["wait", "sleep"], required=True)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    _count_reads()
    schema = "w5w_" + uuid.uuid4().hex[:8]
    provider = duraflow.PostgresProvider.connect_with_schema(args.url, schema)
    runtime = duraflow.Runtime(provider, duraflow.RuntimeOptions())
    runtime.register_orchestration("Timer", timer)
    runtime.start()
    client = duraflow.Client(provider)
    try:
        started: list[float] = []
        began = time.perf_counter()
        for i in range(args.n):
            started.append(time.time() * 1000)
            client.start_orchestration(f"w5-{i}", "Timer", 1000)
        start_calls_s = time.perf_counter() - began
        if args.mode == "sleep":
            time.sleep(2.0)  # the point of this mode: let every timer fire before any wait
        overshoot = [float(client.wait_for_orchestration(f"w5-{i}", 30_000).output)
                     - started[i] - 1000 for i in range(args.n)]
    finally:
        runtime.shutdown(2_000)
        pgstats.drop_schema(args.url, schema)
    print(f"{args.mode}: start calls {start_calls_s:.2f} s, overshoot p50 "
          f"{pct(overshoot, 50):.1f} ms, p95 {pct(overshoot, 95):.1f}, max {max(overshoot):.1f}; "
          f"{READS[0]} status reads")
    if FETCH_LAG:
        print(f"fetch sent after the due time: p50 {pct(FETCH_LAG, 50):.1f} ms, p95 "
              f"{pct(FETCH_LAG, 95):.1f}; items per fetch (of {len(FETCHES)}): "
              + ", ".join(f"{k}: {FETCHES.count(k)}" for k in sorted(set(FETCHES))))
    step = max(args.n // 20, 1)
    print("overshoot by start order (ms):", [round(x) for x in overshoot[::step]])


if __name__ == "__main__":
    main()
