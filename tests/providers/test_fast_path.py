"""The fast path of a commit: claimed activities, held locks, and results applied by a turn.

A runtime that can run a turn's activities itself claims them in the commit (rows inserted
locked by it), keeps the instance locked while they run, and commits each result together
with the next turn. Every row stays in the store, so other processes can take over when a
lock expires; these tests pin that contract for every provider.
"""

from __future__ import annotations

import pytest

from duraflow.core import events as ev
from duraflow.core import workitems as wi
from duraflow.providers.errors import LockLostError
from duraflow.providers.items import (
    ActivityRef,
    OutboundMessage,
    TurnCommit,
    TurnResult,
    WorkerItem,
)
from duraflow.providers.protocol import Provider

from .support import (
    LONG_LOCK_MS,
    Turns,
    activity,
    event,
    eventually,
    raised,
    start_msg,
    started,
)

SHORT_MS = 200


def claimed(item: WorkerItem) -> WorkerItem:
    item.claim = True
    return item


async def started_with_claim(
    provider: Provider, turns: Turns, hold_ms: int | None = LONG_LOCK_MS
) -> tuple[str, TurnResult]:
    """Instance "a" whose first turn claims activity 2, queues activity 3, and holds the
    lock when ``hold_ms`` is given. Returns the lock token and the commit's result."""
    await provider.enqueue_orchestrator(start_msg("a"))
    item = await turns.fetch("a")
    result = await provider.ack_orchestration_item(
        item.lock_token,
        TurnCommit(
            execution_id=1,
            history_delta=[started(), event(2), event(3)],
            worker_items=[claimed(activity("a", 2)), activity("a", 3)],
            orchestration_name="TestOrch",
            orchestration_version="1.0.0",
            claim_lock_ms=LONG_LOCK_MS,
            hold_ms=hold_ms,
        ),
    )
    assert result is not None
    return item.lock_token, result


async def hold_expired(provider: Provider, token: str) -> bool | None:
    """True once the hold behind ``token`` has expired (renewing by 1 ms keeps it short)."""
    try:
        await provider.renew_orchestration_item_lock(token, 1)
    except LockLostError:
        return True
    return None


async def test_claimed_activity_is_leased_to_the_committer(
    provider: Provider, turns: Turns
) -> None:
    _, result = await started_with_claim(provider, turns, hold_ms=None)
    assert [(lease.activity_id, lease.attempt_count) for lease in result.claimed] == [(2, 1)]
    assert result.claimed[0].item["name"] == "Act"
    # Only the unclaimed row is fetchable; the claimed one is locked by its lease.
    lease = await turns.lease()
    assert lease.activity_id == 3
    assert await provider.fetch_work_item(LONG_LOCK_MS) is None
    # The claimed lease acks like a fetched one.
    done = wi.activity_completed("a", 1, 2, '"ok"')
    await provider.ack_work_item(result.claimed[0].lock_token, OutboundMessage("a", done))
    item = await turns.fetch("a")
    assert [m["type"] for m in item.messages] == ["ActivityCompleted"]


async def test_held_instance_is_not_fetched_until_the_hold_expires(
    provider: Provider, turns: Turns
) -> None:
    token, result = await started_with_claim(provider, turns, hold_ms=SHORT_MS)
    assert result.held
    await provider.enqueue_orchestrator(raised("a"))
    assert await provider.fetch_orchestration_item(LONG_LOCK_MS) is None
    taken = await eventually(lambda: provider.fetch_orchestration_item(LONG_LOCK_MS))
    assert taken.instance_id == "a" and taken.lock_token != token


