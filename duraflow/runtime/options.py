"""Runtime options: duroxide-python's ``RuntimeOptions`` keywords, validated up front.

Every keyword defaults to ``None`` meaning "the default". Values a runtime cannot work with
(a zero lock timeout, an unparsable tag filter) are rejected here with a ``ValueError``
naming the option, instead of surfacing later as a stuck runtime or a panic.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from duraflow.core.builds import check_build_id
from duraflow.core.limits import MAX_TAG_NAME_BYTES, MAX_WORKER_TAGS
from duraflow.core.version import ENGINE_VERSION, pack
from duraflow.providers.items import WorkerTagFilter

_DEFAULTS: dict[str, Any] = {
    "orchestration_concurrency": 4,
    "worker_concurrency": 8,
    "dispatcher_poll_interval_ms": 100,
    "worker_lock_timeout_ms": 30_000,
    "log_format": None,
    "log_level": None,
    "service_name": "duraflow",
    "service_version": None,
    "max_sessions_per_runtime": 10,
    "session_idle_timeout_ms": 300_000,
    "worker_node_id": None,
    "worker_tag_filter": "default_only",
    "orchestrator_lock_timeout_ms": 5_000,
    "orchestrator_lock_renewal_buffer_ms": 2_000,
    "max_attempts": 10,
    "worker_lock_renewal_buffer_ms": 5_000,
    "session_lock_timeout_ms": 30_000,
    "session_lock_renewal_buffer_ms": 5_000,
    # Duraflow additions
    "replay_cache_size": 10_000,
    "idle_poll_interval_ms": 5_000,
    "activity_cancellation_grace_period_ms": 10_000,
    "worker_heartbeat_interval_ms": 5_000,
    "supported_replay_versions": None,
    # Builds (docs/rollouts.md): the code this runtime runs; None = no builds (as before).
    "build_id": None,
    "build_auto_promote": True,
    # Delete instances finished longer ago than this (None: keep them; see retention.py)
    "retention_ms": None,
}

_POSITIVE = (
    "orchestration_concurrency",
    "worker_concurrency",
    "dispatcher_poll_interval_ms",
    "worker_lock_timeout_ms",
    "orchestrator_lock_timeout_ms",
    "session_lock_timeout_ms",
    "session_idle_timeout_ms",
    "max_sessions_per_runtime",
    "idle_poll_interval_ms",
    "worker_heartbeat_interval_ms",
)
_NON_NEGATIVE = (
    "orchestrator_lock_renewal_buffer_ms",
    "worker_lock_renewal_buffer_ms",
    "session_lock_renewal_buffer_ms",
    "max_attempts",
    "replay_cache_size",
    "activity_cancellation_grace_period_ms",
)
_LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "critical")
_ALLOW_ZERO = ("orchestration_concurrency", "worker_concurrency")
#: Floors above 1: retention shorter than a second would delete what clients still read.
_FLOORS = {"retention_ms": 1_000}

#: Every option's default (None: worked out at start). ``duraflow.config`` shows and applies
#: these for the worker's settings, so each default is written once, here.
DEFAULTS: Mapping[str, Any] = MappingProxyType(_DEFAULTS)


def minimum(name: str) -> int:
    """The least value integer option ``name`` accepts: 0 where 0 means "none of it" (no
    orchestrations, no retries, no cache), else 1."""
    if name in _FLOORS:
        return _FLOORS[name]
    return 0 if name in _NON_NEGATIVE or name in _ALLOW_ZERO else 1


def renewal_interval_ms(timeout_ms: int, buffer_ms: int) -> int:
    """duroxide's rule: timeout - buffer for locks of 15 s or more, else half the timeout."""
    if timeout_ms >= 15_000:
        return max(timeout_ms - buffer_ms, 1_000)
    return max(math.ceil(timeout_ms / 2), 1)


def parse_tag_filter(value: Any) -> WorkerTagFilter:
    if value is None or value == "default_only":
        return WorkerTagFilter("default_only")
    if value in ("any", "none"):
        return WorkerTagFilter(str(value))
    if isinstance(value, WorkerTagFilter):
        return value
    try:
        raw = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in ("tags", "default_and"):
        raise ValueError(
            "worker_tag_filter must be 'default_only', 'any', 'none', "
            f"TagFilter.tags([...]) or TagFilter.default_and([...]); got {value!r}"
        )
    ((mode, tags),) = raw.items()
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) and t for t in tags):
        raise ValueError(f"worker_tag_filter {mode!r} needs a non-empty list of tag names")
    if len(tags) > MAX_WORKER_TAGS:
        raise ValueError(f"worker_tag_filter has {len(tags)} tags; at most {MAX_WORKER_TAGS}")
    for tag in tags:
        if len(tag.encode()) > MAX_TAG_NAME_BYTES:
            raise ValueError(f"worker tag {tag[:40]!r}... exceeds {MAX_TAG_NAME_BYTES} bytes")
    return WorkerTagFilter(mode, tuple(tags))


