"""The benchmark program written against the duroxide-python API.

The very same code runs on Duraflow and on duroxide: ``--engine`` only chooses which module
the names below are imported from (``from duraflow import …`` or ``from duroxide import …``),
so the comparison measures the engines, not two differently written programs. It uses the
blocking API (``Client``, ``Runtime``) because that is the one both engines have.

One process runs one workload once and writes its figures as JSON (``--out``); the harness
(``bench/runner.py``) starts it fresh for every run so CPU time and peak RSS belong to that run
alone. ``--setup`` only connects (creating and migrating the store) and exits, so the harness
can read the database's transaction counter after the migrations and before the workload.
``--serve`` runs a runtime until SIGTERM (W6's extra processes on duroxide).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from bench.stats import ms_steps, pct, peak_rss_mib

SCHEMA = "bench"
#: Per-process record of when each W4 step's activity ran (activities run in this process).
STEP_TIMES: dict[int, float] = {}
#: W7: how many waiters have run their activity (so the client knows they all wait).
W7_READY = [0]
_W7_LOCK = threading.Lock()


def noop(ctx: Any, x: Any) -> Any:
    return x


def stamp(ctx: Any, i: int) -> int:
    STEP_TIMES[i] = time.perf_counter()
    return i


def counted(ctx: Any, i: int) -> int:
    with _W7_LOCK:
        W7_READY[0] += 1
    return i


def chain(ctx: Any, x: Any) -> Any:
    """W1/W6: five sequential activities."""
    for _ in range(5):
        x = yield ctx.schedule_activity("Noop", x)
    return x


def fan(ctx: Any, n: int) -> Any:
    """W2: fan out ``n`` activities with ``ctx.all`` and return their count."""
    results = yield ctx.all([ctx.schedule_activity("Noop", i) for i in range(n)])
    return len(results)


def hello(ctx: Any, x: Any) -> Any:
    """W3: one activity."""
    return (yield ctx.schedule_activity("Noop", x))


def sequence(ctx: Any, n: int) -> Any:
    """W4: ``n`` sequential activities, each stamping when it ran."""
    for i in range(n):
        yield ctx.schedule_activity("Stamp", i)
    return n


def timer(ctx: Any, ms: int) -> Any:
    """W5: one durable timer; returns the orchestration's clock after it fired."""
    yield ctx.schedule_timer(ms)
    return (yield ctx.utc_now())


def waiter(ctx: Any, i: int) -> Any:
    """W7: one activity, then wait for an external event."""
    yield ctx.schedule_activity("Counted", i)
    return (yield ctx.wait_for_event("Go"))


def register(runtime: Any) -> None:
    """Registers every handler; also the ``--app`` of ``duraflow worker`` in W6."""
    for name, act in [("Noop", noop), ("Stamp", stamp), ("Counted", counted)]:
        runtime.register_activity(name, act)
    for name, orch in [("Chain", chain), ("Fan", fan), ("Hello", hello), ("Sequence", sequence),
                       ("Timer", timer), ("Waiter", waiter)]:
        runtime.register_orchestration(name, orch)


class Session:
    """The engine module, its provider, and (unless a client-only run) a started runtime."""

    def __init__(self, args: argparse.Namespace, with_runtime: bool = True) -> None:
        self.args = args
        self.api: ModuleType = importlib.import_module(args.engine)
        self.provider = self._open_provider()
        self.runtime: Any = None
        if with_runtime:
            self.runtime = self.api.Runtime(self.provider, runtime_options(self.api, args))
            register(self.runtime)
            self.runtime.start()
        self.client = self.api.Client(self.provider)

    def _open_provider(self) -> Any:
        if self.args.backend == "sqlite":
            return self.api.SqliteProvider.open(self.args.sqlite_path)
        extra = {} if self.args.listen else {"listen": False}
        return self.api.PostgresProvider.connect_with_schema(self.args.url, SCHEMA, **extra)

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.shutdown(5_000)
        if self.args.engine == "duraflow":  # duroxide's providers close when dropped
            from duraflow.bridge import run_sync

            run_sync(self.provider.close())

    def wait(self, instance_id: str, timeout_s: float) -> Any:
        result = self.client.wait_for_orchestration(instance_id, int(timeout_s * 1000))
        if result.status != "Completed":
            raise RuntimeError(f"{instance_id} ended {result.status}: {result.error}")
        return result


def run_w1(s: Session, n: int, timeout_s: float) -> dict[str, float]:
    began = time.perf_counter()
    for i in range(n):
        s.client.start_orchestration(f"w1-{i}", "Chain", i)
    for i in range(n):
        s.wait(f"w1-{i}", max(1.0, timeout_s - (time.perf_counter() - began)))
    wall = time.perf_counter() - began
    return {"wall_s": wall, "orch_per_s": n / wall, "act_per_s": 5 * n / wall}