async def test_waiting_messages_end_a_hold(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    await provider.enqueue_orchestrator(raised("a", data="1"))
    item = await turns.fetch("a")
    await provider.enqueue_orchestrator(raised("a", data="2"))  # arrives during the turn
    result = await provider.ack_orchestration_item(
        item.lock_token,
        TurnCommit(execution_id=1, history_delta=[event(item.history_len + 1)],
                   worker_items=[claimed(activity("a", 9))], claim_lock_ms=LONG_LOCK_MS,
                   hold_ms=LONG_LOCK_MS),
    )
    assert result is not None and not result.held and len(result.claimed) == 1
    again = await turns.fetch("a")
    assert [m["data"] for m in again.messages] == ["2"]


async def test_continuation_applies_a_result_and_the_next_turn_at_once(
    provider: Provider, turns: Turns
) -> None:
    token, result = await started_with_claim(provider, turns, hold_ms=SHORT_MS)
    lease = result.claimed[0]
    # Even after the hold expired: nobody took the instance, so the token still works.
    await eventually(lambda: hold_expired(provider, token))
    follow = await provider.ack_orchestration_item(
        token,
        TurnCommit(
            execution_id=1,
            history_delta=[event(4, ev.ACTIVITY_COMPLETED, source_event_id=2, result='"ok"'),
                           event(5)],
            worker_items=[claimed(activity("a", 4))],
            claim_lock_ms=LONG_LOCK_MS,
            hold_ms=SHORT_MS,
            completed_work=[lease.lock_token],
        ),
    )
    assert follow is not None and follow.held
    history = await provider.read_history("a")
    assert [e.event_id for e in history] == [1, 2, 3, 4, 5]
    with pytest.raises(LockLostError):  # the result's row is gone with the commit
        await provider.renew_work_item_lock(lease.lock_token, LONG_LOCK_MS)


async def test_continuation_after_a_take_over_writes_nothing(
    provider: Provider, turns: Turns
) -> None:
    token, result = await started_with_claim(provider, turns, hold_ms=SHORT_MS)
    lease = result.claimed[0]
    await provider.enqueue_orchestrator(raised("a"))
    await eventually(lambda: provider.fetch_orchestration_item(LONG_LOCK_MS))  # taken over
    with pytest.raises(LockLostError):
        await provider.ack_orchestration_item(
            token,
            TurnCommit(execution_id=1, history_delta=[event(4)],
                       completed_work=[lease.lock_token]),
        )
    assert [e.event_id for e in await provider.read_history("a")] == [1, 2, 3]
    await provider.renew_work_item_lock(lease.lock_token, LONG_LOCK_MS)  # row still there


async def test_continuation_with_a_cancelled_row_writes_nothing(
    provider: Provider, turns: Turns
) -> None:
    token, result = await started_with_claim(provider, turns)
    lease = result.claimed[0]
    follow = await provider.ack_orchestration_item(
        token,
        TurnCommit(execution_id=1, history_delta=[event(4)], hold_ms=LONG_LOCK_MS,
                   cancelled_activities=[ActivityRef("a", 1, 2)]),
    )
    assert follow is not None and follow.held
    with pytest.raises(LockLostError):
        await provider.ack_orchestration_item(
            token,
            TurnCommit(execution_id=1, history_delta=[event(5)],
                       completed_work=[lease.lock_token]),
        )
    assert [e.event_id for e in await provider.read_history("a")] == [1, 2, 3, 4]


async def test_batched_fetch_locks_several_instances_in_one_call(
    provider: Provider, turns: Turns
) -> None:
    assert await provider.fetch_orchestration_items(LONG_LOCK_MS, {}, 4) == []
    for name in ("a", "b", "c"):
        await turns.create(name)
    for name in ("a", "b", "c"):
        await provider.enqueue_orchestrator(raised(name))
    await provider.enqueue_orchestrator(raised("a", data="2"))
    items = await provider.fetch_orchestration_items(LONG_LOCK_MS, {}, 2)
    assert [item.instance_id for item in items] == ["a", "b"]  # oldest message first
    assert [m["data"] for m in items[0].messages] == ["1", "2"]  # all of a's messages
    assert len({item.lock_token for item in items}) == 2
    rest = await provider.fetch_orchestration_items(LONG_LOCK_MS, {}, 4)
    assert [item.instance_id for item in rest] == ["c"]  # a and b stay locked
    # An empty cache matches nothing: each item carries its instance's history.
    assert all(item.history is not None and len(item.history) == 1 for item in items + rest)
