"""The timer path keeps up with a burst of timers: a turn frees its dispatcher slot once its
commit is sent, so the next fetch overlaps the commit's round trip, and the store's next due
times are read 64 at a time, so timers the runtime did not hear of (stored before it
started) are followed without a read per timer. Timing goals live in the bench (W5)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from duraflow import AsyncClient, AsyncRuntime, RuntimeOptions, SqliteProvider
from duraflow.providers.clock import now_ms

from .support import TIMEOUT_MS, TIMEOUT_S

QUIET = {"dispatcher_poll_interval_ms": 600_000, "idle_poll_interval_ms": 600_000}


def at(ctx: Any, due_ms: int) -> Any:
    """Wait until the absolute time ``due_ms``, then return it."""
    now = yield ctx.utc_now()
    yield ctx.schedule_timer(max(due_ms - now, 0))
    return due_ms


async def until(probe: Any, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not probe():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def test_the_next_turn_runs_while_a_commit_is_on_its_way() -> None:
    """One slot: the second instance's turn is fetched and committed while the first turn's
    commit has not been answered yet (held back here)."""
    provider = await SqliteProvider.in_memory_async()
    runtime = AsyncRuntime(provider, RuntimeOptions(orchestration_concurrency=1, **QUIET))
    runtime.register_orchestration("At", at)
    release = asyncio.Event()
    acks: list[str] = []
    ack = provider.ack_orchestration_item

    async def held_back(lock_token: str, commit: Any) -> Any:
        acks.append(lock_token)
        if len(acks) == 1:
            await release.wait()
        return await ack(lock_token, commit)

    provider.ack_orchestration_item = held_back  # type: ignore[method-assign]
    await runtime.start()
    try:
        client = AsyncClient(provider)
        for instance in ("a", "b"):
            await client.start_orchestration(instance, "At", 0)
        await until(lambda: len(acks) >= 2, "a second commit while the first is unanswered")
        release.set()
        for instance in ("a", "b"):
            result = await client.wait_for_orchestration(instance, TIMEOUT_MS)
            assert result.status == "Completed"
    finally:
        release.set()
        await runtime.shutdown(2_000)
        await provider.close()


async def test_stored_timers_are_followed_without_a_read_per_timer(tmp_path: Path) -> None:
    path = str(tmp_path / "timers.db")
    first = await SqliteProvider.open_async(path)
    runtime = AsyncRuntime(first, RuntimeOptions(**QUIET))
    runtime.register_orchestration("At", at)
    await runtime.start()
    burst = [now_ms() + 1_200 + 20 * n for n in range(10)]
    for n, due in enumerate(burst):
        await AsyncClient(first).start_orchestration(f"t{n}", "At", due)
    stored: list[int] = []

    async def all_stored() -> bool:
        stored[:] = (await first.next_due_ms()).orchestrator_next
        return len(stored) == len(burst)

    deadline = time.monotonic() + TIMEOUT_S
    while not await all_stored():
        assert time.monotonic() < deadline, "the timers were never stored"
        await asyncio.sleep(0.01)
    await runtime.shutdown(2_000)
    await first.close()

    # A new process: its notifier heard none of the timers; only the store knows them.
    second = await SqliteProvider.open_async(path)
    reads: list[int] = []
    read = second.next_due_ms

    async def counted() -> Any:
        reads.append(now_ms())
        return await read()

    second.next_due_ms = counted  # type: ignore[method-assign]
    runtime = AsyncRuntime(second, RuntimeOptions(**QUIET))
    runtime.register_orchestration("At", at)
    await runtime.start()
    try:
        client = AsyncClient(second)
        for n, due in enumerate(burst):
            result = await client.wait_for_orchestration(f"t{n}", TIMEOUT_MS)
            assert (result.status, result.output) == ("Completed", due)
        # The burst came due after the first read (else this test would prove nothing) ...
        assert reads and reads[0] < burst[len(burst) // 2]
        # ... and was followed from it: one read, plus at most one a second, not one a timer.
        assert len(reads) <= 1 + (burst[-1] - reads[0]) // 1000 + 1, reads
    finally:
        await runtime.shutdown(2_000)
        await second.close()
