"""The database ceiling, measured in the same sitting as the engines.

``pgbench -N -c 4 -j 2 -T 20`` (simple-update, 4 clients) on its own freshly initialised
database says how many small write transactions per second this PostgreSQL can commit right
now; the mean of one asyncpg ``INSERT`` + commit round trip says what one durable step costs
at the very least. An engine's figures are read against these two.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
import urllib.parse
from typing import Any

import asyncpg

from bench import pgstats

TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")


def _pg_env(url: str) -> dict[str, str]:
    parts = urllib.parse.urlsplit(url)
    env = dict(os.environ)
    env.update({"PGHOST": parts.hostname or "127.0.0.1", "PGPORT": str(parts.port or 5432),
                "PGUSER": parts.username or "postgres"})
    if parts.password:
        env["PGPASSWORD"] = urllib.parse.unquote(parts.password)
    return env


def pgbench_tps(url: str, db: str, seconds: int) -> float:
    env = _pg_env(url)
    subprocess.run(["pgbench", "-i", "-q", db], env=env, check=True, capture_output=True,
                   timeout=120)
    done = subprocess.run(["pgbench", "-N", "-c", "4", "-j", "2", "-T", str(seconds), db],
                          env=env, check=True, capture_output=True, text=True,
                          timeout=seconds + 60)
    match = TPS.search(done.stdout)
    if not match:
        raise RuntimeError(f"no TPS in pgbench output: {done.stdout[-500:]}")
    return float(match.group(1))


async def _round_trip_ms(url: str, count: int) -> float:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute("CREATE TABLE rt (id bigserial PRIMARY KEY, v int NOT NULL)")
        for i in range(20):  # warm the connection and the plan
            await conn.execute("INSERT INTO rt (v) VALUES ($1)", i)
        began = time.perf_counter()
        for i in range(count):  # autocommit: one INSERT + COMMIT per round trip
            await conn.execute("INSERT INTO rt (v) VALUES ($1)", i)
        return (time.perf_counter() - began) / count * 1000
    finally:
        await conn.close()


def measure(url: str, seconds: int = 20, round_trips: int = 1000) -> dict[str, Any]:
    """pgbench TPS and the asyncpg INSERT+COMMIT round trip, on a scratch database."""
    name = f"bench_ceiling_{os.getpid()}"
    db_url = pgstats.create_database(url, name)
    try:
        tps = pgbench_tps(url, name, seconds)
        rt = asyncio.run(_round_trip_ms(db_url, round_trips))
    finally:
        pgstats.drop_database(url, name)
    return {"pgbench_tps": tps, "pgbench_args": f"-N -c 4 -j 2 -T {seconds}",
            "insert_commit_ms": rt, "insert_commit_samples": round_trips}
