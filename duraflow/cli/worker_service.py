"""The parts of a worker pod and their order: provider, runtime, database probe, HTTP port.

``start`` brings them up, turning every foreseeable failure (database unreachable, app that
raises while registering, metrics port taken) into a ``ConfigError`` with one line for the
pod log. ``close`` takes them down in the order that loses nothing: stop answering ready,
stop the runtime (grace period, then release what is left), then the probe, the database
and the HTTP port, so ``/healthz`` answers until the very end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from duraflow.cli.worker_config import ConfigError, WorkerConfig
from duraflow.core.models import QueueDepths
from duraflow.providers.errors import ProviderError
from duraflow.providers.factory import open_provider
from duraflow.providers.protocol import Provider
from duraflow.runtime.health import DatabaseProbe
from duraflow.runtime.http_server import Check, ProbeServer
from duraflow.runtime.options import RuntimeOptions
from duraflow.runtime.runtime import AsyncRuntime

log = logging.getLogger("duraflow.worker")
CLOSE_PROVIDER_S = 2.0
QUEUE_DEPTH_TIMEOUT_S = 2.0


class WorkerService:
    def __init__(self, config: WorkerConfig, options: RuntimeOptions) -> None:
        self.config = config
        self.options = options
        self.provider: Provider | None = None
        self.runtime: AsyncRuntime | None = None
        self.probe: DatabaseProbe | None = None
        self.server: ProbeServer | None = None
        self.stopping = False

    @property
    def worker_node_id(self) -> str:
        return self.runtime.worker_node_id if self.runtime is not None else "(not started)"

    async def start(self) -> None:
        config = self.config
        try:
            self.provider = await open_provider(config.database_url, config.schema,
                                                pool_max=config.pg_pool_max)
        except (ProviderError, OSError, ValueError) as exc:
            raise ConfigError(f"cannot open the database: {exc}") from None
        runtime = self.runtime = AsyncRuntime(self.provider, self.options)
        try:
            config.register(runtime)
        except Exception as exc:
            raise ConfigError(f"app {config.app!r} failed while registering: "
                              f"{type(exc).__name__}: {exc}") from None
        metrics = runtime.metrics
        self.probe = DatabaseProbe(
            self.provider.ping, metrics.database,
            lambda exc, started: metrics.provider_error(exc, "ping", started))
        if config.metrics_port:
            self.server = ProbeServer(config.metrics_host, config.metrics_port,
                                      runtime.prometheus_registry, self.live, self.ready,
                                      self._refresh_gauges)
            try:
                await self.server.start()
            except OSError as exc:
                self.server = None
                raise ConfigError(f"cannot serve metrics on {config.metrics_host}:"
                                  f"{config.metrics_port}: {exc.strerror or exc}") from None
        await runtime.start()
        self.probe.start()
        where = (f"; /metrics, /healthz, /readyz on {config.metrics_host}:{self.server.port}"
                 if self.server is not None else "; metrics port off")
        log.info("duraflow worker %s ready (app %s, %s%s)", runtime.worker_node_id, config.app,
                 self.provider.name, where)

    async def _refresh_gauges(self) -> None:
        runtime, provider = self.runtime, self.provider
        if runtime is None or provider is None:
            return
        async def read() -> QueueDepths:  # bounded: a scrape must not hang in an outage
            try:
                return await asyncio.wait_for(provider.get_queue_depths(),
                                              QUEUE_DEPTH_TIMEOUT_S)
            except TimeoutError:
                raise TimeoutError(f"no answer within {QUEUE_DEPTH_TIMEOUT_S:g} s") from None

        try:
            await runtime.metrics.prometheus.queue_depth.refresh(read)
        except Exception as exc:
            runtime.metrics.provider_error(exc, "get_queue_depths")
            raise

    def live(self) -> Check:
        """``/healthz``: the process answers and its dispatchers run (or are stopping)."""
        runtime = self.runtime
        if self.stopping or runtime is None or not runtime.running:
            return Check(True, "alive (stopping)" if self.stopping else "alive (starting)")
        if not runtime.dispatchers_alive():
            return Check(False, "a dispatcher stopped unexpectedly")
        return Check(True, "alive")

    def ready(self) -> Check:
        """``/readyz``: running, dispatchers alive, and the database answering."""
        runtime = self.runtime
        if self.stopping:
            return Check(False, "shutting down")
        if runtime is None or not runtime.running:
            return Check(False, "starting")
        if not runtime.dispatchers_alive():
            return Check(False, "a dispatcher stopped unexpectedly")
        database = runtime.metrics.database
        if not database.healthy:
            return Check(False, f"database unavailable: {database.last_error}")
        return Check(True, "ready")

    async def close(self, grace_ms: int) -> None:
        self.stopping = True
        if self.runtime is not None:
            await self.runtime.shutdown(grace_ms)
        if self.probe is not None:
            await self.probe.stop()
        if self.provider is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.provider.close(), CLOSE_PROVIDER_S)
        if self.server is not None:
            await self.server.stop()

    def __repr__(self) -> str:
        return f"WorkerService({self.worker_node_id!r})"
