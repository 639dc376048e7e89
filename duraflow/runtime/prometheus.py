"""The runtime's Prometheus metrics, in one ``CollectorRegistry`` per runtime.

A registry per runtime (not prometheus-client's global one) so two runtimes in one process
(tests, an app embedding two) never collide on registration, and ``duraflow worker`` exposes
exactly its own runtime's series. Names follow Prometheus conventions: the ``duraflow_``
prefix, ``_total`` counters, durations in seconds; labels are bounded (orchestration and
activity *names*, outcomes, queue names, provider operations), never an instance id.

Queue depths are read from the database through the admin API (``get_queue_depths``), which
costs a query: ``QueueDepthCollector.refresh`` runs at scrape time and reuses its answer for
``ttl_s`` seconds, so a burst of scrapes (several Prometheus replicas, a curl loop) costs at
most one query per ``ttl_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from duraflow.core.models import QueueDepths

#: Turns take milliseconds; a slow one (large history, slow database) seconds.
TURN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Activities are user code: from a millisecond to an hour.
ACTIVITY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    300.0, 900.0, 3600.0)
QUEUE_DEPTH_TTL_S = 5.0


class QueueDepthCollector(Collector):
    """``duraflow_queue_depth{queue}`` from the last ``refresh`` (none after a failed one)."""

    NAME = "duraflow_queue_depth"
    HELP = "Messages waiting in each queue (orchestrator, worker, timer), read from the database"

    def __init__(self, ttl_s: float = QUEUE_DEPTH_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._depths: QueueDepths | None = None
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def refresh(self, read: Callable[[], Awaitable[QueueDepths]]) -> None:
        """Read the depths unless the last read is fresh; concurrent scrapes share one read.
        Errors propagate (the caller counts them) and clear the stale values."""
        async with self._lock:
            if self._clock() - self._read_at < self._ttl_s:
                return
            try:
                self._depths = await read()
            except BaseException:
                self._depths = None
                raise
            finally:
                self._read_at = self._clock()

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self.NAME, self.HELP, labels=["queue"])

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["queue"])
        depths = self._depths
        if depths is not None:
            family.add_metric(["orchestrator"], depths.orchestrator_queue)
            family.add_metric(["worker"], depths.worker_queue)
            family.add_metric(["timer"], depths.timer_queue)
        yield family


class RuntimeMetrics:
    """The metric families of one runtime, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.orchestrations_started = Counter(
            "duraflow_orchestrations_started", "Orchestration executions started "
            "(a continue-as-new starts a new execution)", ["orchestration"], registry=r)
        self.orchestrations_finished = Counter(
            "duraflow_orchestrations_finished", "Orchestration executions finished, by outcome "
            "(completed, failed, continued_as_new)", ["orchestration", "outcome"], registry=r)
        self.activity_executions = Counter(
            "duraflow_activity_executions", "Activity executions, by outcome (success, "
            "failure, poison, cancelled)", ["activity", "outcome"], registry=r)
        self.activity_retries = Counter(
            "duraflow_activity_retries", "Activity attempts scheduled again by a retry policy",
            ["activity"], registry=r)
        self.turn_duration = Histogram(
            "duraflow_turn_duration_seconds", "Time to run and commit one orchestration turn",
            ["orchestration"], buckets=TURN_BUCKETS, registry=r)
        self.activity_duration = Histogram(
            "duraflow_activity_duration_seconds", "Time an activity function ran",
            ["activity"], buckets=ACTIVITY_BUCKETS, registry=r)
        self.queue_depth = QueueDepthCollector()
        r.register(self.queue_depth)
        self.active_sessions = Gauge(
            "duraflow_active_sessions", "Activity sessions this runtime holds", registry=r)
        self.replay_cache_hits = Counter(
            "duraflow_replay_cache_hits", "Turns that continued a live replay from the cache",
            registry=r)
        self.replay_cache_misses = Counter(
            "duraflow_replay_cache_misses", "Turns of a running instance that had to replay "
            "its history (not in this runtime's cache)", registry=r)
        self.build_upgrades = Counter(
            "duraflow_build_upgrades", "Executions pinned to a draining build that this "
            "runtime's build replayed (or, upgrade=auto, took over), by outcome: moved, "
            "diverged (stays on its build)", ["orchestration", "outcome"], registry=r)
        self.schedule_runs_started = Counter(
            "duraflow_schedule_runs_started", "Schedule ticks this runtime fired that started "
            "an instance", registry=r)
        self.instances_pruned = Counter(
            "duraflow_instances_pruned", "Finished instances deleted by retention (each "
            "instance of a deleted tree counts)", registry=r)
        self.provider_errors = Counter(
            "duraflow_provider_errors", "Failed database operations, by provider operation",
            ["operation"], registry=r)
