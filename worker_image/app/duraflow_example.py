"""The example app baked into the Duraflow image (``--app duraflow_example:register``).

It exists so that a fresh cluster can run something the moment the chart is installed: the
chart's example WorkerPool and the samples in the docs start these orchestrations. Each one
shows one durable building block a user will look for first:

- ``Hello``: an activity call (``SayHello``); output ``"Hello, <name>!"``.
- ``Approval``: custom status plus an external event (``approve``); output = the event data.
- ``Countdown``: ``n`` durable one-second timers; the custom status counts down the remaining ones.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

APPROVAL_STATUS = "waiting for approval"
APPROVAL_EVENT = "approve"
COUNTDOWN_TICK_MS = 1_000


def say_hello(ctx: Any, name: str) -> str:
    """Activity: the greeting, computed outside the orchestration so it is recorded once."""
    return f"Hello, {name}!"


def hello(ctx: Any, name: str) -> Generator[Any, Any, Any]:
    """Orchestration: one activity call; its result is the orchestration's output."""
    greeting = yield ctx.schedule_activity("SayHello", name)
    return greeting


def approval(ctx: Any, _input: Any) -> Generator[Any, Any, Any]:
    """Orchestration: parks (durably, for as long as it takes) until someone raises ``approve``."""
    ctx.set_custom_status(APPROVAL_STATUS)
    decision = yield ctx.wait_for_event(APPROVAL_EVENT)
    return decision


def countdown(ctx: Any, n: int) -> Generator[Any, Any, Any]:
    """Orchestration: ``n`` one-second timers; the custom status shows how many remain."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"Countdown needs a non-negative integer, got {n!r}")
    for remaining in range(n, 0, -1):
        ctx.set_custom_status(str(remaining))
        yield ctx.schedule_timer(COUNTDOWN_TICK_MS)
    ctx.set_custom_status("0")
    return n


def register(runtime: Any) -> None:
    """The ``--app`` entry point: registers the example orchestrations and their activity."""
    runtime.register_activity("SayHello", say_hello)
    runtime.register_orchestration("Hello", hello)
    runtime.register_orchestration("Approval", approval)
    runtime.register_orchestration("Countdown", countdown)
