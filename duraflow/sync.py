"""The blocking, duroxide-python-compatible facade: ``Client`` and ``Runtime``.

Both run their async twins on the shared background loop (``duraflow.bridge``), so a
duroxide-python program works after changing its import: ``runtime.start()`` returns at once
while dispatchers run, ``client.wait_for_orchestration()`` blocks the calling thread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from duraflow.bridge import background_loop, run_sync
from duraflow.client import AsyncClient, OperationTimedOut, OrchestrationResult
from duraflow.core.models import (
    BuildInfo,
    DeleteInstanceResult,
    Event,
    ExecutionInfo,
    InstanceFilter,
    InstanceInfo,
    InstanceTree,
    PruneOptions,
    PruneResult,
    QueueDepths,
    SystemMetrics,
    SystemStats,
    WorkDemand,
    WorkerInfo,
)
from duraflow.providers.protocol import Provider
from duraflow.runtime.metrics import MetricsSnapshot
from duraflow.runtime.options import RuntimeOptions
from duraflow.runtime.registrations import Registrations
from duraflow.runtime.runtime import AsyncRuntime
from duraflow.schedules.models import ScheduleInfo


def _require_background(provider: Any, who: str) -> Provider:
    if not isinstance(provider, Provider):
        raise TypeError(f"{who} needs a Duraflow provider (SqliteProvider or PostgresProvider), "
                        f"got {type(provider).__name__}")
    if getattr(provider, "loop", None) is not background_loop():
        raise RuntimeError(
            f"this provider was opened with an async constructor on your own event loop; use "
            f"Async{who} with it, or open it with the blocking constructor for {who}"
        )
    return provider


class Client:
    """Start, signal, observe and administer instances (blocking calls)."""

    def __init__(self, provider: Any) -> None:
        self._async = AsyncClient(_require_background(provider, "Client"))

    def start_orchestration(self, instance_id: str, name: str, input: Any = None) -> None:
        run_sync(self._async.start_orchestration(instance_id, name, input))

    def start_orchestration_versioned(
        self, instance_id: str, name: str, input: Any, version: str
    ) -> None:
        run_sync(self._async.start_orchestration_versioned(instance_id, name, input, version))

    def raise_event(self, instance_id: str, event_name: str, data: Any = None) -> None:
        run_sync(self._async.raise_event(instance_id, event_name, data))

    def enqueue_event(self, instance_id: str, queue_name: str, data: Any = None) -> None:
        run_sync(self._async.enqueue_event(instance_id, queue_name, data))

    def cancel_instance(self, instance_id: str, reason: str | None = None) -> None:
        run_sync(self._async.cancel_instance(instance_id, reason))

    start_orchestration_typed = start_orchestration
    start_orchestration_versioned_typed = start_orchestration_versioned
    raise_event_typed = raise_event
    enqueue_event_typed = enqueue_event

    def get_status(self, instance_id: str) -> OrchestrationResult:
        return run_sync(self._async.get_status(instance_id))

    def wait_for_orchestration(
        self, instance_id: str, timeout_ms: int = 30_000
    ) -> OrchestrationResult:
        return run_sync(self._async.wait_for_orchestration(instance_id, timeout_ms))

    def wait_for_orchestration_typed(self, instance_id: str, timeout_ms: int = 30_000) -> Any:
        return run_sync(self._async.wait_for_orchestration_typed(instance_id, timeout_ms))

    def wait_for_status_change(
        self,
        instance_id: str,
        last_seen_version: int = 0,
        poll_interval_ms: int = 200,
        timeout_ms: int = 30_000,
    ) -> OrchestrationResult:
        return run_sync(self._async.wait_for_status_change(
            instance_id, last_seen_version, poll_interval_ms, timeout_ms
        ))

    def get_kv_value(self, instance_id: str, key: str) -> str | None:
        return run_sync(self._async.get_kv_value(instance_id, key))

    def get_kv_value_typed(self, instance_id: str, key: str) -> Any:
        return run_sync(self._async.get_kv_value_typed(instance_id, key))

    def get_kv_all_values(self, instance_id: str) -> dict[str, str]:
        return run_sync(self._async.get_kv_all_values(instance_id))

    def wait_for_kv_value(self, instance_id: str, key: str, timeout_ms: int = 30_000) -> str:
        return run_sync(self._async.wait_for_kv_value(instance_id, key, timeout_ms))

    def wait_for_kv_value_typed(self, instance_id: str, key: str, timeout_ms: int = 30_000) -> Any:
        return run_sync(self._async.wait_for_kv_value_typed(instance_id, key, timeout_ms))

    def get_system_metrics(self) -> SystemMetrics:
        return run_sync(self._async.get_system_metrics())

    def get_orchestration_stats(self, instance_id: str) -> SystemStats | None:
        return run_sync(self._async.get_orchestration_stats(instance_id))

    def get_queue_depths(self) -> QueueDepths:
        return run_sync(self._async.get_queue_depths())

    def list_workers(self, include_gone: bool = False) -> list[WorkerInfo]:
        return run_sync(self._async.list_workers(include_gone))

    def list_builds(self) -> list[BuildInfo]:
        return run_sync(self._async.list_builds())

    def set_current_build(self, build_id: str) -> None:
        run_sync(self._async.set_current_build(build_id))

    def drain_build(self, build_id: str) -> None:
        run_sync(self._async.drain_build(build_id))

    def move_instance(self, instance_id: str, build_id: str) -> None:
        run_sync(self._async.move_instance(instance_id, build_id))

    def adopt_unpinned(self, build_id: str) -> int:
        return run_sync(self._async.adopt_unpinned(build_id))

    def get_activity_backlog(self) -> dict[str | None, int]:
        return run_sync(self._async.get_activity_backlog())

    def get_work_demand(self) -> WorkDemand:
        return run_sync(self._async.get_work_demand())

    def drain_workers(self, worker_node_ids: Sequence[str]) -> None:
        run_sync(self._async.drain_workers(worker_node_ids))

    def undrain_workers(self, worker_node_ids: Sequence[str]) -> None:
        run_sync(self._async.undrain_workers(worker_node_ids))

    def get_drained_workers(self) -> dict[str, bool]:
        return run_sync(self._async.get_drained_workers())

    def list_all_instances(self) -> list[str]:
        return run_sync(self._async.list_all_instances())

    def list_instances_by_status(self, status: str) -> list[str]:
        return run_sync(self._async.list_instances_by_status(status))

    def get_instance_info(self, instance_id: str) -> InstanceInfo:
        return run_sync(self._async.get_instance_info(instance_id))

    def get_execution_info(self, instance_id: str, execution_id: int) -> ExecutionInfo:
        return run_sync(self._async.get_execution_info(instance_id, execution_id))

    def list_executions(self, instance_id: str) -> list[int]:
        return run_sync(self._async.list_executions(instance_id))

    def read_execution_history(self, instance_id: str, execution_id: int) -> list[Event]:
        return run_sync(self._async.read_execution_history(instance_id, execution_id))

    def get_instance_tree(self, instance_id: str) -> InstanceTree:
        return run_sync(self._async.get_instance_tree(instance_id))

    def delete_instance(self, instance_id: str, force: bool = False) -> DeleteInstanceResult:
        return run_sync(self._async.delete_instance(instance_id, force))

    def delete_instance_bulk(self, filter: InstanceFilter | None = None) -> DeleteInstanceResult:
        return run_sync(self._async.delete_instance_bulk(filter))

    def prune_executions(
        self, instance_id: str, options: PruneOptions | None = None
    ) -> PruneResult:
        return run_sync(self._async.prune_executions(instance_id, options))

    def prune_executions_bulk(
        self, filter: InstanceFilter | None = None, options: PruneOptions | None = None
    ) -> PruneResult:
        return run_sync(self._async.prune_executions_bulk(filter, options))

    # Schedules (``AsyncClient``'s, blocking; see ``duraflow.schedules.api``)

    def create_schedule(self, schedule_id: str, orchestration: str, input: Any = None,
                        **options: Any) -> ScheduleInfo:
        return run_sync(self._async.create_schedule(schedule_id, orchestration, input,
                                                    **options))

    def update_schedule(self, schedule_id: str, **fields: Any) -> ScheduleInfo:
        return run_sync(self._async.update_schedule(schedule_id, **fields))

    def pause_schedule(self, schedule_id: str, note: str | None = None) -> None:
        run_sync(self._async.pause_schedule(schedule_id, note))

    def resume_schedule(self, schedule_id: str) -> None:
        run_sync(self._async.resume_schedule(schedule_id))

    def trigger_schedule(self, schedule_id: str) -> None:
        run_sync(self._async.trigger_schedule(schedule_id))

    def backfill_schedule(self, schedule_id: str, start_ms: int, end_ms: int,
                          overlap: str | None = None) -> None:
        run_sync(self._async.backfill_schedule(schedule_id, start_ms, end_ms, overlap))

    def delete_schedule(self, schedule_id: str) -> None:
        run_sync(self._async.delete_schedule(schedule_id))

    def describe_schedule(self, schedule_id: str) -> ScheduleInfo:
        return run_sync(self._async.describe_schedule(schedule_id))

    def list_schedules(self) -> list[ScheduleInfo]:
        return run_sync(self._async.list_schedules())


class Runtime(Registrations):
    """Registrations plus dispatchers, running in the background once ``start()`` returns.

    The ``register_*`` methods are ``Registrations``', on the async runtime's own registries:
    registering here and there is one and the same."""

    def __init__(self, provider: Any, options: RuntimeOptions | None = None) -> None:
        checked = _require_background(provider, "Runtime")
        self._async = AsyncRuntime(
            checked, options,
            client_factory=lambda: Client(checked),
            async_client_factory=lambda: AsyncClient(checked),
        )
        self.orchestrations = self._async.orchestrations
        self.activities = self._async.activities

    def start(self) -> None:
        """Start the dispatchers and return at once (they run on a background thread)."""
        run_sync(self._async.start())

    def shutdown(self, timeout_ms: int | None = None) -> None:
        """Stop; returns as soon as in-flight work is done, at most ``timeout_ms`` later."""
        run_sync(self._async.shutdown(timeout_ms))

    def metrics_snapshot(self) -> MetricsSnapshot | None:
        return self._async.metrics_snapshot()

    @property
    def prometheus_registry(self) -> CollectorRegistry:
        """This runtime's own Prometheus registry (serve it with prometheus-client)."""
        return self._async.prometheus_registry


class TagFilter:
    """Values for ``RuntimeOptions(worker_tag_filter=...)`` (duroxide-python's helper).

    Each is the option's string form; ``RuntimeOptions`` parses it into the
    ``WorkerTagFilter`` the runtime and providers use (``duraflow.providers.items``).
    """

    DEFAULT_ONLY = "default_only"
    ANY = "any"
    NONE = "none"

    @staticmethod
    def tags(tags: list[str]) -> str:
        return json.dumps({"tags": list(tags)})

    @staticmethod
    def default_and(tags: list[str]) -> str:
        return json.dumps({"default_and": list(tags)})


def parse_result(result: Any) -> Any:
    """Unwrap ``all()``/``race()`` results: ``{"ok": v}`` → v, ``{"err": e}`` raises."""
    if isinstance(result, list):
        return [
            item.get("ok") if isinstance(item, dict) and "ok" in item else item for item in result
        ]
    if isinstance(result, dict):
        if "ok" in result:
            return result["ok"]
        if "err" in result:
            raise Exception(result["err"])
    return result


__all__ = ["Client", "OperationTimedOut", "Runtime", "TagFilter", "parse_result"]
