"""The public names are pinned: adding or removing one is a deliberate, reviewed change."""

from __future__ import annotations

import importlib

import duraflow

DUROXIDE_PYTHON_NAMES = [
    "SqliteProvider",
    "PostgresProvider",
    "PostgresEntraOptions",
    "Client",
    "Runtime",
    "OrchestrationResult",
    "RuntimeOptions",
    "OrchestrationContext",
    "ActivityContext",
    "ScheduledTask",
    "TagFilter",
    "OrchestrationStatus",
    "SystemMetrics",
    "SystemStats",
    "QueueDepths",
    "InstanceInfo",
    "ExecutionInfo",
    "InstanceTree",
    "DeleteInstanceResult",
    "PruneOptions",
    "PruneResult",
    "InstanceFilter",
    "Event",
    "MetricsSnapshot",
    "init_tracing",
    "parse_result",
    "MAX_WORKER_TAGS",
    "MAX_TAG_NAME_BYTES",
    "MAX_KV_KEYS",
    "MAX_KV_VALUE_BYTES",
]
DEPRECATED_ALIASES = {
    "PyRuntimeOptions": "RuntimeOptions",
    "PyOrchestrationStatus": "OrchestrationStatus",
    "PySystemMetrics": "SystemMetrics",
    "PySystemStats": "SystemStats",
    "PyQueueDepths": "QueueDepths",
    "PyInstanceInfo": "InstanceInfo",
    "PyExecutionInfo": "ExecutionInfo",
    "PyInstanceTree": "InstanceTree",
    "PyDeleteInstanceResult": "DeleteInstanceResult",
    "PyPruneOptions": "PruneOptions",
    "PyPruneResult": "PruneResult",
    "PyInstanceFilter": "InstanceFilter",
    "PyEvent": "Event",
    "PyMetricsSnapshot": "MetricsSnapshot",
}
DURAFLOW_ADDITIONS = [
    "AsyncClient",
    "AsyncRuntime",
    "BuildInfo",
    "BuildState",
    "ConfigError",
    "Divergence",
    "ErrorDetails",
    "InstanceChangeFeed",
    "InstanceChanges",
    "InvalidCronError",
    "InvalidScheduleError",
    "NondeterminismError",
    "OperationTimedOut",
    "Provider",
    "ProviderError",
    "ReplayCheck",
    "ScheduleExistsError",
    "ScheduleInfo",
    "ScheduleNotFoundError",
    "ScheduleRun",
    "Status",
    "TagDemand",
    "TaskFailedError",
    "UnknownBuildError",
    "UnknownTimeZoneError",
    "WorkDemand",
    "WorkFeed",
    "WorkerInfo",
    "__version__",
    "open_provider",
    "read_settings",
    "replay_history",
]
EXPECTED = sorted([*DUROXIDE_PYTHON_NAMES, *DEPRECATED_ALIASES, *DURAFLOW_ADDITIONS])


def test_all_is_exactly_the_expected_names():
    assert sorted(duraflow.__all__) == EXPECTED
    assert len(duraflow.__all__) == len(set(duraflow.__all__)), "duplicate names in __all__"


def test_every_name_in_all_is_importable_and_defined():
    module = importlib.import_module("duraflow")
    for name in duraflow.__all__:
        assert hasattr(module, name), f"duraflow.{name} is listed but missing"
        assert getattr(module, name) is not None, f"duraflow.{name} is None"
    namespace: dict[str, object] = {}
    exec("from duraflow import *", namespace)
    assert set(duraflow.__all__) <= set(namespace)


def test_duroxide_python_names_are_all_exported():
    assert len(DUROXIDE_PYTHON_NAMES) + len(DEPRECATED_ALIASES) == 44
    assert set(DUROXIDE_PYTHON_NAMES) <= set(duraflow.__all__)


def test_deprecated_aliases_are_the_same_objects():
    for alias, target in DEPRECATED_ALIASES.items():
        assert getattr(duraflow, alias) is getattr(duraflow, target), alias


def test_limit_constants():
    assert duraflow.MAX_WORKER_TAGS == 5
    assert duraflow.MAX_TAG_NAME_BYTES == 256
    assert duraflow.MAX_KV_KEYS == 150
    assert duraflow.MAX_KV_VALUE_BYTES == 65536


def test_version_is_a_string():
    assert isinstance(duraflow.__version__, str) and duraflow.__version__


def test_the_build_calls_the_operator_uses_are_client_methods():
    """The operator reaches builds only through the public client (import-linter)."""
    for cls in (duraflow.AsyncClient, duraflow.Client):
        for name in ("list_builds", "set_current_build", "drain_build", "move_instance",
                     "adopt_unpinned", "list_workers"):
            assert callable(getattr(cls, name, None)), (cls.__name__, name)
