"""The operator under test: real kopf, in-process, against the kmock API emulator
(``RVEmulator``), with a real PostgreSQL and a real ``duraflow worker`` process.

One worker process (and one database schema) per test module; one emulator and one
operator per test. The operator is started and stopped (or killed) through ``operators``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import kmock as km
import pytest
import yaml
from duraflow_operator import OperatorSettings, Running, run_operator

from tests.conftest import _run_in_thread
from tests.operator.emulator import RVEmulator, register_crd

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
NS = "ns1"
RW = {"get", "list", "watch", "create", "update", "patch", "delete"}


@pytest.fixture
def kmock_options(kmock_options: dict[str, Any]) -> dict[str, Any]:
    return {**kmock_options, "cls": RVEmulator}


@pytest.fixture(scope="module")
def schema(postgres_url: str) -> Iterator[str]:
    name = f"op_{uuid.uuid4().hex[:10]}"
    yield name

    async def drop() -> None:
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        finally:
            await conn.close()

    _run_in_thread(drop)


def spawn_worker(url: str, schema: str, app: str, node_id: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "duraflow.cli", "worker", "--database-url", url,
           "--schema", schema, "--app", app, "--worker-node-id", node_id, "--grace-ms", "2000"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    problem = proc.stderr.read() if proc.stderr and "ready" not in line else ""
    assert "ready" in line, f"worker did not start: {line!r} {problem}"
    return proc


def stop_worker(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def worker(postgres_url: str, schema: str) -> Iterator[subprocess.Popen[str]]:
    proc = spawn_worker(postgres_url, schema, "tests.operator.app:register", "workers-0")
    yield proc
    stop_worker(proc)


@pytest.fixture
async def cluster(kmock: Any) -> AsyncIterator[Any]:
    for path in sorted(CRDS.glob("*.yaml")):
        register_crd(kmock, yaml.safe_load(path.read_text()))
    resources = {
        "apps/v1/statefulsets": ("StatefulSet", True, RW, {"status"}),
        "v1/services": ("Service", True, RW, set()),
        "policy/v1/poddisruptionbudgets": ("PodDisruptionBudget", True, RW, set()),
        "v1/events": ("Event", True, {"create", "list", "get", "patch"}, set()),
        "v1/namespaces": ("Namespace", False, {"list", "watch"}, set()),
        "coordination.k8s.io/v1/leases": ("Lease", True, RW, set()),
        "apiextensions.k8s.io/v1/customresourcedefinitions": (
            "CustomResourceDefinition", False, {"list", "watch"}, set()),
    }
    for name, (kind, namespaced, verbs, subresources) in resources.items():
        kmock.resources[name] = km.ResourceInfo(kind=kind, namespaced=namespaced, verbs=verbs,
                                                subresources=subresources)
    yield kmock


async def eventually(predicate: Callable[[], Any], timeout: float = 20.0,
                     message: str = "") -> Any:
    """Poll ``predicate`` until truthy (KeyError/TypeError count as 'not yet')."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except (KeyError, TypeError, IndexError):
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out: {message or predicate}; last={last!r}")
        await asyncio.sleep(0.05)


class Operators:
    """Starts, stops and kills in-process operators for one test."""

    def __init__(self, cluster: Any, url: str, schema: str) -> None:
        self.cluster = cluster
        self.url = url
        self.schema = schema
        self.task: asyncio.Task[None] | None = None
        self.stop_flag: asyncio.Event | None = None
        self.running: Running | None = None

    def settings(self, **overrides: Any) -> OperatorSettings:
        values: dict[str, Any] = {
            "database_url": self.url, "schema": self.schema, "namespaces": (NS,),
            "metrics_port": 0, "kube_url": str(self.cluster.url).rstrip("/"),
            "leader_election": False, "registry_interval_s": 0.3,
        }
        values.update(overrides)
        return OperatorSettings(**values)

    async def start(self, **overrides: Any) -> Running:
        watches_before = sum(1 for r in self.cluster if r.action == km.action.WATCH)
        self.stop_flag, ready = asyncio.Event(), asyncio.Event()

        def keep(running: Running) -> None:
            self.running = running

        self.task = asyncio.create_task(run_operator(
            self.settings(**overrides), stop_flag=self.stop_flag, ready_flag=ready,
            on_running=keep))
        waiter = asyncio.ensure_future(ready.wait())
        done, _ = await asyncio.wait({waiter, self.task}, timeout=30,
                                     return_when=asyncio.FIRST_COMPLETED)
        if self.task in done:
            self.task.result()  # raises what stopped it
        assert waiter in done, "the operator did not become ready"
        # Objects created before kopf's watch opens are replayed twice: wait for the watch.
        await eventually(lambda: sum(1 for r in self.cluster if r.action == km.action.WATCH)
                         > watches_before, message="kopf opened its watches")
        assert self.running is not None
        return self.running

    async def stop(self) -> None:
        if self.task is None:
            return
        assert self.stop_flag is not None
        self.stop_flag.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.task, 30)
        self.task = None

    async def kill(self) -> None:
        """Stop it dead, mid-whatever (its in-flight handler never writes its status)."""
        if self.task is None:
            return
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self.task, 30)
        self.task = None


@pytest.fixture
async def operators(cluster: Any, postgres_url: str, schema: str,
                    worker: subprocess.Popen[str]) -> AsyncIterator[Operators]:
    ops = Operators(cluster, postgres_url, schema)
    yield ops
    await ops.kill()  # a graceful stop lets kopf drain its queues for seconds: not needed here
