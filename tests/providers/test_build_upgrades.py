"""The store's half of a replay-verified upgrade: claim, move or record, once per build pair.

A runtime of the current build claims a running execution pinned to a draining build (it
is locked like a turn, and comes with its history), replays it in memory, and finishes the
claim: moved (execution, routing pin and waiting activities re-pinned, in one transaction
that validates the lock) or diverged (left where it is). Either verdict is recorded, so the
same build pair never looks at that execution again.
"""

from __future__ import annotations

import asyncio

import pytest

from duraflow.providers.errors import LockLostError
from duraflow.providers.items import UpgradeClaim
from duraflow.providers.protocol import Provider

from .builds_support import fetch, fetched, raise_on, raw, start_on
from .support import LONG_LOCK_MS, ORCH, VERSION, activity

REGISTERED = [(ORCH, VERSION)]


async def old_and_new(provider: Provider, *instances: str, with_activity: bool = False) -> None:
    """``instances`` started on v1, which then drains: v2 is current."""
    await provider.register_build("v1", True)
    for instance in instances:
        items = [activity(instance, 2)] if with_activity else []
        await start_on(provider, instance, "v1", worker_items=items)
    await provider.register_build("v2", True)


async def claim(provider: Provider, to: str = "v2") -> UpgradeClaim | None:
    return await provider.claim_upgrade(to, REGISTERED, LONG_LOCK_MS)


async def test_a_verified_execution_moves_with_its_waiting_activities(
    provider: Provider,
) -> None:
    await old_and_new(provider, "order", with_activity=True)
    claimed = await claim(provider)
    assert claimed is not None
    assert (claimed.instance_id, claimed.execution_id, claimed.from_build, claimed.to_build) == (
        "order", 1, "v1", "v2")
    assert [e.kind for e in claimed.history] == ["OrchestrationStarted", "ActivityScheduled"]
    await raise_on(provider, "order")
    assert await fetch(provider, "v1") is None  # locked by the claim, like a turn

    assert await provider.finish_upgrade(claimed, True, None) == "moved"

    assert (await provider.get_instance_info("order")).build_id == "v2"
    assert await fetched(provider, "v1") == [] and await fetched(provider, "v2") == ["order"]
    assert await provider.fetch_work_item(LONG_LOCK_MS, build_id="v1") is None
    assert await provider.fetch_work_item(LONG_LOCK_MS, build_id="v2") is not None
    assert await raw(provider, "SELECT verdict FROM {s}.build_verdicts") == "moved"


async def test_a_diverged_execution_stays_and_is_not_verified_again_by_that_build(
    provider: Provider,
) -> None:
    await old_and_new(provider, "changed")
    claimed = await claim(provider)
    assert claimed is not None
    assert await provider.finish_upgrade(claimed, False, "event 2: expected A, got B") == \
        "diverged"
    assert (await provider.get_instance_info("changed")).build_id == "v1"
    assert await claim(provider) is None  # the pair (v1, v2) has its verdict
    assert await raw(provider, "SELECT detail FROM {s}.build_verdicts") == \
        "event 2: expected A, got B"
    await provider.register_build("v3", True)  # a new pair: v3 may try
    again = await claim(provider, "v3")
    assert again is not None and again.from_build == "v1"


async def test_only_a_current_build_claims_and_only_what_it_registers(
    provider: Provider,
) -> None:
    await old_and_new(provider, "order")
    assert await claim(provider, "v1") is None  # draining: it does not take work over
    assert await provider.claim_upgrade("v2", [(ORCH, "2.0.0"), ("Other", VERSION)],
                                        LONG_LOCK_MS) is None
    await provider.register_build("v3", False)
    assert await claim(provider, "v3") is None  # pending


async def test_busy_executions_are_left_for_later(provider: Provider) -> None:
    await provider.register_build("v1", True)
    await start_on(provider, "locked", "v1")
    await start_on(provider, "running", "v1", worker_items=[activity("running", 2)])
    await provider.register_build("v2", True)
    await raise_on(provider, "locked")
    assert await fetch(provider, "v1") is not None  # a turn of v1 holds "locked"
    lease = await provider.fetch_work_item(LONG_LOCK_MS, build_id="v1")
    assert lease is not None and lease.instance_id == "running"  # its activity runs
    assert await claim(provider) is None
    await provider.ack_work_item(lease.lock_token, None)
    claimed = await claim(provider)
    assert claimed is not None and claimed.instance_id == "running"


async def test_an_activity_started_after_the_claim_keeps_it_where_it_is(
    provider: Provider,
) -> None:
    await old_and_new(provider, "order", with_activity=True)
    claimed = await claim(provider)
    assert claimed is not None
    assert await provider.fetch_work_item(LONG_LOCK_MS, build_id="v1") is not None
    assert await provider.finish_upgrade(claimed, True) == "busy"
    assert (await provider.get_instance_info("order")).build_id == "v1"
    assert await raw(provider, "SELECT count(*) FROM {s}.build_verdicts") == 0


async def test_an_expired_claim_changes_nothing(provider: Provider) -> None:
    await old_and_new(provider, "order")
    claimed = await provider.claim_upgrade("v2", REGISTERED, 1)
    assert claimed is not None
    await asyncio.sleep(0.01)
    await raise_on(provider, "order")
    item = await fetch(provider, "v1")  # the claim expired: a turn took the instance
    assert item is not None
    with pytest.raises(LockLostError):
        await provider.finish_upgrade(claimed, True)
    assert (await provider.get_instance_info("order")).build_id == "v1"
