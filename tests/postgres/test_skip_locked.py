"""Many dispatchers in many processes: no instance or activity is ever taken twice, and a
lost race never makes a fetcher report "no work" while work is there."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from duraflow.providers.items import TurnCommit

from .helpers import activity, create, peer, raised, start

pytestmark = pytest.mark.postgres


async def test_concurrent_fetchers_across_two_providers_each_get_a_distinct_instance(
    postgres_provider_factory: Any,
) -> None:
    a = await postgres_provider_factory(pool_max=10)
    try:
        async with peer(a) as b:
            for n in range(20):
                await a.enqueue_orchestrator(start(f"i{n}"))
            items = await asyncio.gather(*(p.fetch_orchestration_item(30_000) for p in [a, b] * 10))
            assert all(item is not None for item in items), "a lost race returned no work"
            ids = [item.instance_id for item in items if item is not None]
            assert sorted(ids) == sorted(f"i{n}" for n in range(20))
    finally:
        await a.close()


async def test_fetch_loops_never_double_lock(postgres_provider_factory: Any) -> None:
    a = await postgres_provider_factory(pool_max=8)
    try:
        async with peer(a) as b:
            for n in range(60):
                await a.enqueue_orchestrator(raised(f"i{n % 30}"))
            taken: Counter[str] = Counter()
            live: set[str] = set()

            async def dispatcher(p: Any) -> None:
                while True:
                    item = await p.fetch_orchestration_item(30_000)
                    if item is None:
                        return
                    assert item.instance_id not in live, "instance locked twice"
                    live.add(item.instance_id)
                    taken[item.instance_id] += len(item.messages)
                    await asyncio.sleep(0.005)
                    live.discard(item.instance_id)
                    await p.ack_orchestration_item(item.lock_token, TurnCommit(execution_id=1))

            await asyncio.gather(*(dispatcher(p) for p in [a, b] * 8))
            assert sum(taken.values()) == 60
            assert set(taken) == {f"i{n}" for n in range(30)}
            assert await a.fetch_orchestration_item(1000) is None
    finally:
        await a.close()


async def test_one_busy_instance_is_locked_by_exactly_one_fetcher(
    postgres_provider_factory: Any,
) -> None:
    a = await postgres_provider_factory()
    try:
        async with peer(a) as b:
            for _ in range(50):
                await a.enqueue_orchestrator(raised("hot"))
            items = await asyncio.gather(*(p.fetch_orchestration_item(30_000) for p in [a, b] * 5))
            got = [item for item in items if item is not None]
            assert len(got) == 1 and len(got[0].messages) == 50
    finally:
        await a.close()


async def test_concurrent_workers_take_distinct_activities(postgres_provider_factory: Any) -> None:
    a = await postgres_provider_factory(pool_max=10)
    try:
        await create(a, "i", worker_items=[activity("i", n) for n in range(2, 32)])
        async with peer(a) as b:
            leases = await asyncio.gather(*(p.fetch_work_item(30_000) for p in [a, b] * 10))
            assert all(lease is not None for lease in leases)
            ids = [lease.activity_id for lease in leases if lease is not None]
            assert len(set(ids)) == 20
            rest = await asyncio.gather(*(p.fetch_work_item(30_000) for p in [a, b] * 10))
            more = [lease.activity_id for lease in rest if lease is not None]
            assert len(more) == 10 and set(more).isdisjoint(ids)
            assert set(ids) | set(more) == set(range(2, 32))
    finally:
        await a.close()


async def test_expiring_locks_under_contention_never_deadlock_or_duplicate(
    postgres_provider_factory: Any,
) -> None:
    """Locks expire mid-turn and are taken over while the old holder acks: the loser gets
    ``LockLostError``, nobody deadlocks, and history stays dense and duplicate-free."""
    import random

    from duraflow.core import events as ev
    from duraflow.core.events import HistoryEvent
    from duraflow.providers.errors import LockLostError, ProviderError

    a = await postgres_provider_factory(pool_max=10)
    try:
        for n in range(5):
            await create(a, f"i{n}")
        async with peer(a) as b:
            stop = asyncio.Event()
            failures: list[BaseException] = []
            acked = Counter[str]()

            async def producer(p: Any) -> None:
                for k in range(60):
                    await p.enqueue_orchestrator(raised(f"i{k % 5}"))
                    await asyncio.sleep(0.002)

            async def dispatcher(p: Any) -> None:
                while not stop.is_set():
                    item = await p.fetch_orchestration_item(40)
                    if item is None:
                        await asyncio.sleep(0.005)
                        continue
                    await asyncio.sleep(random.uniform(0, 0.06))  # sometimes past the lease
                    event = HistoryEvent(item.history_len + 1, ev.EXTERNAL_EVENT, {"n": 1})
                    try:
                        await p.ack_orchestration_item(
                            item.lock_token, TurnCommit(execution_id=1, history_delta=[event])
                        )
                        acked[item.instance_id] += 1
                    except LockLostError:
                        pass
                    except ProviderError as exc:  # duplicate event id would land here
                        failures.append(exc)

            tasks = [asyncio.create_task(dispatcher(p)) for p in [a, b] * 4]
            await asyncio.gather(producer(a), producer(b))
            for _ in range(300):
                depth = await a.get_queue_depths()
                if depth.orchestrator_queue == 0 and await a.fetch_orchestration_item(1) is None:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*tasks)
            assert failures == []
            for n in range(5):
                history = await a.read_history(f"i{n}")
                assert [e.event_id for e in history] == list(range(1, len(history) + 1))
                assert len(history) == 1 + acked[f"i{n}"]
    finally:
        await a.close()


async def test_many_workers_claiming_many_sessions_never_deadlock_or_share_one(
    postgres_provider_factory: Any,
) -> None:
    """Twelve owners on two connection pools race through 120 activities of 10 sessions,
    acking as they go: every activity is taken once, no error (no deadlock), and every session
    has exactly one owner (leases are long)."""
    from duraflow.core import workitems as wi
    from duraflow.providers.items import OutboundMessage, SessionClaim, WorkerItem

    a = await postgres_provider_factory(pool_max=12)
    try:
        items = []
        for n in range(2, 122):
            session = f"s{n % 10}"
            item = wi.activity_execute("i", 1, n, "Act", "null", "Orch", "1.0.0", session, None)
            items.append(WorkerItem("i", 1, n, item, session))
        await create(a, "i", worker_items=items)
        async with peer(a) as b:
            taken: list[tuple[int, str | None, str | None]] = []

            async def worker(provider: Any, owner: str) -> None:
                claim = SessionClaim((owner,), 60_000)
                while (lease := await provider.fetch_work_item(60_000, session=claim)) is not None:
                    taken.append((lease.activity_id, lease.session_id, lease.session_owner))
                    done = wi.activity_completed("i", 1, lease.activity_id, "1")
                    await provider.ack_work_item(lease.lock_token, OutboundMessage("i", done))

            await asyncio.gather(*(worker(p, f"w{n}") for n, p in enumerate([a, b] * 6)))
        assert sorted(n for n, _, _ in taken) == list(range(2, 122))
        owners: dict[str | None, set[str | None]] = {}
        for _, session, owner in taken:
            owners.setdefault(session, set()).add(owner)
        assert len(owners) == 10 and all(len(o) == 1 for o in owners.values()), owners
    finally:
        await a.close()
