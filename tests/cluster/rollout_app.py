"""The two builds of one app that the rollout tests deploy (``--app``): ``v1``, and ``v2``
in which ``Changed`` and ``Looper`` gained a step while ``Same`` did not change.

Every orchestration runs one activity and waits for the event ``go``; ``Looper`` then
continues as new once. Activities report the build that ran them, so a test can tell which
code did what.
"""

from __future__ import annotations

from typing import Any


def _register(runtime: Any, build: str) -> None:
    def work(ctx: Any, value: Any) -> str:
        return f"{build}:{value}"

    def new_step(ctx: Any) -> Any:
        if build == "v2":  # the change v2 ships: a check before the work
            yield ctx.schedule_activity("Work", "check")

    def changed(ctx: Any, value: Any) -> Any:
        yield from new_step(ctx)
        done = yield ctx.schedule_activity("Work", value)
        return [done, (yield ctx.wait_for_event("go"))]

    def same(ctx: Any, value: Any) -> Any:
        done = yield ctx.schedule_activity("Work", value)
        return [done, (yield ctx.wait_for_event("go"))]

    def looper(ctx: Any, round_: int) -> Any:
        yield from new_step(ctx)
        done = yield ctx.schedule_activity("Work", round_)
        go = yield ctx.wait_for_event("go")
        if round_ < 1:
            return (yield ctx.continue_as_new(round_ + 1))
        return [done, go]

    runtime.register_activity("Work", work)
    runtime.register_orchestration("Changed", changed)
    runtime.register_orchestration("Same", same)
    runtime.register_orchestration("Looper", looper)


def register_v1(runtime: Any) -> None:
    _register(runtime, "v1")


def register_v2(runtime: Any) -> None:
    _register(runtime, "v2")
