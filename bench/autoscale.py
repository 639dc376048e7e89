"""A1 of ../shared/bench/README.md: elastic WorkerPools, many pools, one burst each.

    python bench/autoscale.py [--pools 50] [--burst 4] [--idle-s 60] [--database-url URL]

The strict test API server of tests/kubeapi in this process (the CRDs, the chart's RBAC, the
operator's token: as bench/operator.py), a PostgreSQL database of the run's own (so
``pg_stat_database.xact_commit`` counts this run only), and the operator as ``duraflow
operator`` in its own process. N WorkerPools, each taking its own tag ``t<i>``, with
``autoscaling: {minReplicas: 0, maxReplicas: 3, targetPerReplica: 2}``. No pods run (nothing
plays the kubelet): what is measured is the operator's side.

1. **Idle**: every pool at 0 and nothing to do; over ``--idle-s`` seconds, the operator's CPU
   seconds (utime+stime from /proc) and the database's committed transactions per second.
   Only the operator is connected then, so they are its own queries (its listener's pings
   included). They must not grow with the number of pools: run it with 5 and with 50.
2. **Burst**: a runtime in this process (turns only) starts ``--burst`` ``TaggedJob``s for
   every pool at once; per pool, the time from its jobs being started to its StatefulSet's
   ``replicas`` changing (the API server is in this process: polled every 10 ms).

Writes ``bench/results/autoscale-<N>-<timestamp>.json`` and prints it.

``--count-queries``: instead, the operator runs in this process with every database round
trip of its provider counted by operation, N pools idle for ``--idle-s`` seconds: which
queries the idle rate is made of (the database's counter also sees its housekeeping).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import kmock

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from duraflow_operator.spec import code_build  # noqa: E402

from bench import pgstats  # noqa: E402
from bench.operator import NS, _proc_figures, _server, spawn_operator, watching  # noqa: E402
from duraflow import AsyncClient, AsyncRuntime, PostgresProvider, RuntimeOptions  # noqa: E402
from tests.kubeapi.fixtures import OPERATOR_TOKEN, KubeClient  # noqa: E402
from tests.operator.app import register  # noqa: E402

RESULTS = ROOT / "bench" / "results"
STS = "apps/v1/statefulsets"


def _pool(index: int) -> dict[str, Any]:
    return {"apiVersion": "duraflow.io/v1alpha1", "kind": "WorkerPool",
            "metadata": {"name": f"p{index}", "namespace": NS},
            "spec": {"image": "duraflow:bench", "app": "tests.operator.app:register",
                     "tags": [f"t{index}"], "workerConcurrency": 2,
                     "databaseSecretRef": {"name": "db", "key": "url"},
                     "autoscaling": {"minReplicas": 0, "maxReplicas": 3,
                                     "targetPerReplica": 2}}}


def _replicas(api: Any, index: int) -> int | None:
    spec = _pool(index)["spec"]  # its revision's StatefulSet (docs/rollouts.md)
    sts = api.objects.get((STS, NS, f"p{index}-{code_build(spec['image'], spec['app'])}"))
    return None if sts is None else int(sts["spec"].get("replicas") or 0)


async def run(pools: int, burst: int, idle_s: float, url: str) -> dict[str, Any]:
    name = f"bench_a1_{uuid.uuid4().hex[:8]}"
    db_url = await asyncio.to_thread(pgstats.create_database, url, name)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    token = pathlib.Path(tempfile.mkdtemp()) / "token"
    token.write_text(OPERATOR_TOKEN)
    result: dict[str, Any] = {"pools": pools, "burst_per_pool": burst}
    try:
        async with _server() as api, kmock.Server(api):
            server = str(api.url).rstrip("/")
            operator = spawn_operator(["--database-url", db_url], server, token, env)
            try:
                await watching(api, operator)
                admin = KubeClient(server)
                answers = await asyncio.gather(*(admin.create(
                    f"/apis/duraflow.io/v1alpha1/namespaces/{NS}/workerpools", _pool(i))
                    for i in range(pools)))
                assert all(a.status == 201 for a in answers), answers
                while any(_replicas(api, i) != 0 for i in range(pools)):
                    await asyncio.sleep(0.1)
                await asyncio.sleep(15)  # settle: the pools' first reads and status writes
                result.update(await _idle(operator, db_url, name, idle_s))
                result.update(await _burst(api, db_url, pools, burst))
            finally:
                operator.terminate()
                try:
                    operator.wait(30)
                except subprocess.TimeoutExpired:
                    operator.kill()
    finally:
        await asyncio.to_thread(pgstats.drop_database, url, name)
    return result


async def _idle(operator: subprocess.Popen[str], db_url: str, name: str,
                idle_s: float) -> dict[str, Any]:
    cpu_before, _ = _proc_figures(operator.pid)
    xacts_before = await asyncio.to_thread(pgstats.xact_commit, db_url, name)
    began = time.perf_counter()
    await asyncio.sleep(idle_s)
    elapsed = time.perf_counter() - began
    cpu_after, peak = _proc_figures(operator.pid)
    xacts_after = await asyncio.to_thread(pgstats.xact_commit, db_url, name)
    return {"idle_seconds": round(elapsed, 1),
            "idle_operator_cpu_percent": round(100 * (cpu_after - cpu_before) / elapsed, 2),
            "idle_db_transactions_per_s": round((xacts_after - xacts_before) / elapsed, 2),
            "operator_peak_rss_mib": round(peak / 2**20, 1)}


async def _burst(api: Any, db_url: str, pools: int, burst: int) -> dict[str, Any]:
    provider = await PostgresProvider.connect_async(db_url)
    runtime = AsyncRuntime(provider, RuntimeOptions(worker_concurrency=0,
                                                    orchestration_concurrency=32))
    register(runtime)
    await runtime.start()
    client = AsyncClient(provider)
    first_change: dict[int, float] = {}
    started: dict[int, float] = {}
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            now = time.perf_counter()
            for i in started:
                if i not in first_change and (_replicas(api, i) or 0) > 0:
                    first_change[i] = now
            await asyncio.sleep(0.01)

    async def pool_burst(i: int) -> None:
        started[i] = time.perf_counter()
        await asyncio.gather(*(client.start_orchestration(
            f"j{i}-{k}", "TaggedJob", {"tag": f"t{i}", "seconds": 0}) for k in range(burst)))

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.gather(*(pool_burst(i) for i in range(pools)))
        deadline = time.perf_counter() + 120
        while len(first_change) < pools and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        final = [_replicas(api, i) for i in range(pools)]
    finally:
        stop.set()
        await watcher
        await runtime.shutdown(2000)
        await provider.close()
    latencies = sorted(first_change[i] - started[i] for i in first_change)
    return {"pools_scaled": len(latencies),
            "first_replica_change_s": {
                "median": round(statistics.median(latencies), 3),
                "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 3),
                "max": round(latencies[-1], 3)} if latencies else None,
            "replicas_after": sorted(set(r for r in final if r is not None))}


async def count_queries(pools: int, idle_s: float, url: str) -> dict[str, Any]:
    from duraflow_operator.main import run_operator
    from duraflow_operator.settings import OperatorSettings

    from duraflow.providers.postgres import db as database

    counts: collections.Counter[str] = collections.Counter()
    for method in ("fetch", "fetchval", "fetchrow", "execute"):
        original = getattr(database.Database, method, None)
        if original is None:
            continue

        def counted(original: Any = original) -> Any:
            async def call(self: Any, operation: str, *args: Any, **kwargs: Any) -> Any:
                counts[operation] += 1
                return await original(self, operation, *args, **kwargs)
            return call

        setattr(database.Database, method, counted())
    schema = f"bench_a1_{uuid.uuid4().hex[:8]}"
    token = pathlib.Path(tempfile.mkdtemp()) / "token"
    token.write_text(OPERATOR_TOKEN)
    try:
        async with _server() as api, kmock.Server(api):
            server = str(api.url).rstrip("/")
            stop = asyncio.Event()
            task = asyncio.create_task(run_operator(OperatorSettings(
                database_url=url, schema=schema, namespaces=(NS,), metrics_port=0,
                kube_url=server, kube_token_file=str(token), leader_election=False),
                stop_flag=stop))
            while api.watches < 3:
                await asyncio.sleep(0.1)
            admin = KubeClient(server)
            for i in range(pools):
                await admin.create(f"/apis/duraflow.io/v1alpha1/namespaces/{NS}/workerpools",
                                   _pool(i))
            while any(_replicas(api, i) != 0 for i in range(pools)):
                await asyncio.sleep(0.1)
            await asyncio.sleep(10)
            counts.clear()
            await asyncio.sleep(idle_s)
            seen = collections.Counter(counts)
            stop.set()
            await asyncio.wait_for(task, 30)
    finally:
        await asyncio.to_thread(pgstats.drop_schema, url, schema)
    return {"pools": pools, "idle_seconds": idle_s,
            "operator_round_trips_per_s": round(sum(seen.values()) / idle_s, 3),
            "by_operation_per_s": {k: round(v / idle_s, 3) for k, v in seen.most_common()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pools", type=int, default=50)
    parser.add_argument("--burst", type=int, default=4, help="jobs started per pool")
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--count-queries", action="store_true",
                        help="count the idle operator's round trips by operation instead")
    parser.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    if args.count_queries:
        result = asyncio.run(count_queries(args.pools, args.idle_s, args.database_url))
    else:
        result = asyncio.run(run(args.pools, args.burst, args.idle_s, args.database_url))
    RESULTS.mkdir(exist_ok=True)
    kind = "autoscale-queries" if args.count_queries else "autoscale"
    out = RESULTS / f"{kind}-{args.pools}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
