"""The seam between the task tree and the replay that drives it.

A task node needs little from its replay: to record the action it stands for (or match it
against recorded history), to be resolved when its completion, event or queue message
arrives, and, when the action is new, to have its work written. ``Scheduler`` names exactly
that, as intentions rather than collections, so the nodes (``tasks.py``) never see how the
replay keeps its waiters and import this module, not ``replay.py``: the core's modules form
layers with no import circle (an import-linter contract in ``pyproject.toml`` keeps it so).
``Replay`` implements the protocol; nothing else needs to.
"""

from __future__ import annotations

from typing import Any, Protocol

from duraflow.core.errors import ErrorDetails
from duraflow.core.events import HistoryEvent


class Waiter(Protocol):
    """A task the replay resolves when what it waits for arrives (a leaf of the task tree)."""

    def succeed(self, sched: Scheduler, value: Any) -> None: ...

    def fail(self, sched: Scheduler, details: ErrorDetails) -> None: ...


class Scheduler(Protocol):
    """What a task node may ask of the replay that owns it."""

    @property
    def now_ms(self) -> int:
        """The turn's time, from history or injected by the runtime (never the clock)."""
        ...

    def emit(
        self, kind: str, data: dict[str, Any], source: int | None = None
    ) -> tuple[HistoryEvent, bool]:
        """Record the action a node stands for, or match it against recorded history.

        Returns the event and whether it is new; only a new action's work is written, and a
        mismatch raises ``NondeterminismError``."""
        ...

    # ─── Waiting ────────────────────────────────────────────────────────────

    def await_completion(self, event_id: int, waiter: Waiter) -> None:
        """Resolve ``waiter`` when the completion of event ``event_id`` is applied."""
        ...

    def forget_completion(self, event_id: int) -> bool:
        """Stop waiting for ``event_id``'s completion (a late one is then recorded and
        ignored). False if nothing waited for it."""
        ...

    def await_event(self, name: str, waiter: Waiter) -> None:
        """Resolve ``waiter`` with the next external event ``name`` (first come, first served)."""
        ...

    def forget_event(self, name: str, waiter: Waiter) -> bool:
        """Withdraw ``waiter`` from event ``name``; False if it was not waiting."""
        ...

    def await_queue(self, name: str, waiter: Waiter) -> None:
        """Resolve ``waiter`` with the next message of queue ``name``, at once if one is
        buffered."""
        ...

    def forget_queue(self, name: str, waiter: Waiter) -> bool:
        """Withdraw ``waiter`` from queue ``name``; False if it was not waiting."""
        ...

    # ─── Work of a new action (called only when ``emit`` said it is new) ─────

    def default_child_id(self) -> str:
        """The instance id of a sub-orchestration started by the next new action."""
        ...

    def schedule_activity(
        self,
        event_id: int,
        name: str,
        input: str,
        session_id: str | None,
        tag: str | None,
        retry: bool,
    ) -> None: ...

    def cancel_activity(self, event_id: int) -> None: ...

    def new_guid(self) -> str: ...

    def complete_inline(self, event_id: int, value: Any) -> None:
        """Record the completion of ``event_id`` in this turn (a deterministic value)."""
        ...

    def schedule_timer(self, event_id: int, fire_at_ms: int) -> None: ...

    def start_child(
        self, event_id: int, child_id: str, name: str, input: str, version: str | None
    ) -> None: ...

    def cancel_child(self, child_id: str, reason: str) -> None: ...

    def start_detached(
        self, instance_id: str, name: str, input: str, version: str | None
    ) -> None: ...
