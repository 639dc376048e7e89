"""The orchestrations the CLI tests run, and the fixed set of instances they inspect."""

from __future__ import annotations

from typing import Any

from duraflow import Client, Runtime

from ..engine.support import TIMEOUT_MS, completed, failed, poll_until, uid, wait_for_custom_status

APPROVAL_STATUS = "waiting for approval"


def register_scenario(rt: Runtime) -> None:
    rt.register_activity("Work", lambda ctx, v: v)

    @rt.register_orchestration("Succeeds")
    def succeeds(ctx: Any, v: Any) -> Any:
        return (yield ctx.schedule_activity("Work", v))

    @rt.register_orchestration("Fails")
    def fails(ctx: Any, _: Any) -> Any:
        yield ctx.schedule_timer(1)
        raise ValueError("planned failure")

    @rt.register_orchestration("Approval")
    def approval(ctx: Any, _: Any) -> Any:
        ctx.set_custom_status(APPROVAL_STATUS)
        return (yield ctx.wait_for_event("approve"))

    @rt.register_orchestration("Inbox")
    def inbox(ctx: Any, _: Any) -> Any:
        ctx.set_custom_status("reading")
        return (yield ctx.dequeue_event("inbox"))

    @rt.register_orchestration("Root")
    def root(ctx: Any, iid: str) -> Any:
        return (yield ctx.schedule_sub_orchestration_with_id("Middle", f"{iid}-middle", iid))

    @rt.register_orchestration("Middle")
    def middle(ctx: Any, iid: str) -> Any:
        leaf = yield ctx.schedule_sub_orchestration_with_id("Succeeds", f"{iid}-leaf", "leaf")
        return f"middle({leaf})"

    @rt.register_orchestration("Loop")
    def loop(ctx: Any, n: int) -> Any:
        if n < 3:
            return (yield ctx.continue_as_new(n + 1))
        return n

    @rt.register_orchestration("GpuJob")
    def gpu_job(ctx: Any, _: Any) -> Any:
        return (yield ctx.schedule_activity("Work", "render").with_tag("gpu"))


def start_scenario(client: Client) -> dict[str, str]:
    """Start the fixed instances and wait until each is in its final state for the tests."""
    ids = {name: uid(name) for name in ("done", "bad", "waiting", "root", "loop", "gpu")}
    ids["middle"], ids["leaf"] = f"{ids['root']}-middle", f"{ids['root']}-leaf"
    client.start_orchestration(ids["done"], "Succeeds", {"v": 1})
    client.start_orchestration(ids["bad"], "Fails", None)
    client.start_orchestration(ids["waiting"], "Approval", None)
    client.start_orchestration(ids["root"], "Root", ids["root"])
    client.start_orchestration(ids["loop"], "Loop", 0)
    client.start_orchestration(ids["gpu"], "GpuJob", None)
    completed(client.wait_for_orchestration(ids["done"], TIMEOUT_MS))
    failed(client.wait_for_orchestration(ids["bad"], TIMEOUT_MS))
    assert completed(client.wait_for_orchestration(ids["root"], TIMEOUT_MS)) == "middle(leaf)"
    assert completed(client.wait_for_orchestration(ids["loop"], TIMEOUT_MS)) == 3
    wait_for_custom_status(client, ids["waiting"], APPROVAL_STATUS)
    poll_until(lambda: client.get_queue_depths().worker_queue == 1, "the gpu activity queued")
    return ids
