"""Sessions: a session's activities go only to the worker holding its lease (reference §2.17).

Worker ids here are owner ids as the runtime passes them (a pod's worker_node_id, or a slot's
id). Short leases are used where a lapse is the point; everything else uses long leases so a
slow machine cannot turn a "blocked" assertion into a lapse.
"""

from __future__ import annotations

import asyncio

import pytest

from duraflow.providers.errors import LockLostError
from duraflow.providers.items import SessionClaim, WorkLease
from duraflow.providers.protocol import Provider

from .support import LONG_LOCK_MS, Turns, activity, completion, eventually

SHORT_MS = 300


def claim(*owners: str, lock_ms: int = LONG_LOCK_MS, allow_new: bool = True) -> SessionClaim:
    return SessionClaim(tuple(owners), lock_ms, allow_new)


async def take(
    provider: Provider, session: SessionClaim | None, lock_ms: int = LONG_LOCK_MS
) -> WorkLease | None:
    return await provider.fetch_work_item(lock_ms, session=session)


async def must_take(
    provider: Provider, session: SessionClaim | None, lock_ms: int = LONG_LOCK_MS
) -> WorkLease:
    lease = await take(provider, session, lock_ms)
    assert lease is not None, "expected a work item"
    return lease


async def finish(provider: Provider, lease: WorkLease) -> None:
    await provider.ack_work_item(lease.lock_token, completion(lease))


def test_a_claim_needs_an_owner() -> None:
    with pytest.raises(ValueError, match="owner"):
        SessionClaim((), 1000)
    with pytest.raises(ValueError, match="owner"):
        SessionClaim(("",), 1000)


async def test_items_without_session_go_to_any_worker(provider: Provider, turns: Turns) -> None:
    await turns.create("i", worker_items=[activity("i", 2), activity("i", 3), activity("i", 4)])
    first = await must_take(provider, claim("A"))
    second = await must_take(provider, claim("B", allow_new=False))
    third = await must_take(provider, None)
    assert [x.activity_id for x in (first, second, third)] == [2, 3, 4]
    assert first.session_owner is None and first.session_id is None


async def test_first_fetch_claims_a_free_session(provider: Provider, turns: Turns) -> None:
    await turns.create("i", worker_items=[activity("i", 2, session_id="s1")])
    lease = await must_take(provider, claim("A"))
    assert (lease.session_id, lease.session_owner) == ("s1", "A")


async def test_a_session_stays_with_its_owner(provider: Provider, turns: Turns) -> None:
    await turns.create("i", worker_items=[activity("i", 2, session_id="s1")])
    await finish(provider, await must_take(provider, claim("A")))
    await turns.schedule("i", activity("i", 3, session_id="s1"))
    assert await take(provider, claim("B")) is None  # A's lease is live
    lease = await must_take(provider, claim("A"))
    assert (lease.activity_id, lease.session_owner) == (3, "A")


async def test_other_workers_are_blocked_while_the_owner_runs(
    provider: Provider, turns: Turns
) -> None:
    await turns.create(
        "i", worker_items=[activity("i", 2, session_id="s1"), activity("i", 3, session_id="s1")]
    )
    await must_take(provider, claim("A"))
    assert await take(provider, claim("B")) is None
    assert (await must_take(provider, claim("A"))).activity_id == 3


async def test_different_sessions_spread_over_workers(provider: Provider, turns: Turns) -> None:
    await turns.create(
        "i", worker_items=[activity("i", 2, session_id="s1"), activity("i", 3, session_id="s2")]
    )
    a = await must_take(provider, claim("A"))
    b = await must_take(provider, claim("B"))
    assert {(a.session_id, a.session_owner), (b.session_id, b.session_owner)} == {
        ("s1", "A"),
        ("s2", "B"),
    }


async def test_session_rows_do_not_block_other_work(provider: Provider, turns: Turns) -> None:
    await turns.create(
        "i",
        worker_items=[
            activity("i", 2, session_id="s1"),
            activity("i", 3, session_id="s1"),
            activity("i", 4),
        ],
    )
    await must_take(provider, claim("A"))
    other = await must_take(provider, claim("B"))  # skips s1's waiting row
    assert other.activity_id == 4


