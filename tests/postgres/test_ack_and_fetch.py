"""A worker slot reports an activity and takes its next one in one round trip."""

from __future__ import annotations

from typing import Any

import pytest

from duraflow.core import workitems as wi
from duraflow.providers.items import OutboundMessage, SessionClaim, WorkerItem, WorkerTagFilter

from .helpers import activity, count_round_trips, create

pytestmark = pytest.mark.postgres


def done(instance: str, activity_id: int) -> OutboundMessage:
    return OutboundMessage(instance, wi.activity_completed(instance, 1, activity_id, '"ok"'))


async def _with_activities(p: Any, items: list[WorkerItem]) -> None:
    await create(p, "i", worker_items=items)


async def test_ack_enqueues_the_result_and_brings_the_next_item(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        await _with_activities(p, [activity("i", 2), activity("i", 3)])
        first = await p.fetch_work_item(30_000)
        assert first is not None
        calls = count_round_trips(p)
        second = await p.ack_and_fetch_work_item(first.lock_token, done("i", first.activity_id),
                                                 30_000)
        assert calls == ["ack_work_item"]  # one round trip for both
        assert second is not None
        assert {first.activity_id, second.activity_id} == {2, 3}
        # The first result is in the orchestrator queue; the second row is locked.
        item = await p.fetch_orchestration_item(30_000)
        assert item is not None
        assert [m["type"] for m in item.messages] == ["ActivityCompleted"]
        assert await p.fetch_work_item(30_000) is None
        # The next ack on an empty queue still reports, and brings nothing.
        assert await p.ack_and_fetch_work_item(second.lock_token, done("i", 3), 30_000) is None
    finally:
        await p.close()


async def test_a_lost_lock_fails_the_ack_and_takes_nothing(
    postgres_provider_factory: Any,
) -> None:
    from duraflow.providers.errors import LockLostError

    p = await postgres_provider_factory()
    try:
        await _with_activities(p, [activity("i", 2), activity("i", 3)])
        first = await p.fetch_work_item(30_000)
        assert first is not None
        await p.ack_work_item(first.lock_token, None)  # e.g. cancelled meanwhile
        with pytest.raises(LockLostError):
            await p.ack_and_fetch_work_item(first.lock_token, done("i", 2), 30_000)
        other = await p.fetch_work_item(30_000)  # the rolled-back fetch locked nothing
        assert other is not None and other.activity_id != first.activity_id
    finally:
        await p.close()


async def test_the_fetch_half_honours_tags_and_session_claims(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        gpu = activity("i", 3)
        gpu.tag = "gpu"
        chat = activity("i", 4)
        chat.session_id = "chat"
        await _with_activities(p, [activity("i", 2), gpu, chat])
        first = await p.fetch_work_item(30_000)
        assert first is not None and first.activity_id == 2
        # Default tags only, no session claim: neither remaining row qualifies.
        assert await p.ack_and_fetch_work_item(first.lock_token, done("i", 2), 30_000) is None
        again = await p.fetch_work_item(30_000, WorkerTagFilter("tags", ("gpu",)))
        assert again is not None and again.activity_id == 3
        claim = SessionClaim(("slot-1",), 30_000)
        chat_lease = await p.ack_and_fetch_work_item(again.lock_token, done("i", 3), 30_000,
                                                     WorkerTagFilter(), claim)
        assert chat_lease is not None
        assert (chat_lease.session_id, chat_lease.session_owner) == ("chat", "slot-1")
        # A filter that takes nothing still acks.
        assert await p.ack_and_fetch_work_item(chat_lease.lock_token, done("i", 4), 30_000,
                                               WorkerTagFilter("none")) is None
        item = await p.fetch_orchestration_item(30_000)
        assert item is not None and len(item.messages) == 3
    finally:
        await p.close()
