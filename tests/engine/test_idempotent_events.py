"""``raise_event(idempotency_key=...)``: a client that raises again after a crash it cannot
see past (did my raise arrive?) gets the event recorded exactly once.

The Kubernetes operator relies on this for ``spec.events``: it raises each entry with a key
derived from the CR and its index, and only then records the count in the CR's status.
"""

from __future__ import annotations

import pytest

from duraflow import AsyncClient, AsyncRuntime, RuntimeOptions, SqliteProvider

from .support import TIMEOUT_MS, uid


async def test_same_key_twice_is_recorded_once_and_other_keys_still_count() -> None:
    provider = await SqliteProvider.in_memory_async()
    runtime = AsyncRuntime(provider, RuntimeOptions(dispatcher_poll_interval_ms=50))

    @runtime.register_orchestration("Votes")
    def votes(ctx, _):
        ctx.set_custom_status("voting")
        first = yield ctx.wait_for_event("vote")
        second = yield ctx.wait_for_event("vote")
        return [first, second]

    await runtime.start()
    try:
        client = AsyncClient(provider)
        iid = uid("votes-once")
        await client.start_orchestration(iid, "Votes", None)
        await client.wait_for_status_change(iid, 0, 20, TIMEOUT_MS)
        await client.raise_event(iid, "vote", "a", idempotency_key="cr/0")
        await client.raise_event(iid, "vote", "a-again", idempotency_key="cr/0")  # the retry
        await client.raise_event(iid, "vote", "b", idempotency_key="cr/1")
        result = await client.wait_for_orchestration(iid, TIMEOUT_MS)
        assert result.status == "Completed", result
        assert result.output == ["a", "b"]
        history = await client.read_execution_history(iid, 1)
        assert [e.kind for e in history].count("ExternalEvent") == 2
    finally:
        await runtime.shutdown(5000)
        await provider.close()


async def test_events_without_key_are_never_deduplicated() -> None:
    provider = await SqliteProvider.in_memory_async()
    runtime = AsyncRuntime(provider, RuntimeOptions(dispatcher_poll_interval_ms=50))

    @runtime.register_orchestration("Twice")
    def twice(ctx, _):
        ctx.set_custom_status("ready")
        first = yield ctx.wait_for_event("go")
        second = yield ctx.wait_for_event("go")
        return [first, second]

    await runtime.start()
    try:
        client = AsyncClient(provider)
        iid = uid("twice")
        await client.start_orchestration(iid, "Twice", None)
        await client.wait_for_status_change(iid, 0, 20, TIMEOUT_MS)
        await client.raise_event(iid, "go", 1)
        await client.raise_event(iid, "go", 1)
        result = await client.wait_for_orchestration(iid, TIMEOUT_MS)
        assert result.output == [1, 1]
    finally:
        await runtime.shutdown(5000)
        await provider.close()


async def test_empty_idempotency_key_is_rejected() -> None:
    provider = await SqliteProvider.in_memory_async()
    try:
        with pytest.raises(ValueError):
            await AsyncClient(provider).raise_event("x", "go", 1, idempotency_key="")
    finally:
        await provider.close()
