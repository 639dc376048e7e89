"""A turn commit is all or nothing, and the lock is the only licence to commit."""

from __future__ import annotations

import asyncio

import pytest

from duraflow.core import workitems as wi
from duraflow.providers.errors import LockLostError, ProviderError
from duraflow.providers.items import OutboundMessage, TurnCommit
from duraflow.providers.protocol import Provider

from .support import Turns, activity, event, raised, started


async def test_failed_ack_writes_nothing_and_keeps_messages(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("a")
    await provider.enqueue_orchestrator(raised("a", "first"))
    item = await turns.fetch("a")

    doomed = TurnCommit(
        execution_id=1,
        history_delta=[event(2), event(1)],  # event 1 already exists: must roll back
        worker_items=[activity("a", 2)],
        orchestrator_items=[raised("other")],
        status="Completed",
        output='"done"',
        custom_status_set=True,
        custom_status="half-written",
    )
    with pytest.raises(ProviderError) as caught:
        await provider.ack_orchestration_item(item.lock_token, doomed)
    assert caught.value.retryable is False

    assert [e.event_id for e in await provider.read_history("a")] == [1]
    status = await provider.get_instance_status("a")
    assert status is not None
    assert (status.status, status.output) == ("Running", None)
    assert (status.custom_status, status.custom_status_version) == (None, 0)
    assert await provider.fetch_work_item(1000) is None
    assert await provider.fetch_orchestration_item(1000) is None  # 'other' never enqueued

    # The batch is still ours: a correct commit with the same token consumes it.
    await provider.ack_orchestration_item(
        item.lock_token, TurnCommit(execution_id=1, history_delta=[event(2)])
    )
    assert [e.event_id for e in await provider.read_history("a")] == [1, 2]
    assert await provider.fetch_orchestration_item(1000) is None


async def test_successful_ack_commits_every_part_of_the_turn(
    provider: Provider, turns: Turns
) -> None:
    await provider.enqueue_orchestrator(
        OutboundMessage("a", wi.start_orchestration("a", "TestOrch", "null", "1.0.0"))
    )
    item = await turns.fetch("a")
    await provider.ack_orchestration_item(
        item.lock_token,
        TurnCommit(
            execution_id=1,
            history_delta=[started(), event(2), event(3)],
            worker_items=[activity("a", 2)],
            orchestrator_items=[raised("b", "for-b")],
            orchestration_name="TestOrch",
            orchestration_version="1.0.0",
            custom_status_set=True,
            custom_status="step 1",
        ),
    )

    assert [e.event_id for e in await provider.read_history("a")] == [1, 2, 3]
    status = await provider.get_instance_status("a")
    assert status is not None
    assert (status.orchestration_name, status.status) == ("TestOrch", "Running")
    assert (status.custom_status, status.custom_status_version) == ("step 1", 1)
    lease = await provider.fetch_work_item(1000)
    assert lease is not None and (lease.instance_id, lease.activity_id) == ("a", 2)
    other = await provider.fetch_orchestration_item(1000)
    assert other is not None and other.instance_id == "b"
    assert other.messages[0]["data"] == "for-b"


async def test_lock_is_released_only_by_a_successful_ack(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    await provider.enqueue_orchestrator(raised("a"))
    item = await turns.fetch("a")

    with pytest.raises(ProviderError):
        await provider.ack_orchestration_item(
            item.lock_token, TurnCommit(execution_id=1, history_delta=[event(1)])
        )
    await provider.enqueue_orchestrator(raised("a", "while-locked"))
    assert await provider.fetch_orchestration_item(1000) is None  # still locked

    await provider.ack_orchestration_item(item.lock_token, TurnCommit(execution_id=1))
    nxt = await turns.fetch("a")
    assert [m["data"] for m in nxt.messages] == ["while-locked"]


async def test_two_acks_with_one_token_cannot_both_succeed(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("a")
    await provider.enqueue_orchestrator(raised("a"))
    item = await turns.fetch("a")

    results = await asyncio.gather(
        provider.ack_orchestration_item(
            item.lock_token, TurnCommit(execution_id=1, history_delta=[event(2)])
        ),
        provider.ack_orchestration_item(
            item.lock_token, TurnCommit(execution_id=1, history_delta=[event(2)])
        ),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1
    assert isinstance(failures[0], LockLostError)
    assert [e.event_id for e in await provider.read_history("a")] == [1, 2]


async def test_ack_with_unknown_token_fails_without_writing(provider: Provider) -> None:
    with pytest.raises(LockLostError) as caught:
        await provider.ack_orchestration_item(
            "no-such-token",
            TurnCommit(
                execution_id=1,
                history_delta=[started()],
                orchestration_name="TestOrch",
                orchestrator_items=[raised("x")],
            ),
        )
    assert caught.value.retryable is False
    assert await provider.list_instances() == []
    assert await provider.fetch_orchestration_item(1000) is None
