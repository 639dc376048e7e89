"""Where one W3 step's time goes: ``python -m bench.trace_w3 [--url URL] [--n 400]``.

Runs the W3 program (start a one-activity orchestration, wait for it; the blocking API) and
stamps each phase on the critical path by wrapping the provider's and the runtime's methods:
the start statement, the turns, the activity, the continuation's commit, every database call.
Prints p50/p90/p99 of the iterations after the first 50 and the median time (ms after the
start call) at which each stamp happens. ``bench/PROFILE.md``'s W3 table comes from it.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import duraflow
from bench import pgstats
from duraflow import client as client_module
from duraflow.providers.postgres import batch, db, orchestrator_queue
from duraflow.runtime import activity_dispatcher, fast_path, orchestration_dispatcher

STAMPS: list[tuple[str, float]] = []
WARM_UP = 50


def _wrap(cls: type, name: str, label: str) -> None:
    original: Callable[..., Any] = getattr(cls, name)

    async def stamped(*args: Any, **kwargs: Any) -> Any:
        STAMPS.append((label + ">", time.perf_counter()))
        try:
            return await original(*args, **kwargs)
        finally:
            STAMPS.append((label + "<", time.perf_counter()))

    setattr(cls, name, stamped)


def _instrument() -> None:
    _wrap(orchestrator_queue.OrchestratorQueue, "_enqueue_and_take", "start")
    _wrap(orchestration_dispatcher.OrchestrationDispatcher, "_run_turn", "fetched-turn")
    _wrap(batch.TurnBatcher, "commit", "commit")
    _wrap(activity_dispatcher.ActivityDispatcher, "_invoke", "activity")
    _wrap(fast_path.FastPath, "_continue", "continuation")
    _wrap(client_module.AsyncClient, "get_status", "status-read")
    _wrap(client_module.AsyncClient, "_wait", "wait")
    _wrap(db.Database, "run", "db")


def noop(ctx: Any, x: Any) -> Any:
    STAMPS.append(("activity-body", time.perf_counter()))
    return x


def hello(ctx: Any, x: Any) -> Any:
    return (yield ctx.schedule_activity("Noop", x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--n", type=int, default=400)
    args = parser.parse_args()
    _instrument()
    schema = "trace_" + uuid.uuid4().hex[:8]
    provider = duraflow.PostgresProvider.connect_with_schema(args.url, schema)
    runtime = duraflow.Runtime(provider, duraflow.RuntimeOptions())
    runtime.register_activity("Noop", noop)
    runtime.register_orchestration("Hello", hello)
    runtime.start()
    client = duraflow.Client(provider)
    latencies: list[float] = []
    traces: list[list[tuple[str, float]]] = []
    try:
        for i in range(args.n):
            STAMPS.clear()
            began = time.perf_counter()
            client.start_orchestration(f"t{i}", "Hello", i)
            STAMPS.append(("start call returned", time.perf_counter()))
            client.wait_for_orchestration(f"t{i}", 10_000)
            latencies.append((time.perf_counter() - began) * 1000)
            traces.append([(name, (t - began) * 1000) for name, t in STAMPS])
    finally:
        runtime.shutdown(2_000)
        pgstats.drop_schema(args.url, schema)
    kept = sorted(latencies[WARM_UP:])
    print(f"{len(kept)} iterations after {WARM_UP}: p50 {statistics.median(kept):.2f} ms, "
          f"p90 {kept[int(0.9 * len(kept))]:.2f}, p99 {kept[int(0.99 * len(kept))]:.2f}")
    at: dict[str, list[float]] = defaultdict(list)
    for trace in traces[WARM_UP:]:
        seen: dict[str, int] = defaultdict(int)
        for name, ms in trace:
            seen[name] += 1
            at[f"{name} #{seen[name]}"].append(ms)
    print("median ms after the start call, stamp (iterations that had it):")
    for key, values in sorted(at.items(), key=lambda kv: statistics.median(kv[1])):
        print(f"{statistics.median(values):8.3f}  {key} ({len(values)})")


if __name__ == "__main__":
    main()
