"""A start made in a process whose dispatcher has a free slot stores the new instance together
with its first turn in one statement, but only when that turn is exactly what a dispatcher
would run; otherwise nothing changes from the plain hand-off."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from duraflow import AsyncClient, AsyncRuntime, RuntimeOptions
from duraflow.core import events as ev
from duraflow.core import workitems as wi
from duraflow.core.events import HistoryEvent
from duraflow.providers.items import PreparedTurn, TurnCommit, TurnResult
from duraflow.providers.postgres import PostgresProvider
from duraflow.runtime import fast_path

from .helpers import activity, count_round_trips, create, first_turn, peer, raised, start
from .test_handoff import RecordingTaker

pytestmark = pytest.mark.postgres


class FirstTurnTaker(RecordingTaker):
    """A taker that prepares ``make()``'s commit as every new instance's first turn."""

    def __init__(self, make: Any = first_turn) -> None:
        super().__init__()
        self.make = make
        self.committed: list[tuple[PreparedTurn, TurnResult]] = []
        self.dropped: list[PreparedTurn] = []

    async def prepare_first_turn(self, instance_id: str, start: wi.WorkItem) -> PreparedTurn:
        commit = self.make()
        for worker in commit.worker_items:
            worker.instance_id = instance_id
        return PreparedTurn(str(uuid.uuid4()), commit)

    def first_turn_committed(self, prepared: PreparedTurn, result: TurnResult) -> None:
        self.committed.append((prepared, result))
        self.free += 1  # the turn is done: its slot is free again

    def first_turn_dropped(self, prepared: PreparedTurn) -> None:
        self.dropped.append(prepared)


def with_claimed_activity() -> TurnCommit:
    commit = first_turn(status="Running", claim_lock_ms=30_000, hold_ms=5_000)
    commit.history_delta.append(HistoryEvent(2, ev.ACTIVITY_SCHEDULED, {"name": "Act"}))
    worker = activity("i", 2)
    worker.claim = True
    commit.worker_items = [worker]
    return commit


async def history_kinds(p: PostgresProvider, instance: str) -> list[str]:
    return [e.kind for e in await p.read_history(instance, 1)]


async def test_new_instance_and_first_turn_in_one_statement(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        taker = FirstTurnTaker(lambda: first_turn(status="Running"))
        p.notifier.orchestrator_taker = taker
        calls = count_round_trips(p)
        await p.enqueue_orchestrator(start("i"))
        assert calls == ["enqueue_orchestrator"]
        assert len(taker.committed) == 1 and taker.dropped == [] and taker.delivered == []
        assert taker.free == 1
        p.notifier.orchestrator_taker = None
        assert await history_kinds(p, "i") == [ev.ORCHESTRATION_STARTED]
        assert (await p.get_instance_info("i")).status == "Running"
        # The start message was consumed by the turn, and the lock released (no hold asked).
        assert await p.fetch_orchestration_item(30_000) is None
        await p.enqueue_orchestrator(raised("i"))
        item = await p.fetch_orchestration_item(30_000)
        assert item is not None and item.orchestration_name == "Orch"
        assert [m["type"] for m in item.messages] == [wi.EXTERNAL_RAISED]
    finally:
        await p.close()


async def test_claimed_activity_and_hold_come_back_with_the_start(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        taker = FirstTurnTaker(with_claimed_activity)
        p.notifier.orchestrator_taker = taker
        await p.enqueue_orchestrator(start("i"))
        [(prepared, result)] = taker.committed
        assert result.held
        [lease] = result.claimed
        assert (lease.instance_id, lease.activity_id, lease.attempt_count) == ("i", 2, 1)
        p.notifier.orchestrator_taker = None
        # Both the activity and the instance stay with this process.
        assert await p.fetch_work_item(30_000) is None
        await p.enqueue_orchestrator(raised("i"))
        assert await p.fetch_orchestration_item(30_000) is None
        # The claimed activity's result continues the held instance under its token.
        done = TurnCommit(execution_id=1, history_delta=[
            HistoryEvent(3, ev.ACTIVITY_COMPLETED, {"source_event_id": 2, "result": "1"})])
        done.completed_work = [lease.lock_token]
        await p.ack_orchestration_item(prepared.lock_token, done)
        assert await history_kinds(p, "i") == [
            ev.ORCHESTRATION_STARTED, ev.ACTIVITY_SCHEDULED, ev.ACTIVITY_COMPLETED]
    finally:
        await p.close()


async def test_existing_instance_gets_the_plain_hand_off(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        await create(p, "i")
        taker = FirstTurnTaker()
        p.notifier.orchestrator_taker = taker
        await p.enqueue_orchestrator(start("i"))
        assert taker.committed == [] and len(taker.dropped) == 1
        [item] = taker.delivered  # the duplicate start, locked for the usual turn
        assert item.orchestration_name == "Orch"
        assert [m["type"] for m in item.messages] == [wi.START_ORCHESTRATION]
        assert await history_kinds(p, "i") == [ev.ORCHESTRATION_STARTED]  # untouched
    finally:
        await p.close()


async def test_a_message_waiting_for_the_instance_is_not_skipped(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        await p.enqueue_orchestrator(raised("i"))  # before the start, with nobody taking it
        taker = FirstTurnTaker()
        p.notifier.orchestrator_taker = taker
        await p.enqueue_orchestrator(start("i"))
        assert taker.committed == [] and len(taker.dropped) == 1
        [item] = taker.delivered
        assert item.orchestration_name is None  # still new: the usual first turn decides
        assert [m["type"] for m in item.messages] == [
            wi.EXTERNAL_RAISED, wi.START_ORCHESTRATION]
    finally:
        await p.close()


async def test_instance_locked_elsewhere_queues_the_start(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        async with peer(p) as other:
            await other.enqueue_orchestrator(raised("i"))
            held = await other.fetch_orchestration_item(30_000)  # another pod holds "i"
            assert held is not None
            taker = FirstTurnTaker()
            p.notifier.orchestrator_taker = taker
            await p.enqueue_orchestrator(start("i"))
            assert taker.committed == [] and taker.delivered == []
            assert len(taker.dropped) == 1 and taker.free == 1  # slot given back
            p.notifier.orchestrator_taker = None
            await other.abandon_orchestration_item(held.lock_token, None, True)
        item = await p.fetch_orchestration_item(30_000)
        assert item is not None  # nothing lost: both messages wait for the next turn
        assert [m["type"] for m in item.messages] == [
            wi.EXTERNAL_RAISED, wi.START_ORCHESTRATION]
    finally:
        await p.close()


async def test_a_rejected_first_turn_does_not_cost_the_start(
    postgres_provider_factory: Any,
) -> None:
    def duplicate_event_ids() -> TurnCommit:
        commit = first_turn(status="Running")
        commit.history_delta.append(HistoryEvent(1, ev.ACTIVITY_SCHEDULED, {"name": "Act"}))
        return commit

    p = await postgres_provider_factory()
    try:
        taker = FirstTurnTaker(duplicate_event_ids)
        p.notifier.orchestrator_taker = taker
        await p.enqueue_orchestrator(start("i"))
        assert taker.committed == [] and len(taker.dropped) == 1
        [item] = taker.delivered  # queued and handed over the usual way instead
        assert [m["type"] for m in item.messages] == [wi.START_ORCHESTRATION]
        assert await p.read_history("i", 1) == []  # the rejected turn left nothing
    finally:
        await p.close()


async def test_runtime_start_stores_the_first_turn_and_the_wait_reads_nothing(
    postgres_provider_factory: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """End to end: the start call returns with the instance and its claimed activity
    stored (one statement); a wait on the instance this runtime holds does not read its
    status first, and gets the finished status from the finishing commit."""
    monkeypatch.setattr(fast_path, "HOLD_MS", 30_000)  # held however slow the machine
    p = await postgres_provider_factory()
    runtime = AsyncRuntime(p, RuntimeOptions())
    release = asyncio.Event()
    running = asyncio.Event()

    async def gate(ctx: Any, x: Any) -> Any:
        running.set()
        await release.wait()
        return x

    def hello(ctx: Any, x: Any) -> Any:
        return (yield ctx.schedule_activity("Gate", x))

    runtime.register_activity("Gate", gate)
    runtime.register_orchestration("Hello", hello)
    await runtime.start()
    try:
        client = AsyncClient(p)
        calls = count_round_trips(p)
        await client.start_orchestration("h", "Hello", 5)
        assert calls == ["enqueue_orchestrator"]
        assert await history_kinds(p, "h") == [ev.ORCHESTRATION_STARTED, ev.ACTIVITY_SCHEDULED]
        await asyncio.wait_for(running.wait(), 10)  # claimed: no worker fetch needed
        assert p.notifier.held_here("h")
        calls.clear()
        waiting = asyncio.create_task(client.wait_for_orchestration("h", 10_000))
        await asyncio.sleep(0)  # the wait registers while the activity still runs
        release.set()
        result = await waiting
        assert (result.status, result.output) == ("Completed", 5)
        # The continuation committed; nobody read the status (a heartbeat may have run).
        assert "ack_orchestration_item" in calls and "get_instance_status" not in calls
        assert not p.notifier.held_here("h")
        assert runtime.metrics_snapshot().orch_starts == 1  # type: ignore[union-attr]
    finally:
        release.set()
        await runtime.shutdown(2_000)
        await p.close()


async def test_unregistered_orchestration_starts_the_usual_way(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    runtime = AsyncRuntime(p, RuntimeOptions())
    await runtime.start()
    try:
        await AsyncClient(p).start_orchestration("u", "Nobody", None)
        # Queued for whichever runtime knows it (this one backs off and retries).
        assert await history_kinds(p, "u") == []
        assert runtime.metrics_snapshot().orch_starts == 0  # type: ignore[union-attr]
    finally:
        await runtime.shutdown(2_000)
        await p.close()
