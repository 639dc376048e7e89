"""The operator under test: real kopf, in-process, against the strict test API server
(``tests/kubeapi``) configured with the CRDs of ``crds/`` and the RBAC of the Helm chart, with
a real PostgreSQL and a real ``duraflow worker`` process.

The operator authenticates as the chart's ServiceAccount (a bearer token read from a token
file, as in a pod) and every request it makes, the admission plugin's checks included, is
authorised against the chart's rendered RBAC: a permission the chart lacks is a 403 here as
it is on a cluster. The tests' own requests (kubectl-like: applying and editing CRs, playing
the StatefulSet controller) carry no token and are the server's admin (``k8s.Kubectl``).

Both watch modes of the chart (``operator.watchNamespaces``):

- ``cluster-wide``: no watchNamespaces; one ClusterRole; the operator watches all namespaces
  (``namespaces=()``);
- ``namespaced``: ``watchNamespaces: [ns1]``; a Role in ns1 and the leader-election Role in
  the release namespace; the operator started with ``namespaces=("ns1",)``.

The Lease lives in the release namespace in both (the chart's ``POD_NAMESPACE``).

Which module runs in which mode (``MODES``, read by ``pytest_generate_tests``: a module that
starts an operator must be listed) and why. Running everything twice would double the
suite's time for little: most behaviour does not depend on the mode. What does is the set of
requests (paths, list/watch scope, which Role answers), so the modules that cover the most
request paths run in both:

===============================  ============  ===============================================
module                           modes         why
===============================  ============  ===============================================
test_orchestration_lifecycle     both          the user's path: watch, finalizer, status, Events
test_workerpool                  both          children, adoption, scale, StatefulSet watch
test_rbac_used                   both          the requests made equal each mode's Roles
test_quiet                       both          a restart lists and watches in the mode's scope
test_bad_input                   namespaced    spec checks; no request depends on the mode
test_client_identity             namespaced    tokens and names; mode-independent
test_leader                      namespaced    the Lease by its own Role in the release ns
test_restarts_and_outages        cluster-wide  resume, crash, outage: mode-independent
test_metrics_and_leader          cluster-wide  the command and two replicas, all namespaces
test_pods                        namespaced    the kubelet stand-in; no operator
test_autoscaling                 namespaced    demand, drains and Events; mode-independent
test_schedules                   namespaced    schedules and TTLs; test_rbac_used has both modes
test_rollouts                    namespaced    revisions of builds; no request depends on it
===============================  ============  ===============================================

One worker process (and one database schema) per test module and mode; one API server and
one operator per test. The operator is started and stopped (or killed) through ``operators``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from duraflow_operator import OperatorSettings, Running, run_operator

from tests.conftest import _run_in_thread
from tests.kubeapi.fixtures import (  # noqa: F401
    MODES,
    ClusterFactory,
    StrictCluster,
    strict_cluster_factory,
)

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
NS = "ns1"
BOTH = MODES
#: The watch modes each module that starts an operator runs in (see the docstring).
MODULE_MODES: dict[str, tuple[str, ...]] = {
    "test_orchestration_lifecycle": BOTH,
    "test_workerpool": BOTH,
    "test_rbac_used": BOTH,
    "test_quiet": BOTH,
    "test_bad_input": ("namespaced",),
    "test_client_identity": ("namespaced",),
    "test_leader": ("namespaced",),
    "test_restarts_and_outages": ("cluster-wide",),
    "test_metrics_and_leader": ("cluster-wide",),
    "test_pods": ("namespaced",),
    "test_autoscaling": ("namespaced",),
    "test_schedules": ("namespaced",),
    "test_rollouts": ("namespaced",),
}
#: Answers that mean the operator asked for something a real cluster refuses.
REFUSED = frozenset({400, 401, 403, 405, 415})
#: kopf's watches: the operator reconciles nothing before all of them are open.
WATCHED = ("orchestrations", "orchestrationschedules", "workerpools", "statefulsets")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "watch_mode" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rpartition(".")[2]
    if module not in MODULE_MODES:
        raise pytest.UsageError(f"tests/operator/{module}.py starts an operator: say in "
                                "conftest.MODULE_MODES which watch modes it runs in")
    metafunc.parametrize("watch_mode", MODULE_MODES[module], scope="module")


@pytest.fixture
async def cluster(watch_mode: str, strict_cluster_factory: ClusterFactory) -> StrictCluster:  # noqa: F811
    """The strict server, with the chart's RBAC rendered for ``watch_mode``."""
    return await strict_cluster_factory(watch_mode)


@pytest.fixture(scope="module")
def schema(postgres_url: str, watch_mode: str) -> Iterator[str]:
    """One database per module and watch mode: the modes' instances never meet (their CRs
    have the same names, so the same instance ids)."""
    yield from fresh_schema(postgres_url)


