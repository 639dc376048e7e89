"""The worker app of the operator tests (``duraflow worker --app tests.operator.app:register``).

Mirrors the example image's orchestrations (Hello, Approval, Countdown) plus one whose
activity fails, so the CR's Failed path is real.
"""

from __future__ import annotations

import os
import time
from typing import Any


def register(runtime: Any) -> None:
    def say_hello(_ctx: Any, name: str) -> str:
        return f"Hello, {name}!"

    def explode(_ctx: Any, what: str) -> None:
        raise RuntimeError(f"boom: {what}")

    def hello(ctx: Any, name: str) -> Any:
        return (yield ctx.schedule_activity("SayHello", name))

    def approval(ctx: Any, _input: Any) -> Any:
        ctx.set_custom_status("waiting for approval")
        decision = yield ctx.wait_for_event("approve")
        ctx.set_custom_status("approved")
        return decision

    def countdown(ctx: Any, n: int) -> Any:
        for remaining in range(int(n), 0, -1):
            ctx.set_custom_status(str(remaining))
            yield ctx.schedule_timer(1000)
        return "liftoff"

    def fails(ctx: Any, what: str) -> Any:
        yield ctx.schedule_activity("Explode", what)
        return "unreachable"

    def gpu_sleep(ctx: Any, seconds: Any) -> str:
        """Sleeps ``seconds``, or (a path) until the test creates that file, having created
        ``<path>.<pod>`` as it starts (the test sees where it runs)."""
        pod = str(ctx.worker_id).split("-", 2)[2]  # work-<slot>-<pod>: the pod's name
        if isinstance(seconds, str):
            with open(f"{seconds}.{pod}", "a"):
                pass
            deadline = time.monotonic() + 120
            while not os.path.exists(seconds) and time.monotonic() < deadline:
                time.sleep(0.02)
        else:
            time.sleep(float(seconds))
        return pod

    def tagged_job(ctx: Any, job: Any) -> Any:
        """``GpuSleep`` tagged ``job["tag"]``, on ``job["session"]`` if set (the elastic
        pools' tests, tests/operator/test_autoscaling.py, and bench/autoscale.py)."""
        task = (ctx.schedule_activity_on_session("GpuSleep", job["seconds"], job["session"])
                if job.get("session") else ctx.schedule_activity("GpuSleep", job["seconds"]))
        return (yield task.with_tag(job["tag"]))

    runtime.register_activity("GpuSleep", gpu_sleep)
    runtime.register_orchestration("TaggedJob", tagged_job)
    runtime.register_activity("SayHello", say_hello)
    runtime.register_activity("Explode", explode)
    runtime.register_orchestration("Hello", hello)
    runtime.register_orchestration("Approval", approval)
    runtime.register_orchestration("Countdown", countdown)
    runtime.register_orchestration("Fails", fails)


def register_late(runtime: Any) -> None:
    """A second app: the orchestration 'Late' exists only once this worker runs."""

    def late(_ctx: Any, value: Any) -> Any:
        return {"late": value}
        yield  # a generator

    runtime.register_orchestration("Late", late)
