"""Continue-as-new starts a fresh execution; old executions stay readable and separate."""

from __future__ import annotations

from duraflow.core import events as ev
from duraflow.providers.items import TurnCommit
from duraflow.providers.protocol import Provider

from .support import Turns, event, raised, started


async def _continue(
    provider: Provider, turns: Turns, instance: str, execution_id: int, events: int
) -> None:
    """A turn that writes execution ``execution_id`` with ``events`` events."""
    await provider.enqueue_orchestrator(raised(instance))
    item = await turns.fetch(instance)
    delta = [started()] + [event(2 + i) for i in range(events - 1)]
    await provider.ack_orchestration_item(
        item.lock_token, TurnCommit(execution_id=execution_id, history_delta=delta)
    )


async def test_execution_ids_follow_each_other(provider: Provider, turns: Turns) -> None:
    await turns.chain("a", executions=3, last_status=None)
    assert await provider.list_executions("a") == [1, 2, 3]
    info = await provider.get_instance_info("a")
    assert (info.current_execution_id, info.status) == (3, "Running")


async def test_each_execution_has_its_own_history(provider: Provider, turns: Turns) -> None:
    await turns.create("a", status="ContinuedAsNew", extra_events=2)
    await turns.create("b", extra_events=4)
    await _continue(provider, turns, "a", 2, events=1)

    assert [e.event_id for e in await provider.read_history("a", 1)] == [1, 2, 3]
    assert [e.event_id for e in await provider.read_history("a", 2)] == [1]
    assert [e.event_id for e in await provider.read_history("a")] == [1]  # current
    assert len(await provider.read_history("b")) == 5


async def test_fetch_reports_the_latest_execution(provider: Provider, turns: Turns) -> None:
    await turns.create("a", status="ContinuedAsNew", extra_events=3)
    before = await turns.turn("a")  # the turn after continue-as-new still sees execution 1
    assert (before.execution_id, before.execution_status, before.history_len) == (
        1,
        "ContinuedAsNew",
        4,
    )
    await _continue(provider, turns, "a", 2, events=2)

    await provider.enqueue_orchestrator(raised("a"))
    item = await turns.fetch("a")
    assert (item.execution_id, item.execution_status, item.history_len) == (2, "Running", 2)
    assert item.history is not None
    assert [e.kind for e in item.history] == [ev.ORCHESTRATION_STARTED, ev.ACTIVITY_SCHEDULED]


async def test_old_execution_history_stays_readable(provider: Provider, turns: Turns) -> None:
    await turns.chain("a", executions=3, last_status="Completed")
    for execution_id in (1, 2, 3):
        history = await provider.read_history("a", execution_id)
        assert [e.event_id for e in history] == [1, 2]
        assert history[0].kind == ev.ORCHESTRATION_STARTED
    assert await provider.read_history("a", 9) == []
    assert await provider.read_history("missing") == []
    assert await provider.read_history("missing", 1) == []


async def test_continue_as_new_closes_the_old_execution(provider: Provider, turns: Turns) -> None:
    await turns.chain("a", executions=2, last_status=None)
    old = await provider.get_execution_info("a", 1)
    new = await provider.get_execution_info("a", 2)
    assert old.status == "ContinuedAsNew" and old.completed_at is not None
    assert new.status == "Running" and new.completed_at is None
    assert new.started_at >= old.started_at > 0
