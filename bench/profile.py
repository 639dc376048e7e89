"""Where one workload's time goes: Python frames (py-spy) and database statements.

    .venv/bin/python -m bench.profile W1            # Duraflow on PostgreSQL, W1 of 500
    .venv/bin/python -m bench.profile W5 --n 200 --url postgresql://postgres@127.0.0.1:5433/test

Runs ``bench.api_program`` once in a scratch database under ``py-spy record --gil`` (only
samples that hold the GIL, i.e. Python work, not threads waiting), then prints the frames with
the most samples (self and inclusive), the CPU seconds of the run's own PostgreSQL backends
(polled from ``/proc``, so the server must run on this machine) and, when the server has
``pg_stat_statements`` in ``shared_preload_libraries``, the statements by total time. The
figures in ``bench/PROFILE.md`` come from this command. Not a test; writes nothing but the
scratch database, which it drops.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import asyncpg

from bench.pgstats import create_database, drop_database

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
DATABASE = "bench_profile"


async def _preloaded(url: str) -> bool:
    """Whether the server can keep ``pg_stat_statements`` (it must be preloaded)."""
    conn = await asyncpg.connect(url)
    try:
        return "pg_stat_statements" in str(await conn.fetchval("SHOW shared_preload_libraries"))
    finally:
        await conn.close()


async def _statements(url: str, top: int) -> list[tuple[int, float, float, str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT calls, total_exec_time, mean_exec_time, query FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND toplevel ORDER BY total_exec_time DESC LIMIT $1", top)
    finally:
        await conn.close()
    return [(int(r[0]), float(r[1]), float(r[2]), " ".join(str(r[3]).split())) for r in rows]


def _backend_cpu(url: str, stop: threading.Event, into: dict[int, float]) -> None:
    """Poll the CPU seconds of the scratch database's backends until ``stop``."""
    tick = os.sysconf("SC_CLK_TCK")

    async def pids() -> list[int]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1"
                                    " AND pid <> pg_backend_pid()", DATABASE)
        finally:
            await conn.close()
        return [int(r[0]) for r in rows]

    while not stop.wait(0.2):
        try:
            found = asyncio.run(pids())
        except Exception:  # the server is busy or gone: try again
            continue
        for pid in found:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            into[pid] = (int(fields[11]) + int(fields[12])) / tick


def _summarise(raw: Path, top: int) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0

    def name(frame: str) -> str:
        frame = re.sub(r"\s*\(.*?/(site-packages|python3\.\d+|duraflow|bench)/", r" (\1/", frame)
        return re.sub(r":\d+\)", ")", frame)

    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        frames = [name(f) for f in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    return total, own.most_common(top), inclusive.most_common(top)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=["W1", "W2", "W3", "W4", "W5", "W6"])
    parser.add_argument("--processes", type=int, default=3, help="W6 worker processes")
    parser.add_argument("--n", type=int, default=0, help="size (default: the workload's own)")
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")
    size = args.n or {"W1": 500, "W2": 500, "W3": 200, "W4": 300, "W5": 200,
                      "W6": 500}[args.workload]
    url = create_database(args.url, DATABASE)
    statements = asyncio.run(_preloaded(url))
    program = [sys.executable, "-m", "bench.api_program", "--engine", "duraflow",
               "--backend", "postgres", "--url", url]
    subprocess.run([*program, "--setup"], check=True, capture_output=True)
    if statements:
        asyncio.run(_reset_statements(url))
    cpu: dict[int, float] = {}
    first: dict[int, float] = {}
    stop = threading.Event()
    poller = threading.Thread(target=_backend_cpu, args=(args.url, stop, cpu), daemon=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp, "profile.raw"), Path(tmp, "out.json")
        poller.start()
        time.sleep(0.3)
        first.update(cpu)
        # W6's worker processes are children of the client: sample them too.
        children = ["--subprocesses"] if args.workload == "W6" else []
        extra = ["--processes", str(args.processes)] if args.workload == "W6" else []
        subprocess.run([spy, "record", "--gil", *children, "-r", "250", "-f", "raw", "-o",
                        str(raw), "--", *program, "--workload", args.workload, "--n", str(size),
                        *extra, "--out", str(out)], check=True, capture_output=True)
        stop.set()
        poller.join()
        result = json.loads(out.read_text())
        total, own, inclusive = _summarise(raw, args.top)
    print(f"{args.workload} n={size}: {result['figures']}")
    print(f"engine process CPU {result['cpu_s']:.2f} s (W6: with its worker processes; profiled,"
          " so slower than a bench run);"
          f" its PostgreSQL backends {sum(cpu.values()) - sum(first.values()):.2f} s")
    print(f"\nPython frames holding the GIL, {total} samples; self:")
    for frame, count in own:
        print(f"  {100 * count / total:5.1f}%  {frame}")
    print("inclusive:")
    for frame, count in inclusive:
        print(f"  {100 * count / total:5.1f}%  {frame}")
    if statements:
        print("\nstatements by total time (pg_stat_statements, top level):")
        for calls, total_ms, mean_ms, query in asyncio.run(_statements(url, args.top)):
            print(f"  {calls:6d} calls {total_ms:8.1f} ms {mean_ms:7.3f} ms/call  {query[:100]}")
    else:
        print("\n(no pg_stat_statements: start a server with shared_preload_libraries ="
              " 'pg_stat_statements' for the database side)")
    drop_database(args.url, DATABASE)


async def _reset_statements(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("SELECT pg_stat_statements_reset()")
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
