"""Timers are orchestrator messages that become visible at their fire time."""

from __future__ import annotations

from duraflow.core import workitems as wi
from duraflow.providers.items import OutboundMessage
from duraflow.providers.protocol import Provider
from duraflow.providers.schedule_items import NEXT_DUE_TIMES

from .support import Turns, eventually, now_ms, raised

DELAY_MS = 400


async def test_timer_message_is_hidden_until_it_fires(provider: Provider, turns: Turns) -> None:
    await turns.create("a")
    fire_at = now_ms() + DELAY_MS
    await turns.turn(
        "a",
        orchestrator_items=[
            OutboundMessage("a", wi.timer_fired("a", 1, 2, fire_at), visible_at_ms=fire_at)
        ],
    )
    assert await provider.fetch_orchestration_item(30_000) is None
    assert await provider.next_orchestrator_due_ms() == fire_at

    item = await eventually(lambda: provider.fetch_orchestration_item(30_000))
    assert now_ms() >= fire_at
    assert item.messages[0]["type"] == "TimerFired"
    assert await provider.next_orchestrator_due_ms() is None


async def test_next_due_is_the_earliest_future_message(provider: Provider) -> None:
    assert await provider.next_orchestrator_due_ms() is None
    soon, later = now_ms() + 60_000, now_ms() + 120_000
    await provider.enqueue_orchestrator(raised("b", visible_at_ms=later))
    await provider.enqueue_orchestrator(raised("a", visible_at_ms=soon))
    await provider.enqueue_orchestrator(raised("now"))  # visible already: not "due"
    assert await provider.next_orchestrator_due_ms() == soon


async def test_future_message_does_not_hold_back_visible_ones(
    provider: Provider, turns: Turns
) -> None:
    await provider.enqueue_orchestrator(raised("a", "later", visible_at_ms=now_ms() + 60_000))
    await provider.enqueue_orchestrator(raised("a", "now"))
    item = await turns.fetch("a")
    assert [m["data"] for m in item.messages] == ["now"]
    assert await provider.next_orchestrator_due_ms() is not None  # "later" still waits


async def test_the_next_due_times_come_in_order_64_at_a_time(provider: Provider) -> None:
    """``next_due_ms`` returns the next 64 due times, not only the first, so a dispatcher
    follows a burst of timers it did not hear of without a read per timer."""
    base = now_ms() + 60_000
    for n in range(NEXT_DUE_TIMES + 6):  # enqueued out of order (37 is coprime to 70)
        offset = n * 37 % (NEXT_DUE_TIMES + 6)
        await provider.enqueue_orchestrator(raised(f"i{n}", visible_at_ms=base + offset))
    await provider.enqueue_orchestrator(raised("now"))  # visible already: not "due"
    due = await provider.next_due_ms()
    assert due.orchestrator_ms == base
    assert due.orchestrator_next == tuple(range(base, base + NEXT_DUE_TIMES))
