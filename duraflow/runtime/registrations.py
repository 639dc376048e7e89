"""The registration half of a runtime: ``register_orchestration*`` and ``register_activity*``.

Kept apart from the dispatchers so that code which only needs an app's registrations can
load an app without a store or a runtime: ``duraflow replay-check`` hands a bare
``Registrations`` to the app's ``register`` callable and replays histories against what it
registered. ``AsyncRuntime`` inherits it, so the two can never disagree on what registering
means. The signatures are duroxide-python's; ``upgrade=`` (keyword only) is Duraflow's
policy for executions pinned to a draining build (docs/rollouts.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from duraflow.runtime.registry import (
    DEFAULT_UPGRADE,
    DEFAULT_VERSION,
    ActivityRegistry,
    OrchestrationRegistry,
)

F = TypeVar("F", bound=Callable[..., Any])


class Registrations:
    """Orchestrations by name and version (with their upgrade policy) and activities."""

    def __init__(self) -> None:
        self.orchestrations = OrchestrationRegistry()
        self.activities = ActivityRegistry()

    @overload
    def register_activity(self, name: str, fn: None = None) -> Callable[[F], F]: ...
    @overload
    def register_activity(self, name: str, fn: F) -> F: ...

    def register_activity(self, name: str, fn: F | None = None) -> Any:
        if fn is not None:
            self.activities.register(name, fn)
            return fn

        def decorator(func: F) -> F:
            self.activities.register(name, func)
            return func

        return decorator

    register_activity_typed = register_activity

    @overload
    def register_orchestration(
        self, name: str, fn: None = None, *, upgrade: str = DEFAULT_UPGRADE
    ) -> Callable[[F], F]: ...
    @overload
    def register_orchestration(
        self, name: str, fn: F, *, upgrade: str = DEFAULT_UPGRADE
    ) -> F: ...

    def register_orchestration(
        self, name: str, fn: F | None = None, *, upgrade: str = DEFAULT_UPGRADE
    ) -> Any:
        """``upgrade``: what happens to executions of it pinned to a draining build:
        ``"verified"`` (move to the current build once it reproduces their history),
        ``"auto"`` (move without a replay) or ``"pinned"`` (never move by themselves)."""
        return self.register_orchestration_versioned(name, DEFAULT_VERSION, fn, upgrade=upgrade)

    register_orchestration_typed = register_orchestration

    @overload
    def register_orchestration_versioned(
        self, name: str, version: str, fn: None = None, *, upgrade: str = DEFAULT_UPGRADE
    ) -> Callable[[F], F]: ...
    @overload
    def register_orchestration_versioned(
        self, name: str, version: str, fn: F, *, upgrade: str = DEFAULT_UPGRADE
    ) -> F: ...

    def register_orchestration_versioned(
        self, name: str, version: str, fn: F | None = None, *, upgrade: str = DEFAULT_UPGRADE
    ) -> Any:
        if fn is not None:
            self.orchestrations.register(name, version, fn, upgrade)
            return fn

        def decorator(func: F) -> F:
            self.orchestrations.register(name, version, func, upgrade)
            return func

        return decorator

    register_orchestration_versioned_typed = register_orchestration_versioned
