"""Duraflow: durable workflows for Python, compatible with duroxide-python.

Public names only; the implementation lives in private-by-convention subpackages.
"""

from duraflow.client import AsyncClient, OperationTimedOut, OrchestrationResult
from duraflow.config import ConfigError, read_settings
from duraflow.core.builds import BuildState
from duraflow.core.context import OrchestrationContext, ScheduledTask
from duraflow.core.errors import ErrorDetails, NondeterminismError, TaskFailedError
from duraflow.core.limits import (
    MAX_KV_KEYS,
    MAX_KV_VALUE_BYTES,
    MAX_TAG_NAME_BYTES,
    MAX_WORKER_TAGS,
)
from duraflow.core.models import (
    BuildInfo,
    DeleteInstanceResult,
    Event,
    ExecutionInfo,
    InstanceFilter,
    InstanceInfo,
    InstanceTree,
    OrchestrationStatus,
    PruneOptions,
    PruneResult,
    QueueDepths,
    SystemMetrics,
    SystemStats,
    TagDemand,
    WorkDemand,
    WorkerInfo,
)
from duraflow.core.replay_check import Divergence, ReplayCheck, replay_history
from duraflow.core.status import Status
from duraflow.core.version import ENGINE_VERSION as __version__
from duraflow.providers.entra import PostgresEntraOptions
from duraflow.providers.errors import (
    ProviderError,
    ScheduleExistsError,
    ScheduleNotFoundError,
    UnknownBuildError,
)
from duraflow.providers.factory import open_provider
from duraflow.providers.postgres import PostgresProvider
from duraflow.providers.protocol import Provider
from duraflow.providers.sqlite import SqliteProvider
from duraflow.providers.wakeups import InstanceChangeFeed, InstanceChanges, WorkFeed
from duraflow.runtime.activity_context import ActivityContext
from duraflow.runtime.metrics import MetricsSnapshot
from duraflow.runtime.options import RuntimeOptions
from duraflow.runtime.runtime import AsyncRuntime
from duraflow.runtime.tracing import init_tracing
from duraflow.schedules.errors import InvalidCronError, InvalidScheduleError, UnknownTimeZoneError
from duraflow.schedules.models import ScheduleInfo, ScheduleRun
from duraflow.sync import Client, Runtime, TagFilter, parse_result

# duroxide-python's deprecated aliases, kept so old programs import unchanged.
PyRuntimeOptions = RuntimeOptions
PyOrchestrationStatus = OrchestrationStatus
PySystemMetrics = SystemMetrics
PySystemStats = SystemStats
PyQueueDepths = QueueDepths
PyInstanceInfo = InstanceInfo
PyExecutionInfo = ExecutionInfo
PyInstanceTree = InstanceTree
PyDeleteInstanceResult = DeleteInstanceResult
PyPruneOptions = PruneOptions
PyPruneResult = PruneResult
PyInstanceFilter = InstanceFilter
PyEvent = Event
PyMetricsSnapshot = MetricsSnapshot

__all__ = [
    # duroxide-python's public names
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
    "PyRuntimeOptions",
    "PyOrchestrationStatus",
    "PySystemMetrics",
    "PySystemStats",
    "PyQueueDepths",
    "PyInstanceInfo",
    "PyExecutionInfo",
    "PyInstanceTree",
    "PyDeleteInstanceResult",
    "PyPruneOptions",
    "PyPruneResult",
    "PyInstanceFilter",
    "PyEvent",
    "PyMetricsSnapshot",
    # Duraflow additions
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
