"""O1 of ../shared/bench/README.md: the operator under 1,000 (then 10,000) Orchestration CRs.

    python bench/operator.py [--crs 1000] [--database-url URL] [--concurrency 50]

Runs the strict test API server of tests/kubeapi in this process, configured as the tests
configure it (the CRDs of crds/, the chart's ClusterRole, a token for the operator's
ServiceAccount), a real PostgreSQL schema, one ``duraflow worker`` process and the operator as
``duraflow operator`` in its own process (so its CPU time and peak RSS are its own), which
authenticates with that token. Applies N ``Hello`` CRs at once and measures: time until
every CR shows ``Completed`` (from the first create), the operator's CPU seconds
(utime+stime from /proc) and peak RSS (VmHWM), and the API requests and writes the operator
made per CR (the server's records of the operator's user; a refused one is counted apart).
Writes ``bench/results/operator-<N>-<timestamp>.json`` and prints a table row.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

import aiohttp
import asyncpg
import kmock
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.kubeapi.fixtures import OPERATOR_TOKEN, chart_rbac  # noqa: E402
from tests.kubeapi.server import KubeAPIServer  # noqa: E402

RESULTS = ROOT / "bench" / "results"
NS = "bench"


class CountingServer(KubeAPIServer):
    """The strict server, with the operator's requests counted by kind."""

    operator_user: str = ""

    def _operator(self) -> list[Any]:
        return [r for r in self.records if r.user == self.operator_user]

    @property
    def counts(self) -> collections.Counter[str]:
        return collections.Counter(
            f"{r.method} {r.resource}{'/' + r.subresource if r.subresource else ''}"
            for r in self._operator() if r.verb != "watch")

    @property
    def refused(self) -> int:
        return sum(1 for r in self._operator() if r.code in (400, 401, 403, 405, 415))

    @property
    def watches(self) -> int:
        return sum(1 for r in self._operator() if r.verb == "watch")


def _server() -> CountingServer:
    crds = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "crds").glob("*.yaml"))]
    rbac, account, release = chart_rbac("cluster-wide")
    user = f"system:serviceaccount:{release}:{account}"
    server = CountingServer(crds=crds, namespaces=(NS,), keep_requests=False,
                            rbac_objects=rbac, tokens={OPERATOR_TOKEN: user})
    server.operator_user = user
    return server


def _proc_figures(pid: int) -> tuple[float, int]:
    """(CPU seconds, peak RSS bytes) of a live process."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return cpu, peak


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "duraflow.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def spawn_operator(database: list[str], server: str, token: pathlib.Path,
                   env: dict[str, str]) -> subprocess.Popen[str]:
    """``duraflow operator`` against the in-process API server, its log drained."""
    operator = _spawn(["operator", *database, "--kube-url", server, "--kube-token-file",
                       str(token), "--namespaces", NS, "--metrics-port", "0",
                       "--no-leader-election"], env)
    assert operator.stderr is not None
    threading.Thread(target=operator.stderr.read, daemon=True).start()
    return operator


async def watching(api: CountingServer, operator: subprocess.Popen[str]) -> None:
    """Until the operator watches CRs, pools and StatefulSets (before anything is created)."""
    while api.watches < 3:
        if operator.poll() is not None:
            raise SystemExit("the operator exited during start-up")
        await asyncio.sleep(0.1)


def _wait_ready(proc: subprocess.Popen[str]) -> None:
    """Block until the worker logs ``ready`` (then keep draining its log)."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if " ready (" in line:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return
    raise SystemExit("the worker exited during start-up")


async def run(count: int, url: str, concurrency: int) -> dict[str, Any]:
    schema = f"bench_op_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    token = pathlib.Path(tempfile.mkdtemp()) / "token"
    token.write_text(OPERATOR_TOKEN)
    async with _server() as api, kmock.Server(api):
        server = str(api.url).rstrip("/")
        worker = _spawn(["worker", "--database-url", url, "--schema", schema,
                         "--app", "tests.operator.app:register", "--worker-node-id", "bench-0",
                         "--orchestration-concurrency", "64", "--worker-concurrency", "64",
                         "--metrics-port", "0"], env)
        await asyncio.to_thread(_wait_ready, worker)
        operator = spawn_operator(["--database-url", url, "--schema", schema], server, token,
                                  env)
        try:
            await watching(api, operator)
            before = collections.Counter(api.counts)
            cpu_before, _ = _proc_figures(operator.pid)
            semaphore = asyncio.Semaphore(concurrency)
            started = time.perf_counter()

            async def create(session: aiohttp.ClientSession, index: int) -> None:
                body = {"apiVersion": "duraflow.io/v1alpha1", "kind": "Orchestration",
                        "metadata": {"name": f"o{index}", "namespace": NS},
                        "spec": {"orchestration": "Hello", "input": str(index)}}
                async with semaphore, session.post(
                        f"{server}/apis/duraflow.io/v1alpha1/namespaces/{NS}/orchestrations",
                        json=body) as response:
                    assert response.status < 300, await response.text()

            async with aiohttp.ClientSession() as session:
                await asyncio.gather(*(create(session, i) for i in range(count)))
            created_s = time.perf_counter() - started
            keys = [("duraflow.io/v1alpha1/orchestrations", NS, f"o{i}") for i in range(count)]
            deadline = started + max(600.0, count * 0.2)
            peak = 0
            while True:
                done = sum(1 for k in keys
                           if (api.objects[k].get("status") or {}).get("phase")
                           == "Completed")
                _, peak = _proc_figures(operator.pid)
                if os.environ.get("BENCH_TRACE"):
                    phases = collections.Counter(
                        (api.objects[k].get("status") or {}).get("phase") for k in keys)
                    print(round(time.perf_counter() - started, 1), dict(phases), flush=True)
                if done == count or time.perf_counter() > deadline:
                    break
                await asyncio.sleep(0.25)
            elapsed = time.perf_counter() - started
            cpu_after, peak = _proc_figures(operator.pid)
            by_kind = api.counts - before
            operator_requests = sum(by_kind.values())
            writes = sum(v for k, v in by_kind.items() if not k.startswith("GET"))
            cr_writes = sum(v for k, v in by_kind.items()
                            if not k.startswith("GET") and "orchestrations" in k)
            result = {
                "crs": count, "completed": done, "seconds_to_all_completed": round(elapsed, 2),
                "seconds_to_create_all": round(created_s, 2),
                "operator_cpu_seconds": round(cpu_after - cpu_before, 2),
                "operator_peak_rss_mib": round(peak / 2**20, 1),
                "api_requests_per_cr": round(operator_requests / count, 2),
                "api_writes_per_cr": round(writes / count, 2),
                "cr_writes_per_cr": round(cr_writes / count, 2),
                "event_writes_per_cr": round(by_kind.get("POST events", 0) / count, 2),
                "refused_requests": api.refused,
                "requests_by_kind": dict(by_kind.most_common()),
            }
        finally:
            operator.terminate()
            worker.terminate()
            for proc in (operator, worker):
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            conn = await asyncpg.connect(url)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--crs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50, help="parallel creates")
    parser.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    result = asyncio.run(run(args.crs, args.database_url, args.concurrency))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"operator-{args.crs}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
