"""``AsyncRuntime``: registrations plus the two dispatchers, for asyncio programs.

The blocking ``duraflow.Runtime`` (duroxide-python's API) wraps this class and runs it on
the shared background loop. ``start()`` returns once the dispatchers are running;
``shutdown()`` returns as soon as in-flight work is done, or after the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from duraflow.providers.clock import now_ms
from duraflow.providers.protocol import Provider
from duraflow.runtime.activity_dispatcher import ActivityDispatcher
from duraflow.runtime.drain import DrainControl
from duraflow.runtime.due_times import StoredDueTimes
from duraflow.runtime.metrics import Metrics, MetricsSnapshot
from duraflow.runtime.options import RuntimeOptions
from duraflow.runtime.orchestration_dispatcher import OrchestrationDispatcher
from duraflow.runtime.registrations import Registrations
from duraflow.runtime.retention import Retention
from duraflow.runtime.schedule_ticker import ScheduleTicker
from duraflow.runtime.tracing import configure_runtime_logging
from duraflow.runtime.upgrades import BuildKeeper
from duraflow.runtime.worker_registry import WorkerHeartbeat, describe_runtime

log = logging.getLogger("duraflow.runtime")
DEFAULT_SHUTDOWN_TIMEOUT_MS = 1_000
FETCH_LOOP_EXIT_S = 2.0


#: How long ``start()`` waits at most for the orchestration dispatcher's first fetch.
_READY_WAIT_S = 1.0


class AsyncRuntime(Registrations):
    def __init__(
        self,
        provider: Provider,
        options: RuntimeOptions | None = None,
        *,
        client_factory: Callable[[], Any] | None = None,
        async_client_factory: Callable[[], Any] | None = None,
    ) -> None:
        if not isinstance(provider, Provider):
            raise TypeError(f"Runtime needs a Duraflow provider, got {type(provider).__name__}")
        self.provider = provider
        self.options = options if options is not None else RuntimeOptions()
        if not isinstance(self.options, RuntimeOptions):
            raise TypeError("options must be a RuntimeOptions")
        super().__init__()
        self.runtime_id = secrets.token_hex(2)
        self.worker_node_id = self.options.worker_node_id or f"{os.getpid()}-{self.runtime_id}"
        self.metrics = Metrics()
        self.metrics.track_sessions(lambda: self.sessions_held)
        self._client_factory = client_factory
        self._async_client_factory = async_client_factory
        self._tasks: list[asyncio.Task[None]] = []
        self._orchestration_dispatcher: OrchestrationDispatcher | None = None
        self._activity_dispatcher: ActivityDispatcher | None = None
        self._heartbeat: WorkerHeartbeat | None = None
        self._builds: BuildKeeper | None = None
        self._ticker: ScheduleTicker | None = None
        self._retention: Retention | None = None
        self._state = "new"

    # ─── Lifecycle ──────────────────────────────────────────────────────────

    @property
    def running(self) -> bool:
        return self._state == "running"

    async def start(self) -> None:
        if self._state == "running":
            raise RuntimeError("runtime is already started")
        if self._state == "stopped":
            raise RuntimeError("runtime was shut down; create a new Runtime to start again")
        configure_runtime_logging(self.options.log_level, self.options.log_format)
        activities = ActivityDispatcher(
            self.provider, self.activities, self.options, self.metrics, self.worker_node_id,
            self._client_factory, self._async_client_factory,
        )
        due_times = StoredDueTimes(self.provider)
        orchestrations = OrchestrationDispatcher(
            self.provider, self.orchestrations, self.options, self.metrics,
            activities.cancel_local, activities, due_times,
        )
        self._activity_dispatcher, self._orchestration_dispatcher = activities, orchestrations
        if self.options.build_id is not None:
            # Before the first fetch, if the store answers within the start-up wait: a build
            # it has never seen becomes current (unless auto-promote is off), and the
            # fetches' build rule reads that state. Otherwise it registers in the background.
            self._builds = BuildKeeper(
                self.provider, self.options, self.orchestrations, self.metrics,
                orchestrations if self.options.orchestration_concurrency > 0 else None)
            self._builds.start()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._builds.registered.wait(), _READY_WAIT_S)
        if self.options.orchestration_concurrency > 0:
            orchestrations.attach()
            self._tasks.append(asyncio.create_task(orchestrations.run(), name="duraflow-orch"))
            # A runtime that runs orchestrations fires schedule ticks too (no extra process).
            self._ticker = ScheduleTicker(self.provider, self.options, self.metrics, due_times)
            self._tasks.append(asyncio.create_task(self._ticker.run(), name="duraflow-ticker"))
        if self.options.worker_concurrency > 0:
            self._tasks.append(asyncio.create_task(activities.run(), name="duraflow-worker"))
        if self.options.retention_ms is not None:
            self._retention = Retention(self.provider, self.options.retention_ms,
                                        f"{self.worker_node_id}/{self.runtime_id}", self.metrics)
            self._tasks.append(asyncio.create_task(self._retention.run(),
                                                   name="duraflow-retention"))
        info = describe_runtime(self.worker_node_id, self.runtime_id, self.options,
                                self.orchestrations, self.activities, now_ms())
        drain = DrainControl([activities, orchestrations], activities.sessions.release_all)
        self._heartbeat = WorkerHeartbeat(
            self.provider, info, lambda: self.sessions_held,
            lambda exc: self.metrics.provider_error(exc, "heartbeat_worker"), drain.update)
        self._heartbeat.start()
        self._state = "running"
        if self.options.orchestration_concurrency > 0:
            # Return once the dispatcher has looked at the stored work, so that a start made
            # right after this returns is taken in process (a fetch in flight holds every
            # slot). Bounded: a database that is slow or down does not hold up start().
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(orchestrations.ready.wait(), _READY_WAIT_S)
        log.info("duraflow runtime %s started on %s (orchestrations %d, activities %d)",
                 self.worker_node_id, self.provider.name,
                 self.options.orchestration_concurrency, self.options.worker_concurrency)

    async def shutdown(self, timeout_ms: int | None = None) -> None:
        """Stop taking work; wait up to ``timeout_ms`` for in-flight work, then abort it."""
        if timeout_ms is None:
            timeout_ms = DEFAULT_SHUTDOWN_TIMEOUT_MS
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int):
            raise TypeError(f"shutdown timeout must be an int (ms), got {timeout_ms!r}")
        if timeout_ms < 0:
            raise ValueError(f"shutdown timeout must be >= 0 ms, got {timeout_ms}")
        if self._state != "running":
            self._state = "stopped"
            return
        self._state = "stopped"
        timeout_s = timeout_ms / 1000
        if self._builds is not None:  # no new upgrade claims; one in progress finishes
            await self._builds.stop()
        stops = []
        if self._retention is not None:
            self._retention.stop()
        if self._ticker is not None:
            stops.append(self._ticker.stop())
        if self._orchestration_dispatcher is not None:
            stops.append(self._orchestration_dispatcher.stop(timeout_s))
        if self._activity_dispatcher is not None:
            stops.append(self._activity_dispatcher.stop(timeout_s))
        await asyncio.gather(*stops, return_exceptions=True)
        # The fetch loops end by themselves once stopped; cancelling one mid-fetch could
        # drop a lock the database already granted, which would then wait for its timeout.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=FETCH_LOOP_EXIT_S)
        if self._heartbeat is not None:
            await self._heartbeat.stop()
            self._heartbeat = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        log.info("duraflow runtime %s stopped", self.worker_node_id)

    @property
    def sessions_held(self) -> int:
        """Sessions this runtime holds now (for the ``duraflow_active_sessions`` gauge)."""
        dispatcher = self._activity_dispatcher
        return 0 if dispatcher is None else dispatcher.sessions.sessions_held

    @property
    def prometheus_registry(self) -> CollectorRegistry:
        """This runtime's own Prometheus registry (``duraflow worker`` serves it on /metrics;
        an embedding app can serve it with prometheus-client, e.g. ``make_asgi_app``)."""
        return self.metrics.registry

    def dispatchers_alive(self) -> bool:
        """True while the runtime runs and none of its dispatcher loops has died."""
        return self._state == "running" and not any(task.done() for task in self._tasks)

    def metrics_snapshot(self) -> MetricsSnapshot | None:
        return self.metrics.snapshot() if self._state == "running" else None

    async def __aenter__(self) -> AsyncRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()
