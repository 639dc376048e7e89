"""Start hand-off: a message enqueued in a process whose dispatcher has a free slot is locked
for that dispatcher in the enqueue's own transaction (no fetch), and only then."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest

from duraflow import AsyncClient, AsyncRuntime, RuntimeOptions
from duraflow.core import workitems as wi
from duraflow.core.version import pack
from duraflow.providers.items import OrchestrationItem, OutboundMessage

from .helpers import activity, count_round_trips, create, first_turn, raised, start

pytestmark = pytest.mark.postgres


class RecordingTaker:
    """An ``OrchestratorTaker`` that keeps what it is handed."""

    def __init__(self, slots: int = 1, replay_range: tuple[int, int] = (0, 10**9),
                 cached: Mapping[str, tuple[int, int]] | None = None,
                 build_id: str | None = None) -> None:
        self.free = slots
        self.delivered: list[OrchestrationItem] = []
        self._range = replay_range
        self._cached = cached or {}
        self._build = build_id

    @property
    def lock_timeout_ms(self) -> int:
        return 30_000

    @property
    def replay_range(self) -> tuple[int, int]:
        return self._range

    @property
    def build_id(self) -> str | None:
        return self._build

    @property
    def cached(self) -> Mapping[str, tuple[int, int]]:
        return self._cached

    async def try_reserve(self) -> bool:
        if self.free == 0:
            return False
        self.free -= 1
        return True

    def unreserve(self) -> None:
        self.free += 1

    def deliver(self, item: OrchestrationItem) -> None:
        self.delivered.append(item)

    async def prepare_first_turn(self, instance_id: str, start: wi.WorkItem) -> Any:
        return None  # never runs turns itself: every start takes the plain hand-off

    def first_turn_committed(self, prepared: Any, result: Any) -> None:
        raise AssertionError("no first turn was prepared")

    def first_turn_dropped(self, prepared: Any) -> None:
        raise AssertionError("no first turn was prepared")


async def test_start_is_handed_over_locked_in_one_round_trip(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        taker = RecordingTaker()
        p.notifier.orchestrator_taker = taker
        calls = count_round_trips(p)
        await p.enqueue_orchestrator(start("i"))
        assert calls == ["enqueue_orchestrator"]
        [item] = taker.delivered
        assert (item.instance_id, item.orchestration_name, item.history) == ("i", None, [])
        assert [m["type"] for m in item.messages] == ["StartOrchestration"]
        assert taker.free == 0  # the slot stays taken by the delivered turn
        # The instance is locked: nobody else can fetch it meanwhile.
        assert await p.fetch_orchestration_item(30_000) is None
        await p.abandon_orchestration_item(item.lock_token, None, True)
        again = await p.fetch_orchestration_item(30_000)
        assert again is not None and again.instance_id == "i"
    finally:
        await p.close()


async def test_instance_locked_elsewhere_is_queued_not_taken(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        await create(p, "i")
        await p.enqueue_orchestrator(raised("i"))
        held = await p.fetch_orchestration_item(30_000)
        assert held is not None
        taker = RecordingTaker()
        p.notifier.orchestrator_taker = taker
        await p.enqueue_orchestrator(raised("i"))
        assert taker.delivered == [] and taker.free == 1  # slot given back
        p.notifier.orchestrator_taker = None
        await p.abandon_orchestration_item(held.lock_token, None, True)
        item = await p.fetch_orchestration_item(30_000)
        assert item is not None and len(item.messages) == 2  # nothing lost
    finally:
        await p.close()


async def test_no_free_slot_or_delayed_message_takes_the_queue(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        taker = RecordingTaker(slots=0)
        p.notifier.orchestrator_taker = taker
        await p.enqueue_orchestrator(start("a"))
        taker.free = 1
        await p.enqueue_orchestrator(raised("b", visible_at_ms=1))  # a due time: queued
        assert taker.delivered == [] and taker.free == 1
        p.notifier.orchestrator_taker = None
        fetched = {(await p.fetch_orchestration_item(30_000)).instance_id,  # type: ignore[union-attr]
                   (await p.fetch_orchestration_item(30_000)).instance_id}  # type: ignore[union-attr]
        assert fetched == {"a", "b"}
    finally:
        await p.close()


async def test_instance_pinned_outside_the_replay_range_is_not_taken(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        await p.enqueue_orchestrator(start("i"))
        item = await p.fetch_orchestration_item(30_000)
        assert item is not None
        commit = first_turn()
        # The first event pins the engine version that wrote it.
        commit.history_delta = [dataclasses.replace(commit.history_delta[0],
                                                    engine_version="0.1.0")]
        await p.ack_orchestration_item(item.lock_token, commit)
        taker = RecordingTaker(replay_range=(0, pack("0.0.9")))
        p.notifier.orchestrator_taker = taker
        await p.enqueue_orchestrator(raised("i"))
        assert taker.delivered == [] and taker.free == 1
        taker.free, taker._range = 1, (0, pack("0.1.0"))
        await p.enqueue_orchestrator(raised("i"))  # now inside the range: taken
        assert [d.instance_id for d in taker.delivered] == ["i"]
    finally:
        await p.close()


async def test_runtime_runs_handed_over_starts_without_fetching_or_rereading(
    postgres_provider_factory: Any,
) -> None:
    """End to end: starts made next to an idle runtime complete, each taken by hand-off."""
    p = await postgres_provider_factory()
    runtime = AsyncRuntime(p, RuntimeOptions())
    runtime.register_activity("Echo", lambda ctx, x: x)

    def hello(ctx: Any, x: Any) -> Any:
        return (yield ctx.schedule_activity("Echo", x))

    runtime.register_orchestration("Hello", hello)
    await runtime.start()
    try:
        client = AsyncClient(p)
        calls = count_round_trips(p)
        for n in range(6):
            if n == 1:  # the runtime's first fetch (at start) is behind us
                calls.clear()
            await client.start_orchestration(f"h{n}", "Hello", n)
            result = await client.wait_for_orchestration(f"h{n}", 10_000)
            assert (result.status, result.output) == ("Completed", n)
        assert "fetch_orchestration_item" not in calls
        assert calls.count("enqueue_orchestrator") == 5
        # A wait reads the status at most once, before the turns ran (not at all when it
        # begins while this runtime holds the instance); the finishing commit itself told
        # the waiter how it left the instance (status_after_commit).
        assert calls.count("get_instance_status") <= 5
    finally:
        await runtime.shutdown(2_000)
        await p.close()


async def test_waiter_gets_failure_and_custom_status_from_the_finishing_commit(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    runtime = AsyncRuntime(p, RuntimeOptions())

    def doomed(ctx: Any, x: Any) -> Any:
        ctx.set_custom_status("about to fail")
        yield ctx.schedule_timer(1)
        raise ValueError(f"bad input {x}")

    runtime.register_orchestration("Doomed", doomed)
    await runtime.start()
    try:
        client = AsyncClient(p)
        await client.start_orchestration("d", "Doomed", 7)
        result = await client.wait_for_orchestration("d", 10_000)
        read = await client.get_status("d")  # what a fresh read says
        assert result.status == "Failed" and "bad input 7" in (result.error or "")
        assert (result.status, result.error, result.custom_status,
                result.custom_status_version) == (read.status, read.error, read.custom_status,
                                                  read.custom_status_version)
        assert result.custom_status == "about to fail"
    finally:
        await runtime.shutdown(2_000)
        await p.close()


def _done(activity_id: int) -> OutboundMessage:
    return OutboundMessage("i", wi.activity_completed("i", 1, activity_id, '"ok"'))


async def test_activity_result_hands_its_instance_over(postgres_provider_factory: Any) -> None:
    """The ack of a queued activity locks its instance for this process's dispatcher."""
    p = await postgres_provider_factory()
    try:
        await create(p, "i", worker_items=[activity("i", 2), activity("i", 3)])
        first = await p.fetch_work_item(30_000)
        assert first is not None
        taker = RecordingTaker(cached={"i": (1, 1)})  # its live replay is current
        p.notifier.orchestrator_taker = taker
        calls = count_round_trips(p)
        second = await p.ack_and_fetch_work_item(first.lock_token, _done(first.activity_id),
                                                 30_000)
        assert calls == ["ack_work_item"]  # ack, take and next fetch: one round trip
        [item] = taker.delivered
        assert [m["type"] for m in item.messages] == ["ActivityCompleted"]
        assert item.orchestration_name == "Orch" and item.history is None  # cache decides
        assert second is not None and {first.activity_id, second.activity_id} == {2, 3}
        assert await p.fetch_orchestration_item(30_000) is None  # locked for the taker
        # A slot is free but the instance is still locked: queued, not taken.
        taker.free = 1
        await p.ack_work_item(second.lock_token, _done(second.activity_id))
        assert len(taker.delivered) == 1 and taker.free == 1
        await p.abandon_orchestration_item(item.lock_token, None, True)
        p.notifier.orchestrator_taker = None
        again = await p.fetch_orchestration_item(30_000)
        assert again is not None and len(again.messages) == 2  # nothing lost
    finally:
        await p.close()


async def test_activity_result_without_a_free_slot_is_queued(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        await create(p, "i", worker_items=[activity("i", 2)])
        lease = await p.fetch_work_item(30_000)
        assert lease is not None
        taker = RecordingTaker(slots=0)
        p.notifier.orchestrator_taker = taker
        await p.ack_work_item(lease.lock_token, _done(2))
        assert taker.delivered == []
        p.notifier.orchestrator_taker = None
        item = await p.fetch_orchestration_item(30_000)
        assert item is not None and [m["type"] for m in item.messages] == ["ActivityCompleted"]
    finally:
        await p.close()
