"""Handlers the worker processes of the multi-process tests register (``--app``)."""

from __future__ import annotations

import time
from typing import Any

STEPS = 3


def register(runtime: Any) -> None:
    def step(ctx: Any, n: int) -> dict[str, Any]:
        time.sleep(0.005)  # long enough that a SIGKILL lands mid-activity now and then
        return {"n": n + 1, "worker": ctx.worker_id.split("-", 2)[2]}

    def pipeline(ctx: Any, start: int) -> Any:
        value, workers = start, []
        for _ in range(STEPS):
            result = yield ctx.schedule_activity("Step", value)
            value = result["n"]
            workers.append(result["worker"])
        return {"value": value, "workers": workers}

    runtime.register_activity("Step", step)
    runtime.register_orchestration("Pipeline", pipeline)


def register_sessions(runtime: Any) -> None:
    """Session work for the multi-process tests: each step reports where and when it ran."""

    def session_step(ctx: Any, n: int) -> dict[str, Any]:
        started = time.time()
        time.sleep(0.02)  # long enough for two workers' spans to overlap if affinity broke
        return {"n": n, "worker": ctx.worker_id.split("-", 2)[2], "session": ctx.session_id,
                "start": started, "end": time.time()}

    def session_pipeline(ctx: Any, inp: dict[str, Any]) -> Any:
        steps = []
        for n in range(inp["steps"]):
            steps.append((yield ctx.schedule_activity_on_session("SessionStep", n,
                                                                 inp["session"])))
        return steps

    def wait_for_cancel(ctx: Any, marker: str) -> str:
        """Announces its start (``marker.started``), runs until cancelled, then writes when it
        noticed to ``marker``."""
        with open(marker + ".started", "w") as out:
            out.write(repr(time.time()))
        while not ctx.wait_cancelled(0.01):
            pass
        with open(marker, "w") as out:
            out.write(repr(time.time()))
        return "cancelled"

    def abandoned(ctx: Any, marker: str) -> Any:
        winner = yield ctx.race(ctx.schedule_activity("WaitForCancel", marker),
                                ctx.wait_for_event("drop"))
        return winner["index"]

    runtime.register_activity("SessionStep", session_step)
    runtime.register_orchestration("SessionPipeline", session_pipeline)
    runtime.register_activity("WaitForCancel", wait_for_cancel)
    runtime.register_orchestration("Abandoned", abandoned)
