"""Apps ``duraflow replay-check --app`` loads in the CLI tests: the scenario's code as it
runs (``same``), changed compatibly (``refactored``) and incompatibly (``inserted``)."""

from __future__ import annotations

from typing import Any

from .scenario import register_scenario


def same(rt: Any) -> None:
    register_scenario(rt)


def refactored(rt: Any) -> None:
    """``Succeeds`` written differently, making the same decisions."""
    register_scenario(rt)

    @rt.register_orchestration_versioned("Succeeds", "2.0.0")
    def unused(ctx: Any, v: Any) -> Any:  # another version does not disturb the check
        return v


def inserted(rt: Any) -> None:
    """``Succeeds`` validates first: a new step before the recorded one."""
    rt.register_activity("Validate", lambda ctx, v: v)

    @rt.register_orchestration("Succeeds")
    def succeeds(ctx: Any, v: Any) -> Any:
        yield ctx.schedule_activity("Validate", v)
        return (yield ctx.schedule_activity("Work", v))

    register_scenario(rt)  # the rest as before (a second Succeeds 1.0.0 is ignored)


def raises(rt: Any) -> None:
    raise RuntimeError("no database configured")


def empty(rt: Any) -> None:
    rt.register_activity("Work", lambda ctx, v: v)
