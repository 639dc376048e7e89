"""Capability filtering: never replay a history this engine version may not understand.

Each execution is pinned to the engine version written in its ``OrchestrationStarted`` event
(``HistoryEvent.engine_version``); stores record the pin when that event is stored and only
hand a runtime instances pinned inside its ``supported_replay_versions`` (default: every
version up to this engine's own). During a rolling upgrade old pods therefore leave alone
the executions new pods started, and new pods may opt out of old histories. This module is
the runtime's re-check after a fetch, for a store that could not filter (or a pin written
after the fetch chose): an incompatible turn is given back with a delay, and its attempt
counts, so a history no live worker can run ends as poison instead of looping forever.
"""

from __future__ import annotations

import logging

from duraflow.core.events import HistoryEvent
from duraflow.core.version import pack
from duraflow.providers.items import OrchestrationItem
from duraflow.runtime.turns import Abandon

log = logging.getLogger("duraflow.runtime")

#: How long an incompatible instance waits before another fetch may pick it.
INCOMPATIBLE_RETRY_MS = 1_000


def pinned_version(history: list[HistoryEvent] | None) -> int | None:
    """The packed engine version of the execution's first event, None if unknown."""
    if not history or history[0].event_id != 1:
        return None
    try:
        return pack(history[0].engine_version)
    except ValueError:
        return None


def replayable(history: list[HistoryEvent] | None, replay_range: tuple[int, int]) -> bool:
    pinned = pinned_version(history)
    return pinned is None or replay_range[0] <= pinned <= replay_range[1]


def incompatible(item: OrchestrationItem, history: list[HistoryEvent] | None) -> Abandon:
    version = history[0].engine_version if history else "?"
    log.warning("instance %r was started by engine %s, outside this runtime's "
                "supported_replay_versions; leaving it to a compatible worker",
                item.instance_id, version)
    return Abandon(INCOMPATIBLE_RETRY_MS, f"pinned to engine version {version}")
