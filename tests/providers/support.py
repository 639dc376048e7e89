"""Building blocks for the conformance tests: raw turns, messages, and polling.

Providers receive pre-digested turns from the runtime; these helpers build those turns so a
test reads as the scenario it checks rather than as a pile of constructor calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import pytest

from duraflow.core import events as ev
from duraflow.core import workitems as wi
from duraflow.core.events import HistoryEvent
from duraflow.core.workitems import WorkItem
from duraflow.providers.items import (
    OrchestrationItem,
    OutboundMessage,
    TurnCommit,
    WorkerItem,
    WorkLease,
)
from duraflow.providers.protocol import Provider

T = TypeVar("T")

ORCH = "TestOrch"
VERSION = "1.0.0"
LONG_LOCK_MS = 30_000


def started(name: str = ORCH, version: str | None = VERSION, input: str = "null") -> HistoryEvent:
    return HistoryEvent(
        1, ev.ORCHESTRATION_STARTED, {"name": name, "version": version, "input": input}
    )


def event(event_id: int, kind: str = ev.ACTIVITY_SCHEDULED, **data: Any) -> HistoryEvent:
    return HistoryEvent(event_id, kind, dict(data) or {"name": "Act", "input": "null"})


def start_msg(instance: str, name: str = ORCH, parent: str | None = None) -> OutboundMessage:
    return OutboundMessage(
        instance, wi.start_orchestration(instance, name, "null", VERSION, parent_instance=parent)
    )


def raised(instance: str, data: str = "1", visible_at_ms: int | None = None) -> OutboundMessage:
    return OutboundMessage(instance, wi.external_raised(instance, "evt", data), visible_at_ms)


def activity(
    instance: str,
    activity_id: int,
    execution_id: int = 1,
    tag: str | None = None,
    session_id: str | None = None,
) -> WorkerItem:
    item = wi.activity_execute(
        instance, execution_id, activity_id, "Act", "null", ORCH, VERSION, session_id, tag
    )
    return WorkerItem(instance, execution_id, activity_id, item, session_id, tag)


def completion(lease: WorkLease, result: str = '"ok"') -> OutboundMessage:
    return OutboundMessage(
        lease.instance_id,
        wi.activity_completed(lease.instance_id, lease.execution_id, lease.activity_id, result),
    )


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout_s: float = 5.0, interval_s: float = 0.02
) -> T:
    """Poll ``probe`` until it returns something other than None; fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s}s")
        await asyncio.sleep(interval_s)


class Turns:
    """Drives a provider through orchestration turns the way the runtime would."""

    def __init__(self, provider: Provider) -> None:
        self.p = provider

    async def fetch(
        self,
        instance: str | None = None,
        lock_ms: int = LONG_LOCK_MS,
        cached: dict[str, tuple[int, int]] | None = None,
    ) -> OrchestrationItem:
        item = await self.p.fetch_orchestration_item(lock_ms, cached)
        assert item is not None, "expected an orchestration item"
        if instance is not None:
            assert item.instance_id == instance
        return item

    async def create(
        self,
        instance: str,
        *,
        status: str | None = None,
        output: str | None = None,
        parent: str | None = None,
        name: str = ORCH,
        version: str | None = VERSION,
        worker_items: Sequence[WorkerItem] = (),
        extra_events: int = 0,
    ) -> OrchestrationItem:
        """Start ``instance`` (first turn: OrchestrationStarted + ``extra_events``)."""
        await self.p.enqueue_orchestrator(start_msg(instance, name, parent))
        item = await self.fetch(instance)
        history = [started(name, version)] + [event(2 + i) for i in range(extra_events)]
        await self.p.ack_orchestration_item(
            item.lock_token,
            TurnCommit(
                execution_id=1,
                history_delta=history,
                worker_items=list(worker_items),
                orchestration_name=name,
                orchestration_version=version,
                parent_instance_id=parent,
                status=status,
                output=output,
            ),
        )
        return item

    async def turn(
        self,
        instance: str,
        *,
        message: WorkItem | None = None,
        new_events: int = 0,
        **fields: Any,
    ) -> OrchestrationItem:
        """One more turn of the current execution, appending ``new_events`` events."""
        await self.p.enqueue_orchestrator(
            OutboundMessage(instance, message or wi.external_raised(instance, "evt", "1"))
        )
        item = await self.fetch(instance)
        delta = [event(item.history_len + 1 + i) for i in range(new_events)]
        await self.p.ack_orchestration_item(
            item.lock_token,
            TurnCommit(execution_id=item.execution_id, history_delta=delta, **fields),
        )
        return item

    async def chain(self, instance: str, executions: int, last_status: str | None) -> None:
        """``executions`` executions linked by continue-as-new, each with events [1, 2];
        the last gets ``last_status`` (None: still Running)."""
        first_status = "ContinuedAsNew" if executions > 1 else last_status
        await self.create(instance, status=first_status, extra_events=1)
        for execution_id in range(2, executions + 1):
            await self.p.enqueue_orchestrator(
                OutboundMessage(
                    instance,
                    wi.continue_as_new(instance, ORCH, "null", VERSION, [], None, None, None, None),
                )
            )
            item = await self.fetch(instance)
            is_last = execution_id == executions
            await self.p.ack_orchestration_item(
                item.lock_token,
                TurnCommit(
                    execution_id=execution_id,
                    history_delta=[started(), event(2)],
                    status=last_status if is_last else "ContinuedAsNew",
                ),
            )

    async def schedule(self, instance: str, *items: WorkerItem) -> None:
        """A turn of an existing instance that enqueues activities."""
        await self.turn(instance, worker_items=list(items))

    async def lease(self, lock_ms: int = LONG_LOCK_MS) -> WorkLease:
        lease = await self.p.fetch_work_item(lock_ms)
        assert lease is not None, "expected a work item"
        return lease
