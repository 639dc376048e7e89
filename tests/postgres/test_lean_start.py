"""Migration 11 stores a new instance's first turn without commit_turn. The rows it leaves
must be exactly those that the same turn leaves when it is run the general way (start
queued, fetched, committed by commit_turn): a user reading status, history, KV, custom
status or queues cannot tell which path stored the turn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from duraflow.core import events as ev
from duraflow.core import workitems as wi
from duraflow.core.events import HistoryEvent
from duraflow.providers.items import KvMutation, OutboundMessage, TurnCommit
from duraflow.providers.postgres import PostgresProvider

from .helpers import _url, activity, admin_connection, first_turn, start
from .test_start_with_turn import FirstTurnTaker

pytestmark = pytest.mark.postgres


def busy_first_turn(instance: str) -> TurnCommit:
    """A first turn touching every table: custom status, KV, one claimed and one queued
    activity, a timer for itself and an event for another instance."""
    commit = first_turn(status="Running", custom_status_set=True, custom_status="warming",
                        claim_lock_ms=30_000, hold_ms=5_000)
    commit.history_delta += [
        HistoryEvent(2, ev.ACTIVITY_SCHEDULED, {"name": "A"}),
        HistoryEvent(3, ev.ACTIVITY_SCHEDULED, {"name": "B"}),
        HistoryEvent(4, ev.TIMER_CREATED, {"fire_at_ms": 4_102_444_800_000}),
    ]
    claimed, queued = activity(instance, 2), activity(instance, 3)
    claimed.claim = True
    commit.worker_items = [claimed, queued]
    commit.kv_mutations = [KvMutation("set", "k", "v", 7), KvMutation("set", "gone", "x", 7),
                           KvMutation("clear", "gone")]
    commit.orchestrator_items = [
        OutboundMessage(instance, wi.timer_fired(instance, 1, 4, 4_102_444_800_000),
                        4_102_444_800_000),
        OutboundMessage("elsewhere", wi.start_orchestration("elsewhere", "Other", None)),
    ]
    return commit


def finished_first_turn(instance: str) -> TurnCommit:
    commit = first_turn(status="Completed", output='"done"')
    commit.history_delta.append(HistoryEvent(2, ev.ORCHESTRATION_COMPLETED, {"output": "done"}))
    return commit


async def stored_rows(provider: PostgresProvider, instance: str) -> dict[str, Any]:
    """Every row the turn wrote, without ids, tokens and clock readings."""
    conn = await admin_connection(_url(provider))
    s = f'"{provider.schema}"'
    try:
        return {
            "instance": dict(await conn.fetchrow(
                f"SELECT orchestration_name, orchestration_version, current_execution_id,"
                f" custom_status, custom_status_version, parent_instance_id, pinned_version,"
                f" created_at = updated_at AS same_time FROM {s}.instances"
                f" WHERE instance_id = $1", instance)),
            "execution": dict(await conn.fetchrow(
                f"SELECT execution_id, status, output, completed_at IS NOT NULL AS completed,"
                f" event_count, history_bytes FROM {s}.executions WHERE instance_id = $1",
                instance)),
            "history": [tuple(r) for r in await conn.fetch(
                f"SELECT execution_id, event_id, event_type, event_data FROM {s}.history"
                f" WHERE instance_id = $1 ORDER BY event_id", instance)],
            "kv": [tuple(r) for r in await conn.fetch(
                f"SELECT key, value, updated_at_ms FROM {s}.kv_store WHERE instance_id = $1"
                f" ORDER BY key", instance)],
            "worker": [tuple(r) for r in await conn.fetch(
                f"SELECT execution_id, activity_id, work_item, lock_token IS NOT NULL,"
                f" attempt_count, session_id, tag FROM {s}.worker_queue"
                f" WHERE instance_id = $1 ORDER BY activity_id", instance)],
            "orchestrator": [tuple(r) for r in await conn.fetch(
                f"SELECT instance_id, work_item, visible_at > created_at + 1000"
                f" FROM {s}.orchestrator_queue ORDER BY id")],
            "locked": await conn.fetchval(
                f"SELECT count(*) FROM {s}.instance_locks WHERE instance_id = $1", instance),
        }
    finally:
        await conn.close()


@pytest.mark.parametrize("make", [busy_first_turn, finished_first_turn])
async def test_lean_start_stores_what_commit_turn_stores(
    postgres_provider_factory: Any, make: Callable[[str], TurnCommit],
) -> None:
    # The general path: the start is queued, fetched and its first turn committed.
    general = await postgres_provider_factory()
    lean = await postgres_provider_factory()
    try:
        await general.enqueue_orchestrator(start("i"))
        item = await general.fetch_orchestration_item(30_000)
        assert item is not None
        turn = make("i")
        turn.hold_ms = None  # a fetched turn's hold is the fast path's, not asked here
        await general.ack_orchestration_item(item.lock_token, turn)

        taker = FirstTurnTaker(lambda: make("i"))
        lean.notifier.orchestrator_taker = taker
        await lean.enqueue_orchestrator(start("i"))
        lean.notifier.orchestrator_taker = None
        [(_, result)] = taker.committed
        assert taker.dropped == [] and taker.delivered == []

        want, got = await stored_rows(general, "i"), await stored_rows(lean, "i")
        # The hold is the only intended difference: kept by the lean start when asked.
        assert got.pop("locked") == (1 if result.held else 0)
        assert want.pop("locked") == 0
        assert got == want
        assert got["instance"]["pinned_version"] is not None
        if make is busy_first_turn:
            # Kept: the only message for "i" is its own timer, due in the future.
            assert result.held
            assert got["kv"] == [("k", "v", 7)] and got["instance"]["custom_status"] == "warming"
        else:
            assert got["execution"]["status"] == "Completed" and got["execution"]["completed"]
    finally:
        await lean.close()
        await general.close()
