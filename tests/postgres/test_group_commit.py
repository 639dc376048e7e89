"""Group commit: turns committed at the same time share a transaction, each with its own
outcome; a lone turn goes at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from duraflow.core import events as ev
from duraflow.core.events import HistoryEvent
from duraflow.providers.errors import LockLostError
from duraflow.providers.items import TurnCommit

from .helpers import create, raised

pytestmark = pytest.mark.postgres


def _turn(event_id: int) -> TurnCommit:
    event = HistoryEvent(event_id, ev.EXTERNAL_EVENT, {"name": "evt", "data": "1"})
    return TurnCommit(execution_id=1, history_delta=[event], custom_status_set=True,
                      custom_status=f"turn {event_id}")


async def _locked(p: Any, count: int) -> list[Any]:
    for n in range(count):
        await create(p, f"i{n}")
    for n in range(count):
        await p.enqueue_orchestrator(raised(f"i{n}"))
    items = await p.fetch_orchestration_items(30_000, None, count)
    assert sorted(item.instance_id for item in items) == sorted(f"i{n}" for n in range(count))
    return list(items)


async def test_concurrent_turns_share_transactions_and_all_commit(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        items = await _locked(p, 12)
        results = await asyncio.gather(
            *(p.ack_orchestration_item(item.lock_token, _turn(2)) for item in items))
        assert all(not r.held for r in results)
        assert p._turns.batched >= 2  # at least one transaction carried several turns
        for item in items:
            status = await p.get_instance_status(item.instance_id)
            assert status is not None and status.custom_status == "turn 2"
            assert len(await p.read_history(item.instance_id, 1)) == 2
    finally:
        await p.close()


async def test_a_turn_that_lost_its_lock_fails_alone(postgres_provider_factory: Any) -> None:
    p = await postgres_provider_factory()
    try:
        items = await _locked(p, 6)
        lost = items[3]
        await p.abandon_orchestration_item(lost.lock_token, None, True)
        outcomes = await asyncio.gather(
            *(p.ack_orchestration_item(item.lock_token, _turn(2)) for item in items),
            return_exceptions=True)
        assert isinstance(outcomes[3], LockLostError)
        assert all(not isinstance(o, BaseException) for n, o in enumerate(outcomes) if n != 3)
        assert len(await p.read_history(lost.instance_id, 1)) == 1  # nothing of it written
        for n, item in enumerate(items):
            if n != 3:
                assert len(await p.read_history(item.instance_id, 1)) == 2
    finally:
        await p.close()


async def test_one_turn_at_a_time_is_never_batched(postgres_provider_factory: Any) -> None:
    p = await postgres_provider_factory()
    try:
        for item in await _locked(p, 3):
            await p.ack_orchestration_item(item.lock_token, _turn(2))
        assert p._turns.batched == 0
    finally:
        await p.close()
