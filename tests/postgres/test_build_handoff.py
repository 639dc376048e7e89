"""The hand-off paths keep the build rules: a dispatcher takes (and pins) a new instance in its
own process only while its build is current, and takes an existing one only when it is
pinned to its build. Otherwise the message is simply queued for whoever may take it."""

from __future__ import annotations

from typing import Any

import pytest

from duraflow.providers.postgres import PostgresProvider

from .helpers import activity, create, first_turn, raised, start
from .test_handoff import RecordingTaker
from .test_start_with_turn import FirstTurnTaker, with_claimed_activity

pytestmark = pytest.mark.postgres


def of_build(taker: RecordingTaker, build: str) -> RecordingTaker:
    taker._build = build
    return taker


async def worker_builds(p: PostgresProvider) -> list[str | None]:
    return [r[0] for r in await p._db.fetch(
        "test", f"SELECT build_id FROM {p._db.s}.worker_queue ORDER BY id")]


async def test_a_current_build_starts_and_pins_in_one_statement(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        await p.register_build("v1", True)

        def pinned_turn() -> Any:
            commit = with_claimed_activity()
            commit.build_id = "v1"
            return commit

        taker = of_build(FirstTurnTaker(pinned_turn), "v1")
        p.notifier.orchestrator_taker = taker
        await p.enqueue_orchestrator(start("i"))
        assert len(taker.committed) == 1
        p.notifier.orchestrator_taker = None
        assert (await p.get_instance_info("i")).build_id == "v1"
        assert await worker_builds(p) == ["v1"]
        await p.enqueue_orchestrator(raised("i"))
        assert await p.fetch_orchestration_item(30_000, None, None, "v2") is None
    finally:
        await p.close()


async def test_a_draining_build_queues_new_starts_instead_of_taking_them(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        await p.register_build("v1", True)
        await p.register_build("v2", True)
        first = FirstTurnTaker(lambda: first_turn(status="Running", build_id="v1"))
        for taker in (of_build(first, "v1"), of_build(RecordingTaker(), "v1")):
            p.notifier.orchestrator_taker = taker
            await p.enqueue_orchestrator(start(f"new-{type(taker).__name__}"))
            assert taker.delivered == [] and taker.free == 1
            assert getattr(taker, "committed", []) == []
        p.notifier.orchestrator_taker = None
        assert await p.fetch_orchestration_item(30_000, None, None, "v1") is None
        taken = {(await p.fetch_orchestration_item(30_000, None, None, "v2")).instance_id  # type: ignore[union-attr]
                 for _ in range(2)}
        assert taken == {"new-FirstTurnTaker", "new-RecordingTaker"}
    finally:
        await p.close()


async def test_events_are_taken_only_for_instances_of_the_takers_build(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        await p.register_build("v1", True)
        await create(p, "mine", build_id="v1", worker_items=[activity("mine", 2)])
        await p.register_build("v2", True)  # v1 drains: its own instances stay its own
        taker = of_build(RecordingTaker(), "v1")
        p.notifier.orchestrator_taker = taker
        await p.enqueue_orchestrator(raised("mine"))
        assert [i.instance_id for i in taker.delivered] == ["mine"]
        await p.abandon_orchestration_item(taker.delivered[0].lock_token, None, True)
        await p.move_instance("mine", "v2")
        taker.free, taker.delivered = 1, []
        await p.enqueue_orchestrator(raised("mine"))
        assert taker.delivered == [] and taker.free == 1  # queued for v2
        assert await worker_builds(p) == ["v2"]
    finally:
        await p.close()
