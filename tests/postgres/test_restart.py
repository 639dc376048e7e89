"""A database restart (every session killed) costs retries, never correctness.

``pg_terminate_backend`` on all of a provider's sessions is what a restart or failover looks
like from the client: pooled connections die under their next statement and the LISTEN
connection drops. Calls then either succeed or raise a *retryable* ``ProviderError`` and
succeed when retried, and the listener reconnects by itself and wakes every waiter once
(notifications sent while it was away are lost, so waiters must re-check).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from duraflow.providers.errors import ProviderError
from duraflow.providers.items import TurnCommit

from .helpers import admin_connection, create, peer, raised, wait_until

pytestmark = pytest.mark.postgres

T = TypeVar("T")


async def _terminate_sessions(url: str, schema: str) -> int:
    conn = await admin_connection(url)
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name IN ($1, $2)",
            f"duraflow/{schema}",
            f"duraflow-listen/{schema}",
        )
        return int(killed)
    finally:
        await conn.close()


async def _with_retries(call: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    for attempt in range(attempts):
        try:
            return await call()
        except ProviderError as exc:
            assert exc.retryable, f"non-retryable error after a restart: {exc}"
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


async def test_calls_recover_after_all_sessions_are_killed(postgres_provider_factory: Any) -> None:
    p = await postgres_provider_factory(pool_max=4)
    try:
        await create(p, "i")
        assert p.listener is not None and p.listener.reconnects == 0
        killed = await _terminate_sessions(p._test_url, p.schema)
        assert killed >= 2  # at least one pooled session and the listener

        status = await _with_retries(lambda: p.get_instance_status("i"))
        assert status is not None and status.status == "Running"
        await _with_retries(lambda: p.enqueue_orchestrator(raised("i")))
        item = await _with_retries(lambda: p.fetch_orchestration_item(30_000))
        assert item is not None
        await _with_retries(
            lambda: p.ack_orchestration_item(
                item.lock_token, TurnCommit(execution_id=1, status="Completed", output="1")
            )
        )
        done = await p.get_instance_status("i")
        assert done is not None and done.status == "Completed"
    finally:
        await p.close()


async def test_listener_reconnects_and_notifications_work_again(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory()
    try:
        async with peer(p) as other:
            listener = p.listener
            assert listener is not None
            waiter = asyncio.create_task(p.notifier.wait_instance("someone", 30.0))
            await asyncio.sleep(0.01)

            await _terminate_sessions(p._test_url, p.schema)
            await wait_until(lambda: listener.reconnects >= 1 and listener.connected.is_set())
            # Missed notifications are compensated: every instance waiter was woken.
            await asyncio.wait_for(waiter, 2.0)

            # The peer's own sessions were killed too; once it is back, its writes wake p.
            assert other.listener is not None
            await wait_until(
                lambda: other.listener is not None and other.listener.connected.is_set()
            )
            await p.notifier.wait_orchestrator(0)
            wake = asyncio.create_task(p.notifier.wait_orchestrator(30.0))
            await asyncio.sleep(0.01)
            await _with_retries(lambda: other.enqueue_orchestrator(raised("x")))
            await asyncio.wait_for(wake, 2.0)
    finally:
        await p.close()


async def test_listener_ping_detects_a_dead_connection(postgres_provider_factory: Any) -> None:
    """Even if the termination callback never fires (half-open TCP), the ping notices."""
    p = await postgres_provider_factory(listener_ping_s=0.2)
    try:
        listener = p.listener
        assert listener is not None
        conn = listener._conn
        assert conn is not None
        conn.remove_termination_listener(listener._on_terminated)
        await _terminate_sessions(p._test_url, p.schema)
        await wait_until(lambda: listener.reconnects >= 1 and listener.connected.is_set())
    finally:
        await p.close()


async def test_sessions_killed_under_load_only_cause_retryable_errors(
    postgres_provider_factory: Any,
) -> None:
    p = await postgres_provider_factory(pool_max=6)
    try:
        for n in range(40):
            await _with_retries(lambda n=n: p.enqueue_orchestrator(raised(f"i{n}")))
        errors: list[ProviderError] = []
        stop = asyncio.Event()

        async def dispatcher() -> None:
            while not stop.is_set():
                try:
                    item = await p.fetch_orchestration_item(2_000)
                    if item is None:
                        await asyncio.sleep(0.01)
                        continue
                    await p.ack_orchestration_item(item.lock_token, TurnCommit(execution_id=1))
                except ProviderError as exc:
                    errors.append(exc)
                    await asyncio.sleep(0.05)

        tasks = [asyncio.create_task(dispatcher()) for _ in range(6)]
        for _ in range(3):
            await asyncio.sleep(0.05)
            await _terminate_sessions(p._test_url, p.schema)

        async def drained() -> bool | None:
            depth = await _with_retries(p.get_queue_depths)
            return True if depth.orchestrator_queue == 0 else None

        deadline = asyncio.get_running_loop().time() + 15
        while await drained() is None:
            assert asyncio.get_running_loop().time() < deadline, "queue never drained"
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*tasks)
        # An ack whose reply was lost may later report the lock as lost: not retryable, but
        # also not a failure of the turn. Everything else must say "retry me".
        unexpected = [e for e in errors if not e.retryable and "lock" not in e.message.lower()]
        assert unexpected == []
    finally:
        await p.close()
