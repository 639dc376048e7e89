"""Activity execution: async and blocking activities, the client, ``ActivityContext``."""

from __future__ import annotations

import asyncio
import threading
import time

from .support import TIMEOUT_MS, TIMEOUT_S, completed, uid


def test_async_activity_result(start_runtime, client):
    def register(rt):
        @rt.register_activity("AsyncDouble")
        async def async_double(ctx, n):
            await asyncio.sleep(0.01)
            return {"doubled": 2 * n, "instance": ctx.instance_id}

        @rt.register_orchestration("UsesAsync")
        def uses_async(ctx, n):
            results = yield ctx.all([ctx.schedule_activity("AsyncDouble", i) for i in range(n)])
            return [r["ok"]["doubled"] for r in results]

    start_runtime(register)
    iid = uid("async-activity")
    client.start_orchestration(iid, "UsesAsync", 4)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [0, 2, 4, 6]


def test_async_activity_error_is_reported(start_runtime, client):
    def register(rt):
        @rt.register_activity("AsyncBroken")
        async def async_broken(ctx, _):
            await asyncio.sleep(0)
            raise LookupError("async activity lost its key")

        @rt.register_orchestration("UsesAsyncBroken")
        def uses(ctx, _):
            try:
                yield ctx.schedule_activity("AsyncBroken", None)
            except Exception as e:
                return str(e)

    start_runtime(register)
    iid = uid("async-broken")
    client.start_orchestration(iid, "UsesAsyncBroken", None)
    output = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert "async activity lost its key" in output
    assert "LookupError" in output


def test_blocking_sync_activity_does_not_stall_other_orchestrations(start_runtime, client):
    release = threading.Event()
    blocked = threading.Event()

    def register(rt):
        def blocking(ctx, _):
            blocked.set()
            release.wait(TIMEOUT_S)  # blocks its worker thread, like time.sleep would
            return "unblocked"

        rt.register_activity("Blocking", blocking)
        rt.register_activity("Quick", lambda ctx, n: n + 1)

        @rt.register_orchestration("Blocked")
        def blocked_orch(ctx, _):
            return (yield ctx.schedule_activity("Blocking", None))

        @rt.register_orchestration("Quick")
        def quick(ctx, n):
            a = yield ctx.schedule_activity("Quick", n)
            yield ctx.schedule_timer(10)
            return (yield ctx.schedule_activity("Quick", a))

    start_runtime(register)
    slow_id, quick_id = uid("blocked"), uid("quick")
    try:
        client.start_orchestration(slow_id, "Blocked", None)
        assert blocked.wait(TIMEOUT_S)
        client.start_orchestration(quick_id, "Quick", 1)
        assert completed(client.wait_for_orchestration(quick_id, TIMEOUT_MS)) == 3
        assert client.get_status(slow_id).status == "Running"
        assert not release.is_set()
    finally:
        release.set()
    assert completed(client.wait_for_orchestration(slow_id, TIMEOUT_MS)) == "unblocked"


def test_sync_activities_run_concurrently(start_runtime, client):
    """Four sync activities meet at a barrier: it only opens if all four run at once."""
    barrier = threading.Barrier(4, timeout=TIMEOUT_S)

    def register(rt):
        def meet(ctx, n):
            barrier.wait()
            time.sleep(0.01)
            return n

        rt.register_activity("Meet", meet)

        @rt.register_orchestration("Meeting")
        def meeting(ctx, count):
            return (yield ctx.all_typed([ctx.schedule_activity("Meet", i) for i in range(count)]))

    start_runtime(register)
    iid = uid("meeting")
    client.start_orchestration(iid, "Meeting", 4)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == [0, 1, 2, 3]


def test_activity_get_client_starts_another_orchestration(start_runtime, client):
    iid = uid("spawner")
    spawned_id = f"{iid}-spawned"

    def register(rt):
        def spawn(ctx, target):
            ctx.get_client().start_orchestration(target, "Spawned", {"by": ctx.instance_id})
            return target

        rt.register_activity("Spawn", spawn)

        @rt.register_orchestration("Spawned")
        def spawned(ctx, data):
            return {"spawned_by": data["by"]}
            yield

        @rt.register_orchestration("Spawner")
        def spawner(ctx, target):
            return (yield ctx.schedule_activity("Spawn", target))

    start_runtime(register)
    client.start_orchestration(iid, "Spawner", spawned_id)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == spawned_id
    assert completed(client.wait_for_orchestration(spawned_id, TIMEOUT_MS)) == {
        "spawned_by": iid}


def test_activity_context_fields(start_runtime, client):
    def register(rt):
        def introspect(ctx, _):
            return {
                "instance_id": ctx.instance_id,
                "execution_id": ctx.execution_id,
                "orchestration_name": ctx.orchestration_name,
                "orchestration_version": ctx.orchestration_version,
                "activity_name": ctx.activity_name,
                "worker_id": ctx.worker_id,
                "session_id": ctx.session_id,
                "tag": ctx.tag(),
                "cancelled": ctx.is_cancelled(),
            }

        rt.register_activity("Introspect", introspect)

        @rt.register_orchestration_versioned("Inspector", "3.1.4")
        def inspector(ctx, generation):
            if generation == 0:
                return (yield ctx.continue_as_new(1))
            return (yield ctx.schedule_activity("Introspect", None))

    start_runtime(register)
    iid = uid("actx")
    client.start_orchestration(iid, "Inspector", 0)
    fields = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    worker_id = fields.pop("worker_id")
    assert fields == {
        "instance_id": iid,
        "execution_id": 2,
        "orchestration_name": "Inspector",
        "orchestration_version": "3.1.4",
        "activity_name": "Introspect",
        "session_id": None,
        "tag": None,
        "cancelled": False,
    }
    assert isinstance(worker_id, str) and worker_id
