"""Schedules cost an idle runtime nothing per schedule: its transactions while idle are the
same with 0 and with 1,000 far-future schedules (no per-schedule polling; ticks ride the
timers' one next-due read and the existing wake-ups).

Counted in process, per provider operation (each ``Database.run`` is one transaction), so
the test needs neither a database of its own nor PostgreSQL's lazily flushed
``pg_stat_database`` counters. A short idle poll makes the idle loop turn often enough to
compare in a few seconds.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from duraflow import AsyncClient, AsyncRuntime, RuntimeOptions

from .helpers import count_round_trips

pytestmark = pytest.mark.postgres

IDLE_S = 3.0


async def test_an_idle_runtime_costs_the_same_with_a_thousand_schedules(
    postgres_provider_factory: Any,
) -> None:
    provider = await postgres_provider_factory()
    runtime = AsyncRuntime(provider, RuntimeOptions(idle_poll_interval_ms=300))

    def job(ctx: Any, _: Any) -> Any:
        return None
        yield

    runtime.register_orchestration("Job", job)
    calls = count_round_trips(provider)
    try:
        await runtime.start()
        await asyncio.sleep(1.0)  # the start-up reads are over
        calls.clear()
        await asyncio.sleep(IDLE_S)
        without = Counter(calls)

        client = AsyncClient(provider)
        for n in range(1_000):
            await client.create_schedule(f"yearly-{n}", "Job", cron="@yearly",
                                         timezone="Pacific/Kiritimati")
        await asyncio.sleep(1.0)  # the creations' own wake-ups are over
        calls.clear()
        await asyncio.sleep(IDLE_S)
        with_schedules = Counter(calls)
    finally:
        await runtime.shutdown()
        await provider.close()

    assert "fire_due_schedules" not in with_schedules
    # Timers and schedules share one next-due read, taken at most once a second.
    assert with_schedules["next_due_ms"] <= IDLE_S + 1
    assert set(with_schedules) <= set(without) | {"heartbeat_worker"}, with_schedules
    total_without = sum(without.values())
    assert total_without > 0
    # Same idle loop either way (timing jitter: one turn of it more or less).
    assert abs(sum(with_schedules.values()) - total_without) <= 3, (without, with_schedules)
