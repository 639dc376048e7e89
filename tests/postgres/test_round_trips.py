"""One orchestration turn is two round trips (fetch, ack); one activity is two more."""

from __future__ import annotations

from typing import Any

import pytest

from duraflow.core import events as ev
from duraflow.core import workitems as wi
from duraflow.core.events import HistoryEvent
from duraflow.providers.items import OutboundMessage, TurnCommit

from .helpers import activity, count_round_trips, create, raised

pytestmark = pytest.mark.postgres


async def test_turn_and_activity_cost_two_round_trips_each(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        await create(p, "i")
        await p.enqueue_orchestrator(raised("i"))
        calls = count_round_trips(p)

        item = await p.fetch_orchestration_item(30_000, {"i": (1, 1)})
        assert item is not None and item.history is None  # cache hit: no history shipped
        commit = TurnCommit(
            execution_id=1,
            history_delta=[
                HistoryEvent(2, ev.EXTERNAL_EVENT, {"name": "evt", "data": "1"}),
                HistoryEvent(3, ev.ACTIVITY_SCHEDULED, {"name": "Act", "input": "null"}),
                HistoryEvent(4, ev.TIMER_CREATED, {"fire_at_ms": 1}),
            ],
            worker_items=[activity("i", 3)],
            orchestrator_items=[OutboundMessage("i", wi.timer_fired("i", 1, 4, 1), 1)],
            custom_status_set=True,
            custom_status="busy",
        )
        await p.ack_orchestration_item(item.lock_token, commit)
        assert calls == ["fetch_orchestration_item", "ack_orchestration_item"]

        calls.clear()
        lease = await p.fetch_work_item(30_000)
        assert lease is not None
        done = wi.activity_completed("i", 1, 3, '"ok"')
        await p.ack_work_item(lease.lock_token, OutboundMessage("i", done))
        assert calls == ["fetch_work_item", "ack_work_item"]

        calls.clear()
        item = await p.fetch_orchestration_item(30_000)  # no cache: history in the same trip
        assert item is not None and item.history is not None and len(item.history) == 4
        assert calls == ["fetch_orchestration_item"]
    finally:
        await p.close()


async def test_cache_loads_history_only_when_stale(postgres_provider_factory: Any) -> None:
    p = await postgres_provider_factory()
    try:
        await create(p, "i")
        big = {f"other-{n}": (1, 1) for n in range(5_000)}  # never shipped to the database
        await p.enqueue_orchestrator(raised("i"))
        calls = count_round_trips(p)
        item = await p.fetch_orchestration_item(30_000, {**big, "i": (1, 1)})
        assert item is not None and item.history is None
        assert calls == ["fetch_orchestration_item"]
        await p.abandon_orchestration_item(item.lock_token)

        calls.clear()
        item = await p.fetch_orchestration_item(30_000, {**big, "i": (1, 0)})  # stale entry
        assert item is not None and item.history is not None and len(item.history) == 1
        assert calls == ["fetch_orchestration_item", "read_history"]
    finally:
        await p.close()