async def test_a_fetch_without_claim_never_takes_session_rows(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("i", worker_items=[activity("i", 2, session_id="s1"), activity("i", 3)])
    assert (await must_take(provider, None)).activity_id == 3
    assert await take(provider, None) is None
    assert (await must_take(provider, claim("A"))).activity_id == 2


async def test_at_capacity_only_owned_sessions_and_plain_rows(
    provider: Provider, turns: Turns
) -> None:
    await turns.create(
        "i",
        worker_items=[
            activity("i", 2, session_id="mine"),
            activity("i", 3, session_id="new"),
            activity("i", 4, session_id="mine"),
            activity("i", 5),
        ],
    )
    await must_take(provider, claim("A"))  # claims "mine"
    full = claim("A", allow_new=False)
    assert (await must_take(provider, full)).activity_id == 4
    assert (await must_take(provider, full)).activity_id == 5
    assert await take(provider, full) is None  # "new" needs a free slot for a new session
    assert (await must_take(provider, claim("A"))).session_id == "new"


async def test_a_lapsed_lease_lets_another_worker_take_over(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("i", worker_items=[activity("i", 2, session_id="s1")])
    await finish(provider, await must_take(provider, claim("A", lock_ms=SHORT_MS)))
    await turns.schedule("i", activity("i", 3, session_id="s1"))
    assert await take(provider, claim("B")) is None
    lease = await eventually(lambda: take(provider, claim("B")))
    assert (lease.activity_id, lease.session_owner) == (3, "B")
    assert await take(provider, claim("A")) is None  # now B's


async def test_the_owner_reclaims_its_lapsed_session(provider: Provider, turns: Turns) -> None:
    await turns.create("i", worker_items=[activity("i", 2, session_id="s1")])
    await finish(provider, await must_take(provider, claim("A", lock_ms=SHORT_MS)))
    await turns.schedule("i", activity("i", 3, session_id="s1"))
    lease = await eventually(lambda: take(provider, claim("A")))  # after the lapse, too
    assert lease.session_owner == "A"
    assert await take(provider, claim("B")) is None


async def test_any_caller_with_the_owner_id_serves_the_session(
    provider: Provider, turns: Turns
) -> None:
    """All slots of a runtime share its worker_node_id, and so its sessions."""
    await turns.create(
        "i", worker_items=[activity("i", 2, session_id="s1"), activity("i", 3, session_id="s1")]
    )
    first, second = await asyncio.gather(
        take(provider, claim("pod-0")), take(provider, claim("pod-0"))
    )
    assert first is not None and second is not None
    assert {first.activity_id, second.activity_id} == {2, 3}


async def test_per_slot_owners_keep_the_holding_slot(provider: Provider, turns: Turns) -> None:
    await turns.create(
        "i", worker_items=[activity("i", 2, session_id="s1"), activity("i", 3, session_id="s1")]
    )
    assert (await must_take(provider, claim("work-1-x"))).session_owner == "work-1-x"
    assert await take(provider, claim("work-0-x")) is None
    lease = await must_take(provider, claim("work-0-x", "work-1-x"))
    assert lease.session_owner == "work-1-x"  # the slot that holds it, not the first free one


async def test_concurrent_claims_of_one_session_have_one_winner(
    provider: Provider, turns: Turns
) -> None:
    await turns.create(
        "i", worker_items=[activity("i", n, session_id="hot") for n in range(2, 8)]
    )
    leases = await asyncio.gather(*(take(provider, claim(f"w{n}")) for n in range(6)))
    owners = {lease.session_owner for lease in leases if lease is not None}
    assert len(owners) == 1


async def test_session_rows_keep_fifo_order(provider: Provider, turns: Turns) -> None:
    await turns.create(
        "i", worker_items=[activity("i", n, session_id="s1") for n in range(2, 6)]
    )
    order = [(await must_take(provider, claim("A"))).activity_id for _ in range(4)]
    assert order == [2, 3, 4, 5]


async def test_an_abandoned_session_row_returns_to_its_owner(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("i", worker_items=[activity("i", 2, session_id="s1")])
    lease = await must_take(provider, claim("A"))
    await provider.abandon_work_item(lease.lock_token, ignore_attempt=True)
    assert await take(provider, claim("B")) is None
    again = await must_take(provider, claim("A"))
    assert (again.activity_id, again.attempt_count) == (2, 1)


async def test_activity_lock_lapse_redelivers_to_the_session_owner(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("i", worker_items=[activity("i", 2, session_id="s1")])
    await must_take(provider, claim("A"), lock_ms=SHORT_MS)
    again = await eventually(lambda: take(provider, claim("A")))
    assert (again.activity_id, again.attempt_count) == (2, 2)
    assert await take(provider, claim("B")) is None


async def test_both_locks_lapsed_another_worker_gets_the_redelivery(
    provider: Provider, turns: Turns
) -> None:
    await turns.create("i", worker_items=[activity("i", 2, session_id="s1")])
    await must_take(provider, claim("A", lock_ms=SHORT_MS), lock_ms=SHORT_MS)
    lease = await eventually(lambda: take(provider, claim("B")))
    assert (lease.activity_id, lease.attempt_count, lease.session_owner) == (2, 2, "B")


async def test_ack_succeeds_after_the_session_lease_lapsed(
    provider: Provider, turns: Turns
) -> None:
    await turns.create(
        "i", worker_items=[activity("i", 2, session_id="s1"), activity("i", 3, session_id="s1")]
    )
    lease = await must_take(provider, claim("A", lock_ms=SHORT_MS))
    taken_over = await eventually(lambda: take(provider, claim("B")))
    assert taken_over.session_owner == "B"
    await finish(provider, lease)  # the activity's own lock is what the ack needs


async def test_renewal_extends_a_lease_past_its_first_timeout(
    provider: Provider, turns: Turns
) -> None:
    await turns.create(
        "i", worker_items=[activity("i", 2, session_id="s1"), activity("i", 3, session_id="s1")]
    )
    await must_take(provider, claim("A", lock_ms=SHORT_MS * 2))
    assert await provider.renew_sessions(["A"], LONG_LOCK_MS, LONG_LOCK_MS) == ["s1"]
    await asyncio.sleep(SHORT_MS * 3 / 1000)  # well past the first lease: the point of the test
    assert await take(provider, claim("B")) is None
    assert await provider.renew_sessions(["A"], LONG_LOCK_MS, LONG_LOCK_MS) == ["s1"]


async def test_renewal_releases_idle_sessions(provider: Provider, turns: Turns) -> None:
    await turns.create(
        "i", worker_items=[activity("i", 2, session_id="s1"), activity("i", 3, session_id="s1")]
    )
    await must_take(provider, claim("A"))
    assert await provider.renew_sessions(["A"], LONG_LOCK_MS, LONG_LOCK_MS) == ["s1"]
    assert await provider.renew_sessions(["A"], LONG_LOCK_MS, 0) == []  # idle: released
    lease = await must_take(provider, claim("B"))  # at once, no lapse to wait for
    assert (lease.activity_id, lease.session_owner) == (3, "B")


async def test_renewal_without_sessions_is_empty(provider: Provider) -> None:
    assert await provider.renew_sessions(["nobody"], LONG_LOCK_MS, LONG_LOCK_MS) == []


async def test_renewal_only_touches_the_callers_sessions(
    provider: Provider, turns: Turns
) -> None:
    await turns.create(
        "i", worker_items=[activity("i", 2, session_id="s1"), activity("i", 3, session_id="s2")]
    )
    await must_take(provider, claim("A"))
    await must_take(provider, claim("B"))
    assert await provider.renew_sessions(["A"], LONG_LOCK_MS, 0) == []
    assert await provider.renew_sessions(["B"], LONG_LOCK_MS, LONG_LOCK_MS) == ["s2"]


async def test_a_lapsed_lease_is_not_renewed(provider: Provider, turns: Turns) -> None:
    await turns.create(
        "i", worker_items=[activity("i", 2, session_id="s1"), activity("i", 3, session_id="s1")]
    )
    await must_take(provider, claim("A", lock_ms=SHORT_MS))
    await eventually(lambda: take(provider, claim("B")))  # lapsed, and B took over
    assert await provider.renew_sessions(["A"], LONG_LOCK_MS, LONG_LOCK_MS) == []


async def test_ack_and_lock_renewal_keep_a_session_active(
    provider: Provider, turns: Turns
) -> None:
    await turns.create(
        "i", worker_items=[activity("i", 2, session_id="s1"), activity("i", 3, session_id="s1")]
    )
    first = await must_take(provider, claim("A"))
    await asyncio.sleep(0.25)  # make the claim measurably old
    await provider.renew_work_item_lock(first.lock_token, LONG_LOCK_MS)
    assert await provider.renew_sessions(["A"], LONG_LOCK_MS, 200) == ["s1"]  # renewal counted
    second = await must_take(provider, claim("A"))
    await asyncio.sleep(0.25)
    await finish(provider, second)
    assert await provider.renew_sessions(["A"], LONG_LOCK_MS, 200) == ["s1"]  # ack counted
    await asyncio.sleep(0.25)
    assert await provider.renew_sessions(["A"], LONG_LOCK_MS, 200) == []  # nothing since


async def test_release_hands_sessions_over_at_once(provider: Provider, turns: Turns) -> None:
    await turns.create(
        "i",
        worker_items=[
            activity("i", 2, session_id="s1"),
            activity("i", 3, session_id="s2"),
            activity("i", 4, session_id="s1"),
            activity("i", 5, session_id="s3"),
        ],
    )
    for _ in range(2):
        await must_take(provider, claim("A"))
    await must_take(provider, claim("C"))  # s3 -> C (the row after A's two is s1's: A's)
    assert await provider.release_sessions(["A"]) == 2
    lease = await must_take(provider, claim("B"))
    assert (lease.activity_id, lease.session_id, lease.session_owner) == (4, "s1", "B")
    assert await provider.renew_sessions(["C"], LONG_LOCK_MS, LONG_LOCK_MS) == ["s3"]


async def test_cleanup_forgets_lapsed_sessions_without_work(
    provider: Provider, turns: Turns
) -> None:
    await turns.create(
        "i",
        worker_items=[
            activity("i", 2, session_id="done"),
            activity("i", 3, session_id="pending"),
            activity("i", 4, session_id="pending"),
            activity("i", 5, session_id="live"),
        ],
    )
    await finish(provider, await must_take(provider, claim("A", lock_ms=SHORT_MS)))
    await must_take(provider, claim("B", lock_ms=SHORT_MS))  # "pending" keeps a waiting row
    await must_take(provider, claim("C"))  # "live" holds its lease
    # Once B's lease (taken after A's) has lapsed, "pending" is free for anyone.
    lease = await eventually(lambda: take(provider, claim("D", lock_ms=SHORT_MS)))
    assert (lease.activity_id, lease.session_owner) == (4, "D")
    assert await provider.cleanup_sessions() == 1  # only "done": lapsed, nothing left
    assert await provider.cleanup_sessions() == 0
    assert await provider.renew_sessions(["C"], LONG_LOCK_MS, LONG_LOCK_MS) == ["live"]


async def test_a_forgotten_session_is_claimed_afresh(provider: Provider, turns: Turns) -> None:
    await turns.create("i", worker_items=[activity("i", 2, session_id="s1")])
    await finish(provider, await must_take(provider, claim("A", lock_ms=SHORT_MS)))

    async def forgotten() -> bool | None:
        return True if await provider.cleanup_sessions() == 1 else None

    await eventually(forgotten)
    await turns.schedule("i", activity("i", 3, session_id="s1"))
    assert (await must_take(provider, claim("B"))).session_owner == "B"


async def test_a_cancelled_session_row_reports_lock_lost(
    provider: Provider, turns: Turns
) -> None:
    from duraflow.providers.items import ActivityRef

    await turns.create("i", worker_items=[activity("i", 2, session_id="s1")])
    lease = await must_take(provider, claim("A"))
    await turns.turn("i", cancelled_activities=[ActivityRef("i", 1, 2)])
    assert await provider.lost_work_items([lease.lock_token, "unknown"]) == {
        lease.lock_token,
        "unknown",
    }
    with pytest.raises(LockLostError):
        await provider.renew_work_item_lock(lease.lock_token, LONG_LOCK_MS)
