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
