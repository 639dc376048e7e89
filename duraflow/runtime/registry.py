"""Registrations of one runtime: orchestrations by name and semantic version, activities.

Unlike duroxide-python's process-global table, registrations belong to their ``Runtime``:
two runtimes in one process can register different code under the same name.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from duraflow.core.limits import check_name
from duraflow.core.replay import OrchestrationFn
from duraflow.core.tasks import SYSCALL_PREFIX
from duraflow.core.version import SemVer

DEFAULT_VERSION = "1.0.0"
ActivityFn = Callable[..., Any]
#: Upgrade policies for executions pinned to a draining build (docs/rollouts.md): move once
#: this code reproduces the execution's history, move without a replay, or never move.
VERIFIED, AUTO, PINNED = "verified", "auto", "pinned"
UPGRADE_POLICIES = (VERIFIED, AUTO, PINNED)
DEFAULT_UPGRADE = VERIFIED


class OrchestrationRegistry:
    def __init__(self) -> None:
        self._by_name: dict[str, dict[SemVer, OrchestrationFn]] = {}
        self._upgrade: dict[tuple[str, SemVer], str] = {}

    def register(
        self, name: str, version: str, fn: OrchestrationFn, upgrade: str = DEFAULT_UPGRADE
    ) -> None:
        check_name("orchestration name", name)
        if upgrade not in UPGRADE_POLICIES:
            raise ValueError(f"orchestration {name!r}: upgrade must be one of "
                             f"{', '.join(map(repr, UPGRADE_POLICIES))}, got {upgrade!r}")
        if not callable(fn):
            raise TypeError(f"orchestration {name!r} must be a callable, got {fn!r}")
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            raise TypeError(
                f"orchestration {name!r} is async; orchestrations are generator functions "
                "(def + yield) so they can be replayed deterministically"
            )
        semver = SemVer(version)
        versions = self._by_name.setdefault(name, {})
        if semver not in versions:  # first registration of a version wins
            versions[semver] = fn
            self._upgrade[(name, semver)] = upgrade

    def resolve(self, name: str, version: str | None) -> tuple[str, OrchestrationFn] | None:
        """(exact version text, function); ``None`` version means the latest registered."""
        versions = self._by_name.get(name)
        if not versions:
            return None
        if version is None or version == "":
            latest = max(versions)
            return latest.text, versions[latest]
        try:
            wanted = SemVer(version)
        except ValueError:
            return None
        fn = versions.get(wanted)
        return None if fn is None else (version, fn)

    def lookup(self, name: str, version: str) -> OrchestrationFn | None:
        found = self.resolve(name, version or None)
        return None if found is None else found[1]

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def upgrade_policy(self, name: str, version: str) -> str | None:
        """The ``upgrade=`` of a registered version (None: not registered)."""
        try:
            return self._upgrade.get((name, SemVer(version)))
        except ValueError:
            return None

    def upgrades(self) -> list[tuple[str, str, str]]:
        """``(name, version, policy)`` of every registration that lets executions pinned to
        a draining build move to this runtime's build (``verified`` and ``auto``)."""
        return [(name, semver.text, policy) for (name, semver), policy
                in sorted(self._upgrade.items()) if policy != PINNED]

    def versions(self) -> dict[str, tuple[str, ...]]:
        """Each registered name with its versions, ascending (for the worker registry)."""
        return {
            name: tuple(v.text for v in sorted(self._by_name[name])) for name in self.names()
        }


class ActivityRegistry:
    def __init__(self) -> None:
        self._fns: dict[str, ActivityFn] = {}

    def register(self, name: str, fn: ActivityFn) -> None:
        check_name("activity name", name)
        if name.startswith(SYSCALL_PREFIX):
            raise ValueError(f"activity names starting with {SYSCALL_PREFIX!r} are reserved")
        if not callable(fn):
            raise TypeError(f"activity {name!r} must be a callable, got {fn!r}")
        self._fns[name] = fn

    def get(self, name: str) -> ActivityFn | None:
        return self._fns.get(name)

    def names(self) -> list[str]:
        return sorted(self._fns)

    @staticmethod
    def is_async(fn: ActivityFn) -> bool:
        return asyncio.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
        )
