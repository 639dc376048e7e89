"""The operator's Prometheus metrics and its ``/metrics`` + ``/healthz`` server (port 9465).

No per-CR label: a label per Orchestration would grow the scrape with every CR ever made.
Phases are counted from the operator's in-memory view when scraped. The server runs on the
operator's loop (aiohttp, already a kopf dependency), so a stuck loop fails ``/healthz``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

PHASES = ("Pending", "Running", "Completed", "Failed", "Canceled")


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.reconciles = Counter(
            "duraflow_operator_reconciles_total", "Reconciles by kind and result",
            ["kind", "result"], registry=self.registry)
        self.errors = Counter(
            "duraflow_operator_reconcile_errors_total", "Reconciles that raised",
            ["kind"], registry=self.registry)
        self.duration = Histogram(
            "duraflow_operator_reconcile_duration_seconds", "Reconcile duration",
            ["kind"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.phases = Gauge(
            "duraflow_operator_orchestrations", "Orchestration CRs by phase", ["phase"],
            registry=self.registry)
        # One series per pool (not per CR): what an HPA or KEDA scales on (docs/autoscaling.md).
        self.pool_demand = Gauge(
            "duraflow_operator_pool_demand",
            "Activities waiting and running for the pool's tags, idle sessions its pods hold, and "
            "turns waiting when it runs orchestrations", ["namespace", "pool"],
            registry=self.registry)
        self.pool_replicas = Gauge(
            "duraflow_operator_pool_replicas", "Pods of the pool: desired by the autoscaler "
            "(or the StatefulSet's replicas), and ready", ["namespace", "pool", "kind"],
            registry=self.registry)
        self.status_writes = Counter(
            "duraflow_operator_status_writes_total", "Status patches written by the status sync",
            registry=self.registry)

    @contextmanager
    def reconcile(self, kind: str) -> Iterator[dict[str, str]]:
        """Times a reconcile; the caller sets ``outcome['result']`` (default ``ok``)."""
        outcome = {"result": "ok"}
        start = time.perf_counter()
        try:
            yield outcome
        except BaseException:
            self.errors.labels(kind).inc()
            outcome["result"] = "error"
            raise
        finally:
            self.duration.labels(kind).observe(time.perf_counter() - start)
            self.reconciles.labels(kind, outcome["result"]).inc()

    def forget_pool(self, namespace: str, pool: str) -> None:
        """A pool is gone: its series go with it."""
        for gauge, labels in ((self.pool_demand, ()), (self.pool_replicas, ("desired",)),
                              (self.pool_replicas, ("ready",))):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, pool, *labels)

    def set_phases(self, counts: Mapping[str, int]) -> None:
        for phase in PHASES:
            self.phases.labels(phase).set(counts.get(phase, 0))


class HealthServer:
    """``/metrics`` and ``/healthz`` (``/readyz`` alias). ``health()`` returns (ok, details)."""

    def __init__(
        self,
        metrics: OperatorMetrics,
        health: Callable[[], tuple[bool, dict[str, object]]],
        phase_counts: Callable[[], Mapping[str, int]],
    ) -> None:
        self._metrics = metrics
        self._health = health
        self._phase_counts = phase_counts
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._serve_metrics)
        app.router.add_get("/healthz", self._serve_health)
        app.router.add_get("/readyz", self._serve_health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve_metrics(self, _request: web.Request) -> web.Response:
        self._metrics.set_phases(self._phase_counts())
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _serve_health(self, _request: web.Request) -> web.Response:
        ok, details = self._health()
        return web.json_response({"ok": ok, **details}, status=200 if ok else 503)