def run_w2(s: Session, n: int, timeout_s: float) -> dict[str, float]:
    began = time.perf_counter()
    s.client.start_orchestration("w2", "Fan", n)
    result = s.wait("w2", timeout_s)
    wall = time.perf_counter() - began
    if result.output != n:
        raise RuntimeError(f"W2 returned {result.output!r}, expected {n}")
    return {"wall_s": wall, "act_per_s": n / wall}


def run_w3(s: Session, n: int, timeout_s: float) -> dict[str, float]:
    latencies = []
    deadline = time.perf_counter() + timeout_s
    for i in range(n):
        began = time.perf_counter()
        s.client.start_orchestration(f"w3-{i}", "Hello", i)
        s.wait(f"w3-{i}", max(1.0, deadline - began))
        latencies.append((time.perf_counter() - began) * 1000)
    return {"p50_ms": pct(latencies, 50), "p95_ms": pct(latencies, 95),
            "p99_ms": pct(latencies, 99), "mean_ms": sum(latencies) / n}


def run_w4(s: Session, n: int, timeout_s: float) -> dict[str, float]:
    STEP_TIMES.clear()
    began = time.perf_counter()
    s.client.start_orchestration("w4", "Sequence", n)
    s.wait("w4", timeout_s)
    wall = time.perf_counter() - began
    steps = ms_steps([STEP_TIMES[i] for i in sorted(STEP_TIMES)])
    window = max(1, min(50, len(steps) // 2))
    first, last = steps[:window], steps[-window:]
    return {"total_s": wall, "ms_per_activity": wall / n * 1000,
            "growth": (sum(last) / len(last)) / (sum(first) / len(first))}


def run_w5(s: Session, n: int, timeout_s: float) -> dict[str, float]:
    began = time.perf_counter()
    started: dict[int, float] = {}
    for i in range(n):
        started[i] = time.time() * 1000
        s.client.start_orchestration(f"w5-{i}", "Timer", 1000)
    start_phase = time.perf_counter() - began
    overshoot = []
    for i in range(n):
        result = s.wait(f"w5-{i}", max(1.0, timeout_s - (time.perf_counter() - began)))
        overshoot.append(float(result.output) - started[i] - 1000)
    return {"all_done_s": time.perf_counter() - began, "start_calls_s": start_phase,
            "overshoot_p50_ms": pct(overshoot, 50), "overshoot_p95_ms": pct(overshoot, 95),
            "overshoot_max_ms": max(overshoot)}


def _start_workers(args: argparse.Namespace) -> list[subprocess.Popen[str]]:
    """W6's worker processes: ``duraflow worker`` for Duraflow (it logs ``… ready (…)`` on
    stderr, which is then drained so its log never fills the pipe), ``--serve`` for duroxide
    (prints ``ready`` on stdout)."""
    procs = []
    for k in range(args.processes):
        if args.engine == "duraflow":
            cmd = [sys.executable, "-m", "duraflow.cli", "worker", "--database-url", args.url,
                   "--schema", SCHEMA, "--app", "bench.api_program:register",
                   "--worker-node-id", f"bench-{k}", "--metrics-port", "0"]
            if args.build_id:
                cmd += ["--build-id", args.build_id]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True))
        else:
            cmd = [sys.executable, "-m", "bench.api_program", "--engine", args.engine,
                   "--backend", "postgres", "--url", args.url, "--serve"]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
    for proc in procs:  # each says once that its runtime has started
        stream = proc.stderr if args.engine == "duraflow" else proc.stdout
        assert stream is not None
        said = []
        for line in stream:
            said.append(line)
            if "ready" in line:
                break
        else:
            raise RuntimeError(f"W6 worker did not start (said {''.join(said)!r})")
        if args.engine == "duraflow":
            threading.Thread(target=stream.read, daemon=True).start()
    return procs


def run_w6(args: argparse.Namespace, n: int, timeout_s: float) -> dict[str, float]:
    procs = _start_workers(args)
    try:
        s = Session(args, with_runtime=False)
        try:
            figures = run_w1(s, n, timeout_s)
        finally:
            s.close()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    figures["processes"] = args.processes
    return figures


