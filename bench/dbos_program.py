"""The benchmark workloads written in DBOS Transact's own API (PyPI ``dbos``).

DBOS has no duroxide-compatible API, so these are the same workloads expressed the way the
DBOS documentation writes them: an orchestration is a ``@DBOS.workflow``, an activity a
``@DBOS.step``, a fan-out enqueues the steps on a ``Queue`` and waits for their handles, a
durable timer is ``DBOS.sleep``, and an external event is ``DBOS.send``/``recv`` (W7, written
with DBOS's async API so 10,000 waiting workflows do not each hold a thread). DBOS runs on
PostgreSQL only here, in the run's own database, with its default options.

Same contract as ``api_program``: one workload per process, figures as JSON in ``--out``;
``--setup`` launches once (creating DBOS's system tables) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import resource
import threading
import time
from typing import Any

from dbos import DBOS, DBOSConfig

from bench.stats import ms_steps, pct, peak_rss_mib

STEP_TIMES: dict[int, float] = {}
W7_READY = [0]
_LOCK = threading.Lock()


@DBOS.step()
def noop(x: Any) -> Any:
    return x


@DBOS.step()
def stamp(i: int) -> int:
    STEP_TIMES[i] = time.perf_counter()
    return i


@DBOS.step()
def now_ms() -> float:
    return time.time() * 1000


@DBOS.step()
async def counted(i: int) -> int:
    with _LOCK:
        W7_READY[0] += 1
    return i


@DBOS.workflow()
def chain(x: Any) -> Any:
    for _ in range(5):
        x = noop(x)
    return x


@DBOS.workflow()
def fan(n: int) -> int:
    queue = DBOS.retrieve_queue("fan")
    assert queue is not None, "the fan queue is registered at launch"
    handles = [queue.enqueue(noop, i) for i in range(n)]
    return len([h.get_result() for h in handles])


@DBOS.workflow()
def hello(x: Any) -> Any:
    return noop(x)


@DBOS.workflow()
def sequence(n: int) -> int:
    for i in range(n):
        stamp(i)
    return n


@DBOS.workflow()
def timer(seconds: float) -> float:
    DBOS.sleep(seconds)
    return now_ms()


@DBOS.workflow()
async def waiter(i: int) -> Any:
    await counted(i)
    return await DBOS.recv_async("go", timeout_seconds=3600)


def config(args: argparse.Namespace) -> DBOSConfig:
    return {"name": "bench", "system_database_url": args.url, "log_level": "WARNING",
            "use_listen_notify": args.listen}


def run_w1(n: int, timeout_s: float) -> dict[str, float]:
    began = time.perf_counter()
    handles = [DBOS.start_workflow(chain, i) for i in range(n)]
    for h in handles:
        h.get_result()
    wall = time.perf_counter() - began
    return {"wall_s": wall, "orch_per_s": n / wall, "act_per_s": 5 * n / wall}


def run_w2(n: int, timeout_s: float) -> dict[str, float]:
    began = time.perf_counter()
    count = DBOS.start_workflow(fan, n).get_result()
    wall = time.perf_counter() - began
    if count != n:
        raise RuntimeError(f"W2 returned {count!r}, expected {n}")
    return {"wall_s": wall, "act_per_s": n / wall}


def run_w3(n: int, timeout_s: float) -> dict[str, float]:
    latencies = []
    for i in range(n):
        began = time.perf_counter()
        DBOS.start_workflow(hello, i).get_result()
        latencies.append((time.perf_counter() - began) * 1000)
    return {"p50_ms": pct(latencies, 50), "p95_ms": pct(latencies, 95),
            "p99_ms": pct(latencies, 99), "mean_ms": sum(latencies) / n}


def run_w4(n: int, timeout_s: float) -> dict[str, float]:
    began = time.perf_counter()
    DBOS.start_workflow(sequence, n).get_result()
    wall = time.perf_counter() - began
    steps = ms_steps([STEP_TIMES[i] for i in sorted(STEP_TIMES)])
    window = max(1, min(50, len(steps) // 2))
    first, last = steps[:window], steps[-window:]
    return {"total_s": wall, "ms_per_activity": wall / n * 1000,
            "growth": (sum(last) / len(last)) / (sum(first) / len(first))}


def run_w5(n: int, timeout_s: float) -> dict[str, float]:
    began = time.perf_counter()
    started, handles = [], []
    for _ in range(n):
        started.append(time.time() * 1000)
        handles.append(DBOS.start_workflow(timer, 1.0))
    start_phase = time.perf_counter() - began
    overshoot = [h.get_result() - s - 1000 for h, s in zip(handles, started, strict=True)]
    return {"all_done_s": time.perf_counter() - began, "start_calls_s": start_phase,
            "overshoot_p50_ms": pct(overshoot, 50), "overshoot_p95_ms": pct(overshoot, 95),
            "overshoot_max_ms": max(overshoot)}


async def run_w7(n: int, timeout_s: float, args: argparse.Namespace) -> dict[str, float]:
    from bench.pgstats import database_size, xact_commit_now

    size0 = await asyncio.to_thread(database_size, args.url)
    began = time.perf_counter()
    handles = [await DBOS.start_workflow_async(waiter, i) for i in range(n)]
    deadline = began + timeout_s
    while W7_READY[0] < n:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"W7: only {W7_READY[0]} of {n} reached their wait")
        await asyncio.sleep(0.05)
    figures = {"start_rate_per_s": n / (time.perf_counter() - began), "waiting": float(n)}
    await asyncio.sleep(args.settle_s)  # lets a LISTEN session flush the start phase's counts
    t0, x0 = time.perf_counter(), await asyncio.to_thread(xact_commit_now, args.url)
    await asyncio.sleep(args.idle_s)
    x1 = await asyncio.to_thread(xact_commit_now, args.url)
    figures["idle_xact_per_s"] = (x1 - x0) / (time.perf_counter() - t0)
    raised = time.perf_counter()
    for h in handles:
        await DBOS.send_async(h.get_workflow_id(), 1, "go")
    for h in handles:
        await asyncio.wait_for(h.get_result(), max(1.0, deadline - time.perf_counter()))
    figures["complete_rate_per_s"] = n / (time.perf_counter() - raised)
    figures["db_growth_mib"] = (await asyncio.to_thread(database_size, args.url) - size0) / 2**20
    return figures


WORKLOADS = {"W1": run_w1, "W2": run_w2, "W3": run_w3, "W4": run_w4, "W5": run_w5}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one benchmark workload, DBOS Transact")
    parser.add_argument("--url", required=True, help="PostgreSQL URL of this run's database")
    parser.add_argument("--workload", choices=[*WORKLOADS, "W7"])
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--settle-s", type=float, default=0.0,
                        help="W7: wait before the idle window (see bench/README.md)")
    parser.add_argument("--timeout-s", type=float, default=300.0)
    parser.add_argument("--no-listen", dest="listen", action="store_false")
    parser.add_argument("--setup", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    cfg = config(args)
    DBOS(config=cfg)
    DBOS.launch()
    DBOS.register_queue("fan")
    try:
        if args.setup:
            return
        cpu0 = time.process_time()
        if args.workload == "W7":
            figures = asyncio.run(run_w7(args.n, args.timeout_s, args))
        else:
            figures = WORKLOADS[args.workload](args.n, args.timeout_s)
        cpu = time.process_time() - cpu0
    finally:
        DBOS.destroy()
    report = {
        "figures": figures,
        "cpu_s": cpu,
        "peak_rss_mib": peak_rss_mib(),
        "engine_version": importlib.metadata.version("dbos"),
        "options": {k: v for k, v in cfg.items() if k != "system_database_url"},
        "pid": os.getpid(),
        "children_cpu_s": resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime,
    }
    with open(args.out, "w") as fh:
        json.dump(report, fh)


if __name__ == "__main__":
    main()
