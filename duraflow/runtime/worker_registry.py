"""The runtime's entry in the worker registry: who is running, with what code, and where.

Every runtime writes one row describing itself (worker_node_id, host, pid, tag filter, the
orchestrations and activities it registered, concurrency, sessions held) and rewrites it
every ``worker_heartbeat_interval_ms`` with a single UPSERT. Readers (``list_workers``, the
Kubernetes operator, the admin CLI) count a runtime unseen for three intervals as gone, so
a SIGKILLed pod drops out within seconds while a graceful shutdown deletes its row at once.
Registrations are read at ``start()``; registering after start is not reflected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace

from duraflow.core.models import WorkerInfo
from duraflow.providers.protocol import Provider
from duraflow.runtime.options import RuntimeOptions
from duraflow.runtime.registry import ActivityRegistry, OrchestrationRegistry

log = logging.getLogger("duraflow.runtime")


def describe_runtime(
    worker_node_id: str,
    runtime_id: str,
    options: RuntimeOptions,
    orchestrations: OrchestrationRegistry,
    activities: ActivityRegistry,
    started_at_ms: int,
    sessions_held: int = 0,
) -> WorkerInfo:
    """The registry row of a runtime (``last_seen_at_ms`` is set by the store)."""
    tag_filter = options.tag_filter
    return WorkerInfo(
        worker_node_id=worker_node_id,
        runtime_id=runtime_id,
        host=socket.gethostname(),
        pid=os.getpid(),
        tag_filter=tag_filter.mode,
        tags=tuple(tag_filter.tags),
        orchestrations=orchestrations.versions(),
        activities=tuple(activities.names()),
        orchestration_concurrency=options.orchestration_concurrency,
        worker_concurrency=options.worker_concurrency,
        max_sessions=options.max_sessions_per_runtime,
        sessions_held=sessions_held,
        started_at_ms=started_at_ms,
        last_seen_at_ms=started_at_ms,
        heartbeat_interval_ms=options.worker_heartbeat_interval_ms,
        alive=True,
        build_id=options.build_id,
    )


class WorkerHeartbeat:
    """Writes the runtime's row now and every interval; deletes it on ``stop``."""

    def __init__(
        self,
        provider: Provider,
        info: WorkerInfo,
        sessions_held: Callable[[], int],
        on_error: Callable[[Exception], None] | None = None,
        on_drain: Callable[[bool], Awaitable[str | None]] | None = None,
    ) -> None:
        self._on_error = on_error  # the runtime's database health: one line per outage
        #: Told whether the store asks this node to drain; returns the state to report.
        self._on_drain = on_drain
        self._provider = provider
        self._info = info
        self._sessions_held = sessions_held
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="duraflow-heartbeat")

    async def beat(self) -> None:
        """Write the row; if the store's answer changes the drain state, write it again at
        once (the operator waits for that report before it removes the pod)."""
        for _ in range(2):
            held = self._sessions_held()
            if held != self._info.sessions_held:
                self._info = replace(self._info, sessions_held=held)
            requested = await self._provider.heartbeat_worker(self._info)
            if self._on_drain is None:
                return
            state = await self._on_drain(bool(requested))
            if state == self._info.drain_state:
                return
            self._info = replace(self._info, drain_state=state)

    async def _run(self) -> None:
        interval_s = self._info.heartbeat_interval_ms / 1000
        while not self._stopping.is_set():
            try:
                await self.beat()
            except Exception as exc:  # a missed beat is harmless; the next one retries
                if self._on_error is not None:
                    self._on_error(exc)
                else:
                    log.warning("worker registry heartbeat failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval_s)

    async def stop(self) -> None:
        """Stop beating and delete the row, so readers see the runtime gone at once."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        try:
            await self._provider.remove_worker(self._info.worker_node_id, self._info.runtime_id)
        except Exception as exc:
            log.warning("could not remove this runtime from the worker registry: %s "
                        "(it counts as gone after %d ms)", exc,
                        3 * self._info.heartbeat_interval_ms)

