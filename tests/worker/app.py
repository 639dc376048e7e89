"""Handlers the ``duraflow worker`` processes of these tests register (``--app``).

``Sleep`` is a *sync* activity (it runs in a thread, like most real activities): it writes a
marker file named after the worker as it starts, so a test can wait for "the activity is
running on worker X" instead of sleeping, then sleeps for its input's seconds.
"""

from __future__ import annotations

import os
import pathlib
import time
from typing import Any


def register(runtime: Any) -> None:
    def echo(ctx: Any, value: Any) -> Any:
        return value

    def fail(ctx: Any, message: str) -> None:
        raise ValueError(message)

    def sleep(ctx: Any, spec: dict[str, Any]) -> str:
        node = os.environ["TEST_WORKER_NAME"]
        pathlib.Path(spec["markers"], f"{node}-started").write_text(ctx.instance_id)
        time.sleep(spec["seconds"])
        return node

    def succeed(ctx: Any, value: Any) -> Any:
        return (yield ctx.schedule_activity("Echo", value))

    def failing(ctx: Any, message: str) -> Any:
        return (yield ctx.schedule_activity("Fail", message))

    def slow(ctx: Any, spec: dict[str, Any]) -> Any:
        worker = yield ctx.schedule_activity("Sleep", spec)
        yield ctx.schedule_timer(spec.get("timer_ms", 0))
        return worker

    runtime.register_activity("Echo", echo)
    runtime.register_activity("Fail", fail)
    runtime.register_activity("Sleep", sleep)
    runtime.register_orchestration("Succeed", succeed)
    runtime.register_orchestration("Failing", failing)
    runtime.register_orchestration("Slow", slow)


def broken(runtime: Any) -> None:
    """An app whose registration fails (as when a setting it needs is missing)."""
    raise RuntimeError("API_KEY is not set")


not_callable = 42

