"""A schedule fired by real worker processes: exactly once per tick, on time, and caught up.

Two worker processes share one store (PostgreSQL, or a SQLite file) and a schedule ticking
every second. For ten seconds each tick must start exactly one instance, named
``<schedule>-<tick in UTC>``, no tick skipped, the start late by at most a second at the 95th
percentile, whichever process fires it. Then every worker stops for five seconds and one
comes back: the ticks of the outage inside the catch-up window (two seconds) fire late, the
older ones are counted missed, and every tick is one or the other.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable

import pytest

from duraflow import AsyncClient, ScheduleRun
from duraflow.providers.protocol import Provider
from duraflow.schedules.planner import run_instance_id
from tests.cluster.processes import spawn_runner, stop

pytestmark = [pytest.mark.slow]

WINDOW_MS = 2_000
RUN_S = 10
DOWN_S = 5


class Runs:
    """Every run the schedule reports (describe keeps the newest ten: read it often)."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.seen: dict[str, ScheduleRun] = {}

    async def poll(self) -> None:
        for run in (await self.client.describe_schedule("tick")).last_runs:
            self.seen[run.instance_id] = run

    async def watch(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self.poll()
            await asyncio.sleep(0.25)

    async def until(self, what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 20
        while not done():
            assert time.monotonic() < deadline, what
            await self.poll()
            await asyncio.sleep(0.1)


async def test_two_workers_fire_each_tick_once_then_catch_up_after_an_outage(
    shared_store: tuple[Provider, str, str],
) -> None:
    provider, url, schema = shared_store
    client = AsyncClient(provider)
    workers: list[subprocess.Popen[str]] = []
    try:
        workers = [spawn_runner(url, schema, {}) for _ in range(2)]
        await client.create_schedule("tick", "Pipeline", 0, cron="@every 1s",
                                     catchup_window_ms=WINDOW_MS)
        runs = Runs(client)
        await runs.watch(RUN_S)

        seen = sorted(runs.seen.values(), key=lambda r: r.scheduled_at_ms)
        ticks = [r.scheduled_at_ms for r in seen]
        assert len(ticks) >= RUN_S - 2, ticks
        assert ticks == list(range(ticks[0], ticks[-1] + 1, 1_000)), "a tick was skipped"
        assert all(r.instance_id == run_instance_id("tick", r.scheduled_at_ms) for r in seen)
        lateness = sorted(r.started_at_ms - r.scheduled_at_ms for r in seen)
        assert lateness[int(len(lateness) * 0.95) - 1] <= 1_000, lateness
        for run in seen:  # each started exactly once, and ran
            result = await client.wait_for_orchestration(run.instance_id, 30_000)
            assert result.status == "Completed", (run.instance_id, result.error)
            history = await provider.read_history(run.instance_id)
            assert [e.kind for e in history].count("OrchestrationStarted") == 1

        for proc in workers:
            stop(proc)
        await runs.poll()
        last = max(r.scheduled_at_ms for r in runs.seen.values())
        await asyncio.sleep(DOWN_S)  # the outage itself, not a wait for something
        back = int(time.time() * 1000)
        workers.append(spawn_runner(url, schema, {}))
        await runs.until("a tick after the restart", lambda: any(
            r.scheduled_at_ms > back for r in runs.seen.values()))

        # One reading: every tick before the next one it will handle has started (a run in
        # last_runs or seen before) or is counted missed; the ticks keep coming meanwhile.
        info = await client.describe_schedule("tick")
        runs.seen.update((r.instance_id, r) for r in info.last_runs)
        first = min(r.scheduled_at_ms for r in runs.seen.values())
        handled_until = info.next_run_times_ms[0]
        started = {r.scheduled_at_ms for r in runs.seen.values()}
        missing = [t for t in range(first, handled_until, 1_000) if t not in started]
        assert len(missing) == info.missed, (missing, info.missed)  # missed, or started
        assert len([t for t in missing if t > last]) >= 2  # older than the window
        caught_up = [r for r in runs.seen.values() if last < r.scheduled_at_ms < back]
        assert caught_up, "no tick of the outage inside the catch-up window fired"
        assert all(r.started_at_ms - r.scheduled_at_ms > 1_000 for r in caught_up)
        for run in runs.seen.values():
            assert (await client.get_status(run.instance_id)).status != "NotFound"
    finally:
        for proc in workers:
            if proc.poll() is None:
                stop(proc)
