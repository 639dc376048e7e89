"""What only the SQLite provider promises: file handling, sharing a file, and how it opens.

These tests build their own providers (not the parametrised ``provider`` fixture), because
they are about opening, reopening and sharing database files.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest

from duraflow import bridge
from duraflow.providers.errors import ProviderError
from duraflow.providers.protocol import Provider
from duraflow.providers.sqlite import SqliteOpenError, SqliteProvider
from duraflow.providers.sqlite.db import map_error
from duraflow.providers.sqlite.migrations import SCHEMA_VERSION

from .support import Turns, raised, start_msg

REPO_ROOT = Path(__file__).resolve().parents[2]


async def test_url_forms_name_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dirs" / "flow.db"  # parents do not exist yet
    first = await SqliteProvider.open_async(f"sqlite:{path}")
    await Turns(first).create("a")
    await first.close()
    for form in (f"sqlite://{path}", str(path), f"sqlite:{path}?mode=rwc"):
        again = await SqliteProvider.open_async(form)
        try:
            assert await again.list_instances() == ["a"]
        finally:
            await again.close()


async def test_file_database_uses_wal_and_a_versioned_schema(tmp_path: Path) -> None:
    path = tmp_path / "flow.db"
    provider = await SqliteProvider.open_async(str(path))
    await provider.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        worker_columns = {r[1] for r in conn.execute("PRAGMA table_info(worker_queue)")}
    assert {
        "instances",
        "executions",
        "history",
        "orchestrator_queue",
        "worker_queue",
        "instance_locks",
        "sessions",
    } <= tables
    assert {"instance_id", "execution_id", "activity_id", "session_id", "tag"} <= worker_columns


async def test_everything_survives_a_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "flow.db")
    provider = await SqliteProvider.open_async(path)
    await Turns(provider).create("a", extra_events=2)
    await provider.enqueue_orchestrator(raised("a", "later"))
    await provider.close()

    reopened = await SqliteProvider.open_async(path)
    try:
        item = await Turns(reopened).fetch("a")
        assert [m["data"] for m in item.messages] == ["later"]
        assert item.history is not None and len(item.history) == 3
    finally:
        await reopened.close()


async def test_two_connections_to_one_file_share_locks(tmp_path: Path) -> None:
    path = str(tmp_path / "flow.db")
    one = await SqliteProvider.open_async(path)
    two = await SqliteProvider.open_async(path)
    try:
        for i in range(10):
            await one.enqueue_orchestrator(raised(f"inst-{i}"))
        items = await asyncio.gather(
            *(p.fetch_orchestration_item(30_000) for p in (one, two) for _ in range(6))
        )
        ids = [item.instance_id for item in items if item is not None]
        assert sorted(ids) == sorted(f"inst-{i}" for i in range(10))  # none twice
        await one.enqueue_orchestrator(raised("inst-0", "more"))
        assert await two.fetch_orchestration_item(30_000) is None  # inst-0 is locked by one
    finally:
        await one.close()
        await two.close()


_DISPATCHER = """
import asyncio, json, sys
from duraflow.core.events import HistoryEvent
from duraflow.providers.items import TurnCommit
from duraflow.providers.sqlite import SqliteProvider

async def main(path):
    provider = await SqliteProvider.open_async(path)
    done, idle = [], 0
    while idle < 25:
        item = await provider.fetch_orchestration_item(30_000)
        if item is None:
            idle += 1
            await asyncio.sleep(0.02)
            continue
        idle = 0
        await asyncio.sleep(0.01)  # hold the lock a while, like a real turn
        await provider.ack_orchestration_item(item.lock_token, TurnCommit(
            execution_id=1, history_delta=[HistoryEvent(1, "OrchestrationStarted", {})],
            orchestration_name="T", status="Completed"))
        done.extend(m["instance"] for m in item.messages)
    await provider.close()
    print(json.dumps(done))

asyncio.run(main(sys.argv[1]))
"""


async def _run_processes(code: str, args: list[str], count: int) -> list[str]:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            *args,
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(count)
    ]
    outputs = []
    for proc in procs:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
        assert proc.returncode == 0, err.decode()
        outputs.append(out.decode())
    return outputs


@pytest.mark.slow
async def test_processes_sharing_a_file_process_each_message_once(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    provider = await SqliteProvider.open_async(path)
    instances = [f"inst-{i:02d}" for i in range(30)]
    for instance in instances:
        await provider.enqueue_orchestrator(start_msg(instance))

    outputs = await _run_processes(_DISPATCHER, [path], count=3)
    processed = [instance for out in outputs for instance in json.loads(out)]
    try:
        assert sorted(processed) == instances  # each exactly once across all processes
        assert sorted(await provider.list_instances_by_status("Completed")) == instances
        metrics = await provider.get_system_metrics()
        assert metrics.total_events == len(instances)
    finally:
        await provider.close()


@pytest.mark.slow
async def test_concurrent_first_opens_agree_on_the_schema(tmp_path: Path) -> None:
    path = str(tmp_path / "fresh.db")
    code = (
        "import asyncio, sys\n"
        "from duraflow.providers.sqlite import SqliteProvider\n"
        "async def main():\n"
        "    p = await SqliteProvider.open_async(sys.argv[1])\n"
        "    await p.close()\n"
        "asyncio.run(main())\n"
    )
    await _run_processes(code, [path], count=4)
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_in_memory_databases_are_private() -> None:
    one = await SqliteProvider.in_memory_async()
    two = await SqliteProvider.in_memory_async()
    try:
        await Turns(one).create("a")
        assert await one.list_instances() == ["a"]
        assert await two.list_instances() == []
    finally:
        await one.close()
        await two.close()


def test_blocking_constructors_build_on_the_background_loop(tmp_path: Path) -> None:
    for provider in (SqliteProvider.in_memory(), SqliteProvider.open(str(tmp_path / "b.db"))):
        assert provider.loop is bridge.background_loop()
        bridge.run_sync(provider.enqueue_orchestrator(raised("a")))
        item = bridge.run_sync(provider.fetch_orchestration_item(30_000))
        assert item is not None and item.instance_id == "a"
        bridge.run_sync(provider.close())


async def test_provider_identity(tmp_path: Path) -> None:
    provider = await SqliteProvider.in_memory_async()
    try:
        assert isinstance(provider, Provider)
        assert (provider.name, provider.cross_process_notify) == ("sqlite", False)
        assert provider.loop is asyncio.get_running_loop()
    finally:
        await provider.close()


async def test_close_is_idempotent_and_later_calls_fail_cleanly() -> None:
    provider = await SqliteProvider.in_memory_async()
    await provider.close()
    await provider.close()
    with pytest.raises(ProviderError) as caught:
        await provider.list_instances()
    assert caught.value.retryable is False and "closed" in str(caught.value)


async def test_unopenable_path_raises_a_clear_runtime_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(RuntimeError) as caught:
        await SqliteProvider.open_async(str(blocker / "flow.db"))
    assert isinstance(caught.value, SqliteOpenError) and isinstance(caught.value, ProviderError)
    assert str(caught.value).startswith("Failed to open SQLite: ")


async def test_database_from_a_newer_duraflow_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SqliteOpenError, match="newer than this Duraflow supports"):
        await SqliteProvider.open_async(str(path))


def test_lock_contention_is_retryable_and_broken_constraints_are_not() -> None:
    assert map_error("op", sqlite3.OperationalError("database is locked")).retryable is True
    assert map_error("op", sqlite3.OperationalError("database table is busy")).retryable
    assert map_error("op", sqlite3.IntegrityError("UNIQUE constraint failed")).retryable is False
