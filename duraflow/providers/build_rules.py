"""The rules of builds both providers apply (docs/rollouts.md), written once.

Which states a build moves between and when, what ``move_instance`` refuses and how, and how
a row becomes a ``BuildInfo``: SQLite and PostgreSQL must not drift apart on any of it. The
SQL that applies the rules is each provider's own (``sqlite/builds.py``,
``postgres/builds.py`` and the two upgrade functions).

States: a runtime whose build the store has never seen registers it as ``current`` (the
previous current build starts ``draining``) or, with auto-promote off, as ``pending``.
``set_current_build`` makes any known build current (the previous one drains: a rollback is
promoting the old build again); ``drain_build`` makes a current or pending build draining. A
draining build becomes ``retired`` once nothing is pinned to it (no running execution, no
activity row) and it has been draining for ``retire_after_ms``; a retired build that
something is pinned to again (``move_instance``, a turn that was in flight when it started
draining) goes back to draining. Live workers do not keep a build from retiring: retirement
is what tells an operator that they may go.
"""

from __future__ import annotations

from typing import Any

from duraflow.core.builds import BuildState
from duraflow.core.models import BuildInfo
from duraflow.providers.errors import ProviderError

#: Outcomes of ``finish_upgrade``: moved to the new build, diverged (stays, recorded), busy
#: (an activity of it started meanwhile: left as it was, tried again later), gone (no longer
#: running on the old build: nothing to do).
MOVED, DIVERGED, BUSY, GONE = "moved", "diverged", "busy", "gone"
#: Of those, the ones recorded as the verdict of the build pair.
VERDICTS = (MOVED, DIVERGED)

CURRENT, DRAINING, RETIRED, PENDING = (BuildState.CURRENT.value, BuildState.DRAINING.value,
                                       BuildState.RETIRED.value, BuildState.PENDING.value)
#: States whose pinned executions a current build's runtimes may take over (upgrade).
MOVABLE_FROM = (DRAINING, RETIRED)
#: States ``drain_build`` changes (a retired build stays retired; draining stays draining).
DRAINABLE = (CURRENT, PENDING)


def adopted_state(any_current: bool) -> str:
    """The state ``adopt_unpinned`` registers an unknown build in: current when no build
    is (it is the code that runs the store's work), else pending (a promotion is the
    caller's decision, not a side effect of recording what old runtimes run)."""
    return PENDING if any_current else CURRENT


def not_running(operation: str, instance_id: str, status: str | None) -> ProviderError:
    """``move_instance`` of an instance whose current execution is not running: only a
    running execution is pinned (a finished one keeps the build that ran it, and the next
    execution after a continue-as-new pins on its own first turn)."""
    return ProviderError(
        operation, f"instance '{instance_id}' is {status or 'not started'}: only an instance "
        "whose current execution is running can move to another build", retryable=False)


def build_info(row: Any) -> BuildInfo:
    """``row`` = (build_id, state, first_seen_at, live_workers, pinned_running)."""
    return BuildInfo(build_id=str(row[0]), state=str(row[1]), live_workers=int(row[3]),
                     pinned_running=int(row[4]), first_seen_at=int(row[2]))
