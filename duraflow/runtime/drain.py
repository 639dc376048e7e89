"""Draining a runtime in place: what an autoscaler asks of the pods it is about to remove.

A StatefulSet removes its highest ordinals, so before shrinking a pool the operator asks
exactly those pods to drain, through the store (``AsyncClient.drain_workers``, keyed by the
``worker_node_id``: the pod name). Each runtime learns of it from its heartbeat's answer and
then, without stopping:

1. takes no new work: its fetch loops wait, it accepts no hand-off and claims no activity on
   the fast path (so it claims no new session either);
2. lets what runs finish (turns, activities, their results reported as usual);
3. once nothing runs, releases its sessions (their waiting activities go to other pods at
   once, as on a graceful shutdown) and reports ``drain_state="drained"``.

The operator removes the pod once the store says the node is idle. A withdrawn request
(demand came back) opens the gates again at the next heartbeat. The pod's graceful SIGTERM
hand-over stays the second line of defence.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

DRAINING = "draining"
DRAINED = "drained"


class Gate:
    """Open while the runtime takes new work; a fetch loop waits at a closed gate."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()

    @property
    def closed(self) -> bool:
        return not self._open.is_set()

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    async def wait_open(self, stopping: asyncio.Event) -> None:
        """Until the gate opens or ``stopping`` is set."""
        if self._open.is_set():
            return
        waits = [asyncio.ensure_future(self._open.wait()), asyncio.ensure_future(stopping.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await wait


class Drainable(Protocol):
    """A dispatcher that can stop taking new work and say when nothing of it runs."""

    gate: Gate

    @property
    def busy(self) -> bool: ...

    def wake(self) -> None:
        """Let its fetch loop look for work again (the gate opened)."""


class DrainControl:
    """Applies the store's answer to the runtime's dispatchers; the heartbeat reports what
    ``update`` returns (None, ``draining`` or ``drained``)."""

    def __init__(self, dispatchers: Sequence[Drainable],
                 release_sessions: Callable[[], Awaitable[None]]) -> None:
        self._dispatchers = list(dispatchers)
        self._release_sessions = release_sessions
        self.state: str | None = None

    async def update(self, requested: bool) -> str | None:
        if not requested:
            if self.state is not None:
                for dispatcher in self._dispatchers:
                    dispatcher.gate.open()
                    dispatcher.wake()
                self.state = None
            return None
        for dispatcher in self._dispatchers:
            dispatcher.gate.close()
        if any(dispatcher.busy for dispatcher in self._dispatchers):
            self.state = DRAINING
        else:
            if self.state != DRAINED:
                await self._release_sessions()
            self.state = DRAINED
        return self.state
