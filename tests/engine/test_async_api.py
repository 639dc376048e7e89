"""The asyncio API: ``AsyncRuntime`` + ``AsyncClient`` on a provider opened in the loop."""

from __future__ import annotations

import asyncio

import pytest

from duraflow import AsyncClient, AsyncRuntime, OperationTimedOut, RuntimeOptions, SqliteProvider

from .support import TIMEOUT_MS, uid


async def test_async_hello_world_and_wait_for_orchestration():
    provider = await SqliteProvider.in_memory_async()
    runtime = AsyncRuntime(provider, RuntimeOptions(dispatcher_poll_interval_ms=50))

    @runtime.register_activity("Greet")
    async def greet(ctx, name):
        await asyncio.sleep(0)
        return f"Hello, {name}!"

    @runtime.register_orchestration("AsyncHello")
    def hello(ctx, name):
        greeting = yield ctx.schedule_activity("Greet", name)
        ctx.set_custom_status("greeted")
        yield ctx.wait_for_event("done")
        return greeting

    await runtime.start()
    try:
        client = AsyncClient(provider)
        iid = uid("async-hello")
        await client.start_orchestration(iid, "AsyncHello", "async world")
        changed = await client.wait_for_status_change(iid, 0, 20, TIMEOUT_MS)
        assert changed.custom_status == "greeted"
        await client.raise_event(iid, "done", None)
        result = await client.wait_for_orchestration(iid, TIMEOUT_MS)
        assert result.status == "Completed", result
        assert result.output == "Hello, async world!"
        assert await client.wait_for_orchestration_typed(iid, TIMEOUT_MS) == (
            "Hello, async world!")
        assert runtime.metrics_snapshot() is not None
        with pytest.raises(OperationTimedOut):
            await client.wait_for_orchestration(uid("never"), 200)
    finally:
        await runtime.shutdown(5000)
        await provider.close()
    assert runtime.metrics_snapshot() is None


async def test_async_runtime_as_context_manager():
    provider = await SqliteProvider.in_memory_async()
    try:
        runtime = AsyncRuntime(provider, RuntimeOptions(dispatcher_poll_interval_ms=50))
        runtime.register_orchestration("Plain", lambda ctx, x: x * 2)
        async with runtime:
            client = AsyncClient(provider)
            iid = uid("async-cm")
            await client.start_orchestration(iid, "Plain", 21)
            result = await client.wait_for_orchestration(iid, TIMEOUT_MS)
            assert (result.status, result.output) == ("Completed", 42)
        assert runtime.metrics_snapshot() is None
    finally:
        await provider.close()
