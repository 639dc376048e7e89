"""A wait for an instance that runs in this process reads nothing first (``running_here.py``),
and that knowledge never outlives a change made by another process: it is dropped when the
change is heard, while the process's own notifications, heard back through its LISTEN
connection, leave it alone."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from duraflow import AsyncClient, AsyncRuntime, RuntimeOptions
from duraflow.providers.postgres import PostgresProvider
from duraflow.providers.postgres.listen import Listener
from duraflow.providers.postgres.sql import Channels
from duraflow.providers.wakeups import Notifier

from .helpers import count_round_trips, peer, wait_until

pytestmark = pytest.mark.postgres

DEADLINE_S = 20.0


def waiter(ctx: Any, _: Any) -> Any:
    return (yield ctx.wait_for_event("go"))


async def started(provider: PostgresProvider, instance: str) -> AsyncRuntime:
    """A runtime on ``provider`` that has started ``instance`` (waiting for "go")."""
    runtime = AsyncRuntime(provider, RuntimeOptions())
    runtime.register_orchestration("Waiter", waiter)
    await runtime.start()
    await AsyncClient(provider).start_orchestration(instance, "Waiter", None)
    await wait_until(lambda: provider.notifier.running.running(instance), DEADLINE_S)
    return runtime


async def test_a_wait_for_an_instance_running_here_reads_nothing_first(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    runtime = await started(p, "w")
    try:
        client = AsyncClient(p)
        calls = count_round_trips(p)
        waiting = asyncio.create_task(client.wait_for_orchestration("w", 10_000))
        await asyncio.sleep(0)  # the wait decides whether to read before the event
        await client.raise_event("w", "go", 7)
        result = await waiting
        assert (result.status, result.output) == ("Completed", 7)
        # The finishing commit handed its status to the waiter; nobody read it.
        assert "get_instance_status" not in calls
        assert not p.notifier.running.running("w")  # it ended
    finally:
        await runtime.shutdown(2_000)


async def test_a_change_made_by_another_process_is_not_overlooked(
    postgres_provider_factory: Any,
) -> None:
    """Process A started the instance (so knows it running) and stops; process B finishes
    it, and A hears that. A wait made in A afterwards must read the status: trusting the
    old knowledge would wait for a change that already happened, until the fallback poll
    (set to a minute here)."""
    a = await postgres_provider_factory()
    runtime_a = await started(a, "x")
    await runtime_a.shutdown(2_000)
    assert a.notifier.running.running("x")
    async with peer(a) as b:
        runtime_b = AsyncRuntime(b, RuntimeOptions())
        runtime_b.register_orchestration("Waiter", waiter)
        await runtime_b.start()
        try:
            client = AsyncClient(a)
            client._fallback_s = 60.0
            with a.notifier.watch_instance("x") as watch:
                await AsyncClient(b).raise_event("x", "go", 3)
                deadline = time.monotonic() + DEADLINE_S
                while not any(c is not None and c.status == "Completed"
                              for c in await watch.next(deadline - time.monotonic())):
                    assert time.monotonic() < deadline, "A never heard B finish x"
            assert not a.notifier.running.running("x")
            result = await asyncio.wait_for(client.wait_for_orchestration("x", 30_000),
                                            DEADLINE_S)
            assert (result.status, result.output) == ("Completed", 3)
        finally:
            await runtime_b.shutdown(2_000)


async def test_its_own_notifications_do_not_drop_what_a_process_knows(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    async with peer(p):  # someone listens, so p's commits notify (and p hears them too)
        await wait_until(lambda: p.notify_peers, DEADLINE_S)
        heard: list[str] = []
        listener = p.listener
        assert listener is not None
        on_combined = listener._on_combined

        def recording(pid: int, text: str) -> None:
            heard.append(text)
            on_combined(pid, text)

        listener._on_combined = recording  # type: ignore[method-assign]
        runtime = await started(p, "e")
        try:
            await wait_until(lambda: any('"e"' in text for text in heard), DEADLINE_S)
            assert p.notifier.running.running("e")
        finally:
            await runtime.shutdown(2_000)


def test_the_listener_tells_its_own_notifications_from_other_processes() -> None:
    notifier = Notifier()
    notifier.running.enabled = True
    listener = Listener(_never, Channels.for_schema("s"), notifier, sender="mine")
    for instance in ("a", "b", "c"):
        notifier.running.committed(instance, notifier.running.sending(instance), True)
    listener._on_combined(1, json.dumps({"i": {"a": ["", 0, 0]}, "p": "mine"}))
    listener._on_combined(1, json.dumps({"i": {"b": ["", 0, 0]}, "p": "theirs"}))
    assert [notifier.known_running(i) for i in "abc"] == [True, False, True]
    listener._on_combined(1, json.dumps({"i": "*", "p": "mine"}))  # ours, however many
    assert notifier.known_running("c")
    listener._on_combined(1, json.dumps({"i": "*"}))  # someone's, too many to name
    assert not notifier.known_running("a") and not notifier.known_running("c")


async def _never() -> Any:  # pragma: no cover - the listener is never started here
    raise AssertionError("not connected in this test")