def run_w7(s: Session, n: int, timeout_s: float, args: argparse.Namespace) -> dict[str, float]:
    from bench.pgstats import database_size, xact_commit_now

    size0 = database_size(args.url) if args.backend == "postgres" else 0
    W7_READY[0] = 0
    began = time.perf_counter()
    for i in range(n):
        s.client.start_orchestration(f"w7-{i}", "Waiter", i)
    deadline = began + timeout_s
    while W7_READY[0] < n:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"W7: only {W7_READY[0]} of {n} reached their wait")
        time.sleep(0.05)
    # The activity has run; the turn that subscribes to the event may still be queued. An
    # event raised before the subscription is not delivered on duroxide, so wait until the
    # orchestrator queue is empty (all have subscribed) — through the API both engines share.
    while s.client.get_queue_depths().orchestrator_queue:
        if time.perf_counter() > deadline:
            raise TimeoutError("W7: turns still queued after every activity ran")
        time.sleep(0.05)
    start_wall = time.perf_counter() - began
    figures = {"start_rate_per_s": n / start_wall, "waiting": float(n)}
    if args.backend == "postgres":
        time.sleep(args.settle_s)  # lets a LISTEN session flush the start phase's counts
        t0, x0 = time.perf_counter(), xact_commit_now(args.url)
        time.sleep(args.idle_s)
        x1 = xact_commit_now(args.url)
        figures["idle_xact_per_s"] = (x1 - x0) / (time.perf_counter() - t0)
    raised = time.perf_counter()
    for i in range(n):
        s.client.raise_event(f"w7-{i}", "Go", i)
    for i in range(n):
        s.wait(f"w7-{i}", max(1.0, deadline - time.perf_counter()))
    figures["complete_rate_per_s"] = n / (time.perf_counter() - raised)
    if args.backend == "postgres":
        figures["db_growth_mib"] = (database_size(args.url) - size0) / 2**20
    return figures


WORKLOADS: dict[str, Callable[[Session, int, float], dict[str, float]]] = {
    "W1": run_w1, "W2": run_w2, "W3": run_w3, "W4": run_w4, "W5": run_w5,
}


def serve(args: argparse.Namespace) -> None:
    """Run a runtime until SIGTERM (duroxide's W6 worker process)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    s = Session(args)
    print("ready", flush=True)
    stop.wait()
    s.close()


def runtime_options(api: ModuleType, args: argparse.Namespace) -> Any:
    """The engine's default RuntimeOptions; Duraflow's with the sitting's build id."""
    if getattr(args, "build_id", None):
        return api.RuntimeOptions(build_id=args.build_id)
    return api.RuntimeOptions()


def options_of(api: ModuleType, args: argparse.Namespace) -> dict[str, Any]:
    """The engine's RuntimeOptions as recorded in the results."""
    opts = runtime_options(api, args)
    names = [n for n in dir(opts) if not n.startswith("_") and not callable(getattr(opts, n))]
    return {n: getattr(opts, n) if isinstance(getattr(opts, n), (int, float, str, bool,
            type(None))) else repr(getattr(opts, n)) for n in names}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one benchmark workload, duroxide-python API")
    parser.add_argument("--engine", choices=["duraflow", "duroxide"], required=True)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--url", help="PostgreSQL URL of this run's own database")
    parser.add_argument("--sqlite-path", help="SQLite file of this run")
    parser.add_argument("--workload", choices=[*WORKLOADS, "W6", "W7"])
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--processes", type=int, default=3, help="W6 worker processes")
    parser.add_argument("--idle-s", type=float, default=20.0, help="W7 idle window")
    parser.add_argument("--settle-s", type=float, default=0.0,
                        help="W7: wait before the idle window (see bench/README.md)")
    parser.add_argument("--timeout-s", type=float, default=300.0)
    parser.add_argument("--no-listen", dest="listen", action="store_false")
    parser.add_argument("--build-id", help="Duraflow only: RuntimeOptions(build_id=...)")
    parser.add_argument("--out")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--setup", action="store_true")
    mode.add_argument("--serve", action="store_true")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args)
        return
    if args.setup:
        s = Session(args, with_runtime=False)
        s.close()
        return
    cpu0 = time.process_time()
    if args.workload == "W6":
        figures = run_w6(args, args.n, args.timeout_s)
    else:
        s = Session(args)
        try:
            cpu0 = time.process_time()
            if args.workload == "W7":
                figures = run_w7(s, args.n, args.timeout_s, args)
            else:
                figures = WORKLOADS[args.workload](s, args.n, args.timeout_s)
        finally:
            s.close()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = {
        "figures": figures,
        "cpu_s": time.process_time() - cpu0 + children.ru_utime + children.ru_stime,
        "peak_rss_mib": peak_rss_mib(),
        "engine_version": importlib.metadata.version(args.engine),
        "options": options_of(importlib.import_module(args.engine), args),
        "pid": os.getpid(),
    }
    with open(args.out, "w") as fh:
        json.dump(report, fh)


if __name__ == "__main__":
    main()
