"""A runtime's counters: duroxide's ``MetricsSnapshot`` and the Prometheus series.

``Metrics.add`` keeps the 17 snapshot fields of duroxide (each event counted once; duroxide
0.1.26/0.2.2 counts some twice, see docs/differences.md). The labelled Prometheus series
(``duraflow.runtime.prometheus``) are fed by the few methods below, each called where its
event is final: a turn after its commit, an activity once its outcome is known, a provider
error where it is caught. ``provider_error`` also reports into the runtime's shared
``DatabaseHealth``, which is what turns an outage into one warning instead of one per call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

from prometheus_client import CollectorRegistry

from duraflow.core.models import COMPLETED, CONTINUED_AS_NEW, FAILED
from duraflow.core.output import TurnOutput
from duraflow.providers.errors import LockLostError, ProviderError
from duraflow.providers.items import TurnCommit
from duraflow.runtime.health import DatabaseHealth
from duraflow.runtime.prometheus import RuntimeMetrics

_OUTCOMES = {COMPLETED: "completed", FAILED: "failed", CONTINUED_AS_NEW: "continued_as_new"}


@dataclass(slots=True)
class MetricsSnapshot:
    orch_starts: int = 0
    orch_completions: int = 0
    orch_failures: int = 0
    orch_application_errors: int = 0
    orch_infrastructure_errors: int = 0
    orch_configuration_errors: int = 0
    orch_poison: int = 0
    activity_success: int = 0
    activity_app_errors: int = 0
    activity_infra_errors: int = 0
    activity_config_errors: int = 0
    activity_poison: int = 0
    orch_dispatcher_items_fetched: int = 0
    worker_dispatcher_items_fetched: int = 0
    orch_continue_as_new: int = 0
    suborchestration_calls: int = 0
    provider_errors: int = 0


class Metrics:
    """Mutable counters owned by one runtime; ``snapshot()`` copies them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._counts = MetricsSnapshot()
        self.prometheus = RuntimeMetrics(registry)
        self.registry = self.prometheus.registry
        self.database = DatabaseHealth()

    def add(self, name: str, amount: int = 1) -> None:
        setattr(self._counts, name, getattr(self._counts, name) + amount)

    def snapshot(self) -> MetricsSnapshot:
        counts = self._counts
        return MetricsSnapshot(**{f.name: getattr(counts, f.name) for f in fields(counts)})

    # ─── Prometheus events ──────────────────────────────────────────────────

    def provider_error(
        self, exc: BaseException, operation: str, started: float | None = None
    ) -> None:
        """A provider call failed: count it (by the provider's own operation name, a bounded
        set) and tell the database health. A lost lock is not a database problem."""
        self.add("provider_errors")
        if isinstance(exc, ProviderError):
            operation = exc.operation
        self.prometheus.provider_errors.labels(operation).inc()
        if not isinstance(exc, LockLostError):
            self.database.failed(operation, exc, started)

    def provider_ok(self, started: float) -> None:
        """A provider call that began at ``started`` (``database.now()``) succeeded."""
        self.database.succeeded(started)

    def turn_committed(
        self, name: str | None, commit: TurnCommit, output: TurnOutput, seconds: float,
        cache_hit: bool | None,
    ) -> None:
        """One orchestration turn was committed (only then: a turn whose commit failed runs
        again and is counted then). ``cache_hit`` is None for turns that start an execution."""
        p = self.prometheus
        if cache_hit is not None:
            (p.replay_cache_hits if cache_hit else p.replay_cache_misses).inc()
        if name is None:
            return
        if commit.orchestration_name is not None:  # this turn began an execution
            p.orchestrations_started.labels(name).inc()
        outcome = _OUTCOMES.get(commit.status or "")
        if outcome is not None:
            p.orchestrations_finished.labels(name, outcome).inc()
        for scheduled in output.activities:
            if scheduled.retry:
                p.activity_retries.labels(str(scheduled.item.get("name"))).inc()
        p.turn_duration.labels(name).observe(seconds)

    def activity_finished(self, name: str, outcome: str, seconds: float | None = None) -> None:
        """One activity execution ended with ``outcome`` (success, failure, poison,
        cancelled); ``seconds`` is how long its function ran (None when it did not run)."""
        self.prometheus.activity_executions.labels(name, outcome).inc()
        if seconds is not None:
            self.prometheus.activity_duration.labels(name).observe(seconds)

    def build_upgrade(self, name: str, outcome: str) -> None:
        """An execution of orchestration ``name`` pinned to a draining build was decided:
        ``moved`` to this runtime's build, or ``diverged`` (it stays)."""
        self.prometheus.build_upgrades.labels(name, outcome).inc()

    def track_sessions(self, held: Callable[[], int]) -> None:
        """``duraflow_active_sessions`` reads ``held()`` at every scrape."""
        self.prometheus.active_sessions.set_function(lambda: float(held()))
