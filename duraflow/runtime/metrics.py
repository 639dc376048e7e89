"""Process-local runtime counters, exposed as ``MetricsSnapshot`` (duroxide's 17 fields).

Each event is counted once (duroxide 0.1.26/0.2.2 counts some twice; see
docs/differences.md).
"""

from __future__ import annotations

from dataclasses import dataclass, fields


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

    def __init__(self) -> None:
        self._counts = MetricsSnapshot()

    def add(self, name: str, amount: int = 1) -> None:
        setattr(self._counts, name, getattr(self._counts, name) + amount)

    def snapshot(self) -> MetricsSnapshot:
        counts = self._counts
        return MetricsSnapshot(**{f.name: getattr(counts, f.name) for f in fields(counts)})