def fresh_schema(postgres_url: str) -> Iterator[str]:
    """A new schema name, dropped with everything in it afterwards."""
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
    """A real ``duraflow worker`` process, returned once it logs that it is ready; its log
    (stderr) keeps being drained so a chatty worker never blocks on a full pipe."""
    return spawn_duraflow(["worker", "--database-url", url, "--schema", schema, "--app", app,
                           "--worker-node-id", node_id, "--grace-ms", "2000",
                           "--metrics-port", "0"], {}, node_id)


#: A worker outlives no test process: when the thread that started it ends (the test's event
#: loop's executor, or the process, killed by a timeout), it gets SIGTERM (util-linux).
_DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []


def spawn_duraflow(args: list[str], env: dict[str, str], name: str) -> subprocess.Popen[str]:
    """``duraflow <args>`` (a worker) with ``env`` over the tests' environment, returned
    once it logs that it is ready (blocking: from async code, call it in a thread)."""
    cmd = [*_DIE_WITH_PARENT, sys.executable, "-m", "duraflow.cli", *args]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=full_env, cwd=ROOT)
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:  # blocks until the worker logs that it is ready (or exits)
        seen.append(line)
        if " ready (" in line:
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc
    raise AssertionError(f"worker {name} did not start: {''.join(seen)}")


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


def token_file(cluster: StrictCluster, directory: Path) -> Path:
    """The operator's ServiceAccount token, as the kubelet mounts it."""
    path = directory / f"token-{uuid.uuid4().hex[:6]}"
    path.write_text(cluster.operator_token + "\n")
    return path


class Operators:
    """Starts, stops and kills in-process operators for one test."""

    def __init__(self, cluster: StrictCluster, url: str, schema: str, token: Path) -> None:
        self.cluster = cluster
        self.url = url
        self.schema = schema
        self.token = token
        self.task: asyncio.Task[None] | None = None
        self.stop_flag: asyncio.Event | None = None
        self.running: Running | None = None
        #: A test that makes the API server refuse the operator on purpose says so.
        self.refusals_expected = False

    def refusals(self) -> list[str]:
        """The operator's requests the API server refused as a real cluster would (no
        authentication, no permission, a malformed or invalid create)."""
        return [f"{r.method} {r.path}: {r.code}" for r in self.cluster.server.records
                if r.user == self.cluster.operator_user
                and (r.code in REFUSED or (r.code == 422 and r.verb == "create"))]

    def settings(self, **overrides: Any) -> OperatorSettings:
        values: dict[str, Any] = {
            "database_url": self.url, "schema": self.schema,
            "namespaces": self.cluster.watch_namespaces, "metrics_port": 0,
            "kube_url": self.cluster.url, "kube_token_file": str(self.token),
            "leader_election": False, "lease_namespace": self.cluster.release_namespace,
            "registry_interval_s": 0.3,
        }
        values.update(overrides)
        return OperatorSettings(**values)

    async def start(self, **overrides: Any) -> Running:
        server, user = self.cluster.server, self.cluster.operator_user
        mark = len(server.records)
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

        def watching() -> bool:
            opened = {r.resource for r in server.records[mark:]
                      if r.user == user and r.verb == "watch" and r.code == 200}
            return opened >= set(WATCHED)

        await eventually(watching, message="kopf opened its watches")
        assert self.running is not None
        return self.running

    async def stop(self) -> None:
        if self.task is None:
            return
        assert self.stop_flag is not None
        self.stop_flag.set()
        await self._ended("stop")

    async def kill(self) -> None:
        """Stop it dead, mid-whatever (its in-flight handler never writes its status)."""
        if self.task is None:
            return
        self.task.cancel()
        await self._ended("kill")

    async def _ended(self, how: str) -> None:
        """Wait for the operator's task to end, 30 s at most.

        Not ``wait_for``: kopf, ending, cancels every task created after it started (this
        one among them, and the test's own) and waits for each to end; ``wait_for``, once
        cancelled, waits for the operator's task in turn: each waited for the other until
        pytest-timeout, 1 run in 3 under load. A cancelled wait here ends at once instead
        (kopf then finishes on its own), and a wait that times out says what still runs."""
        assert self.task is not None
        task, self.task = self.task, None
        try:
            done, _ = await asyncio.wait({task}, timeout=30)
        except asyncio.CancelledError:
            return
        if not done:
            stacks = io.StringIO()
            for other in asyncio.all_tasks():
                if not other.done() and other is not asyncio.current_task():
                    other.print_stack(limit=12, file=stacks)
            raise AssertionError(f"the operator did not end within 30 s of its {how}; "
                                 f"the tasks still running:\n{stacks.getvalue()}")
        if how == "kill":
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
        elif not task.cancelled():
            task.result()  # a graceful stop raises what ended the operator, as before


@pytest.fixture
async def operators(cluster: StrictCluster, postgres_url: str, schema: str,
                    worker: subprocess.Popen[str], tmp_path: Path) -> AsyncIterator[Operators]:
    ops = Operators(cluster, postgres_url, schema, token_file(cluster, tmp_path))
    yield ops
    await ops.kill()  # a graceful stop lets kopf drain its queues for seconds: not needed here
    if not ops.refusals_expected:  # everything the operator did was accepted under RBAC
        assert ops.refusals() == []
