"""S1: many durable schedules on one worker: how late their ticks start, and what a tick costs.

Duraflow only (schedules are not in the duroxide-python API). ``--setup`` creates the store
and ``--n`` schedules ``@every 10s`` (all on the same tick: the worst case, no jitter) and
exits, so the harness reads the database's transaction counter after the creations
(``bench/runner.py``). The workload process then runs one runtime with default options for
``--rounds`` ticks of every schedule and reports:

* lateness: when each tick's run was started (the fire's commit) minus its scheduled time,
  p50 / p99 / max, over the ticks that fell while the runtime ran (ticks that fell between
  setup and start are caught up on start and counted apart, ``caught_up``);
* ``ticks``: runs started; the harness divides the transactions it counted (everything the
  runtime did: fires, each run's turn, idle reads) by it (``units``).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import time
from typing import Any

import duraflow
from bench.api_program import options_of
from bench.stats import pct, peak_rss_mib

SCHEMA = "bench"
EVERY_S = 10


def tick(ctx: Any, n: Any) -> Any:
    return n
    yield  # a generator: one turn, no activity


def open_provider(args: argparse.Namespace) -> Any:
    from duraflow import PostgresProvider, SqliteProvider

    if args.backend == "sqlite":
        return SqliteProvider.open(args.sqlite_path)
    return PostgresProvider.connect_with_schema(args.url, SCHEMA)


def setup(args: argparse.Namespace) -> None:
    from duraflow import Client
    from duraflow.bridge import run_sync

    provider = open_provider(args)
    client = Client(provider)
    for i in range(args.n):
        client.create_schedule(f"s1-{i}", "Tick", i, cron=f"@every {EVERY_S}s")
    run_sync(provider.close())


def run(args: argparse.Namespace) -> dict[str, float]:
    from duraflow import Client, Runtime, RuntimeOptions
    from duraflow.bridge import run_sync

    provider = open_provider(args)
    runtime = Runtime(provider, RuntimeOptions())
    runtime.register_orchestration("Tick", tick)
    began_ms = int(time.time() * 1000)
    runtime.start()
    first = began_ms - began_ms % (EVERY_S * 1000) + EVERY_S * 1000
    end = first + (args.rounds - 1) * EVERY_S * 1000
    client = Client(provider)
    try:
        deadline = time.monotonic() + args.timeout_s
        while True:  # until every schedule's last measured tick has started
            time.sleep(max(0.0, (end - time.time() * 1000) / 1000) + 0.5)
            infos = client.list_schedules()
            runs = [r for info in infos for r in info.last_runs if r.started_at_ms >= began_ms]
            if sum(1 for r in runs if r.scheduled_at_ms == end) >= args.n:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"S1: {sum(1 for r in runs if r.scheduled_at_ms == end)} of "
                                   f"{args.n} schedules started their tick at {end}")
    finally:
        runtime.shutdown(5_000)
        run_sync(provider.close())
    steady = [r.started_at_ms - r.scheduled_at_ms for r in runs
              if first <= r.scheduled_at_ms <= end]
    caught_up = [r for r in runs if r.scheduled_at_ms < first]
    return {"lateness_p50_ms": pct(steady, 50), "lateness_p99_ms": pct(steady, 99),
            "lateness_max_ms": float(max(steady)), "ticks": float(len(runs)),
            "units": float(len(runs)), "caught_up": float(len(caught_up)),
            "schedules": float(args.n), "rounds": float(args.rounds)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="S1: durable schedules on one worker")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--url", help="PostgreSQL URL of this run's own database")
    parser.add_argument("--sqlite-path", help="SQLite file of this run")
    parser.add_argument("--workload", choices=["S1"], default="S1")
    parser.add_argument("--n", type=int, default=1_000, help="schedules")
    parser.add_argument("--rounds", type=int, default=3, help="ticks of each schedule measured")
    parser.add_argument("--timeout-s", type=float, default=300.0)
    parser.add_argument("--out")
    parser.add_argument("--setup", action="store_true")
    args, _ = parser.parse_known_args(argv)  # the harness's W7 options are not ours
    if args.setup:
        setup(args)
        return
    cpu0 = time.process_time()
    figures = run(args)
    report = {
        "figures": figures, "cpu_s": time.process_time() - cpu0,
        "peak_rss_mib": peak_rss_mib(), "engine_version": importlib.metadata.version("duraflow"),
        "options": options_of(duraflow),  # the runtime's, as every workload records them
        "pid": os.getpid(),
    }
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(report, handle)


if __name__ == "__main__":
    main()