def parse_replay_versions(value: Any) -> tuple[tuple[str, str] | None, tuple[int, int]]:
    """``supported_replay_versions``: ``(lowest, highest)`` engine versions (inclusive) whose
    histories this runtime may replay; default ``("0.0.0", <this engine>)``."""
    if value is None:
        return None, (0, pack(ENGINE_VERSION))
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, str) for v in value)
    ):
        raise TypeError(
            "RuntimeOptions.supported_replay_versions must be a (lowest, highest) pair of "
            f"version strings, e.g. ('0.1.0', '0.3.0'); got {value!r}"
        )
    try:
        low, high = pack(value[0]), pack(value[1])
    except ValueError as exc:
        raise ValueError(f"RuntimeOptions.supported_replay_versions: {exc}") from None
    if low > high:
        raise ValueError(
            f"RuntimeOptions.supported_replay_versions: {value[0]!r} is above {value[1]!r}"
        )
    return (value[0], value[1]), (low, high)


class RuntimeOptions:
    """Options for ``Runtime``; read-only once built (assigning raises ``AttributeError``)."""

    __slots__ = (*_DEFAULTS, "_frozen", "tag_filter", "replay_range")

    orchestration_concurrency: int
    worker_concurrency: int
    dispatcher_poll_interval_ms: int
    worker_lock_timeout_ms: int
    log_format: str | None
    log_level: str | None
    service_name: str
    service_version: str | None
    max_sessions_per_runtime: int
    session_idle_timeout_ms: int
    worker_node_id: str | None
    worker_tag_filter: str
    orchestrator_lock_timeout_ms: int
    orchestrator_lock_renewal_buffer_ms: int
    max_attempts: int
    worker_lock_renewal_buffer_ms: int
    session_lock_timeout_ms: int
    session_lock_renewal_buffer_ms: int
    replay_cache_size: int
    idle_poll_interval_ms: int
    activity_cancellation_grace_period_ms: int
    worker_heartbeat_interval_ms: int
    supported_replay_versions: tuple[str, str] | None
    build_id: str | None
    build_auto_promote: bool
    retention_ms: int | None
    replay_range: tuple[int, int]
    tag_filter: WorkerTagFilter

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - set(_DEFAULTS)
        if unknown:
            raise TypeError(f"RuntimeOptions got unknown option(s): {', '.join(sorted(unknown))}")
        for name, default in _DEFAULTS.items():
            value = kwargs.get(name)
            object.__setattr__(self, name, default if value is None else value)
        for name in _POSITIVE + _NON_NEGATIVE:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"RuntimeOptions.{name} must be an int, got {value!r}")
            floor = minimum(name)
            if value < floor:
                raise ValueError(f"RuntimeOptions.{name} must be >= {floor}, got {value}")
        if self.retention_ms is not None:
            if isinstance(self.retention_ms, bool) or not isinstance(self.retention_ms, int):
                raise TypeError(f"RuntimeOptions.retention_ms must be an int (ms) or None, got "
                                f"{self.retention_ms!r}")
            if self.retention_ms < minimum("retention_ms"):
                raise ValueError(f"RuntimeOptions.retention_ms must be >= "
                                 f"{minimum('retention_ms')}, got {self.retention_ms}")
        object.__setattr__(self, "tag_filter", parse_tag_filter(self.worker_tag_filter))
        versions, packed = parse_replay_versions(self.supported_replay_versions)
        object.__setattr__(self, "supported_replay_versions", versions)
        object.__setattr__(self, "replay_range", packed)
        if self.build_id is not None:
            check_build_id(self.build_id, "RuntimeOptions.build_id")
        if not isinstance(self.build_auto_promote, bool):
            raise TypeError("RuntimeOptions.build_auto_promote must be a bool, got "
                            f"{self.build_auto_promote!r}")
        if self.log_level is not None and str(self.log_level).lower() not in _LOG_LEVELS:
            raise ValueError(f"RuntimeOptions.log_level must be one of {', '.join(_LOG_LEVELS)};"
                             f" got {self.log_level!r}")
        worker_renewal = self.worker_renewal_ms
        if self.session_idle_timeout_ms <= worker_renewal:
            raise ValueError(
                f"session_idle_timeout_ms ({self.session_idle_timeout_ms}) must exceed the "
                f"worker lock renewal interval ({worker_renewal} ms)"
            )
        object.__setattr__(self, "_frozen", True)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"RuntimeOptions.{name} is read-only")

    @property
    def orchestrator_renewal_ms(self) -> int:
        return renewal_interval_ms(
            self.orchestrator_lock_timeout_ms, self.orchestrator_lock_renewal_buffer_ms
        )

    @property
    def worker_renewal_ms(self) -> int:
        return renewal_interval_ms(self.worker_lock_timeout_ms, self.worker_lock_renewal_buffer_ms)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _DEFAULTS)
        return f"RuntimeOptions({shown})"
