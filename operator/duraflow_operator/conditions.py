"""Conditions in the Kubernetes convention, and the operator's Kubernetes Events.

A condition changes its ``lastTransitionTime`` only when its status flips, so re-running a
reconcile (level-based, at any time) leaves identical conditions and therefore writes
nothing. Reasons are CamelCase and specific, since users and tools match on them.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

# Condition types
READY = "Ready"
ACCEPTED = "Accepted"
DATABASE = "DatabaseReachable"
PROGRESSING = "Progressing"


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ms_to_iso(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str, status: bool | None, reason: str, message: str, generation: int | None
) -> dict[str, Any]:
    value = "Unknown" if status is None else ("True" if status else "False")
    result: dict[str, Any] = {"type": type_, "status": value, "reason": reason,
                              "message": message[:32768]}
    if generation is not None:
        result["observedGeneration"] = generation
    return result


def merge_conditions(
    current: Iterable[Mapping[str, Any]] | None, updates: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """``current`` with each update replacing the condition of its type; a condition keeps
    its ``lastTransitionTime`` unless its status changed. Order: existing types first."""
    merged: dict[str, dict[str, Any]] = {str(c.get("type")): dict(c) for c in current or ()}
    for update in updates:
        kind = str(update["type"])
        old = merged.get(kind)
        new = dict(update)
        if old is not None and old.get("status") == new["status"] and old.get(
            "lastTransitionTime"
        ):
            new["lastTransitionTime"] = old["lastTransitionTime"]
        else:
            new["lastTransitionTime"] = now_iso()
        merged[kind] = new
    return list(merged.values())


def find(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for item in conditions or ():
        if item.get("type") == type_:
            return item
    return None


def same_ignoring_time(
    a: Iterable[Mapping[str, Any]] | None, b: Iterable[Mapping[str, Any]] | None
) -> bool:
    def strip(items: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
        return sorted(({k: v for k, v in c.items() if k != "lastTransitionTime"}
                       for c in items or ()), key=lambda c: str(c.get("type")))

    return strip(a) == strip(b)
