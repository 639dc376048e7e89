"""A code rollout with real ``duraflow worker`` processes, on a SQLite file and on PostgreSQL.

Build ``v1`` starts instances that wait for an event. A ``v2`` worker starts whose code adds
a step to ``Changed`` and ``Looper``: new starts run on ``v2``; ``Same``, whose code did not
change, moves to ``v2`` once ``v2`` has replayed its history; ``Changed`` stays on ``v1``.
A ``Looper`` continues as new on ``v1`` and its next execution starts on ``v2``. With every
``v1`` worker killed its instances wait (``builds list`` says so); a ``v1`` worker back, they
complete. Nothing fails: no instance ever replays on code that did not write its history.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from duraflow import AsyncClient
from duraflow.cli import main
from duraflow.providers.protocol import Provider
from tests.worker.support import WorkerProcess

pytestmark = [pytest.mark.slow]
T = TypeVar("T")
OLD = 3  # instances of each orchestration started on v1


async def until(probe: Callable[[], Awaitable[T]], what: str, timeout_s: float = 30.0) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout_s:g} s waiting for {what}"
        await asyncio.sleep(0.1)


def worker(store: tuple[Provider, str, str], name: str, build: str) -> WorkerProcess:
    _, url, schema = store
    env = {"DURAFLOW_DATABASE_URL": url, "DURAFLOW_BUILD_ID": build,
           "DURAFLOW_APP": f"tests.cluster.rollout_app:register_{build}",
           "DURAFLOW_METRICS_PORT": "0", "DURAFLOW_HEARTBEAT_INTERVAL_MS": "500"}
    if schema:
        env["DURAFLOW_SCHEMA"] = schema
    return WorkerProcess(name, env)


async def started(process: WorkerProcess) -> WorkerProcess:
    return await asyncio.to_thread(process.wait_ready)


async def test_a_rollout_never_replays_on_code_that_did_not_write_the_history(
    shared_store: tuple[Provider, str, str], capsys: pytest.CaptureFixture[str],
) -> None:
    provider, url, schema = shared_store
    client = AsyncClient(provider)

    async def build_of(instance_id: str, execution: int | None = None) -> str | None:
        if (await client.get_status(instance_id)).status == "NotFound":
            return None
        if execution is None:
            return (await client.get_instance_info(instance_id)).build_id
        if execution not in await client.list_executions(instance_id):
            return None
        return (await client.get_execution_info(instance_id, execution)).build_id

    async def on(instance_id: str, build: str, execution: int | None = None) -> bool:
        return await build_of(instance_id, execution) == build

    async def waiting(instance_id: str, execution: int = 1) -> bool:
        history = await client.read_execution_history(instance_id, execution)
        return bool(history) and history[-1].kind == "ExternalSubscribed"

    processes: list[WorkerProcess] = []
    try:
        v1 = await started(worker(shared_store, "v1-a", "v1"))
        processes.append(v1)
        old = {name: [f"{name.lower()}-{n}" for n in range(OLD)] for name in ("Changed", "Same")}
        for name, ids in old.items():
            for instance_id in ids:
                await client.start_orchestration(instance_id, name, instance_id)
        await client.start_orchestration("looper", "Looper", 0)
        everyone = [*old["Changed"], *old["Same"], "looper"]
        for instance_id in everyone:
            await until(lambda i=instance_id: waiting(i), f"{instance_id} waiting on v1")
            assert await build_of(instance_id) == "v1"

        processes.append(await started(worker(shared_store, "v2-a", "v2")))
        await client.start_orchestration("changed-new", "Changed", "new")
        await until(lambda: waiting("changed-new"), "the new start waiting on v2")
        assert await build_of("changed-new") == "v2"
        for instance_id in old["Same"]:  # reproduced by v2: moved within seconds
            await until(lambda i=instance_id: on(i, "v2"), f"{instance_id} to move to v2")
        for instance_id in [*old["Changed"], "looper"]:  # v2 diverges: they stay
            assert await build_of(instance_id) == "v1"

        await client.raise_event("looper", "go", "first")  # continues as new on v1 ...
        await until(lambda: waiting("looper", 2), "the looper's next execution")
        assert [await build_of("looper", n) for n in (1, 2)] == ["v1", "v2"]  # ... then v2

        v1.proc.send_signal(signal.SIGKILL)  # every v1 worker gone
        v1.proc.wait(10)
        for instance_id in everyone:
            await client.raise_event(instance_id, "go", "ok")
        for instance_id in old["Same"]:
            result = await client.wait_for_orchestration(instance_id, 30_000)
            assert (result.status, result.output) == ("Completed", [f"v1:{instance_id}", "ok"])
        builds = await until(lambda: _v1_waiting(client), "builds list: v1 without workers")
        assert builds == {"v1": ("draining", 0, OLD), "v2": ("current", 1, 1)}  # changed-new
        capsys.readouterr()
        argv = ["builds", "list", "--database-url", url, *(["--schema", schema] if schema else [])]
        assert await asyncio.to_thread(main, argv) == 0
        assert f"build v1: {OLD} running execution(s) wait for a live worker" in \
            capsys.readouterr().out
        for instance_id in old["Changed"]:  # waiting, not failed
            assert (await client.get_status(instance_id)).status == "Running"

        processes.append(await started(worker(shared_store, "v1-b", "v1")))
        for instance_id in [*old["Changed"], "looper"]:
            result = await client.wait_for_orchestration(instance_id, 30_000)
            assert result.status == "Completed", (instance_id, result.error)
        assert (await client.get_status("looper")).output == ["v2:1", "ok"]
        await client.raise_event("changed-new", "go", "ok")
        assert (await client.wait_for_orchestration("changed-new", 30_000)).output == [
            "v2:new", "ok"]
        for instance_id in [*everyone, "changed-new"]:
            for execution in await client.list_executions(instance_id):
                kinds = [e.kind for e in await client.read_execution_history(instance_id,
                                                                             execution)]
                assert "OrchestrationFailed" not in kinds, instance_id
    finally:
        for process in processes:
            process.stop()


async def _v1_waiting(client: AsyncClient) -> dict[str, tuple[str, int, int]] | None:
    builds = {b.build_id: (b.state, b.live_workers, b.pinned_running)
              for b in await client.list_builds()}
    return builds if builds.get("v1", ("", 1, 0))[1] == 0 else None


