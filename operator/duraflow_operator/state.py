"""What the operator knows in memory: the CRs it follows, the worker registry, the database.

Rebuilt from the watch streams and the database after every restart (nothing here needs to
survive one): kopf replays every CR on start, and the worker registry is re-read. One
``OperatorState`` is shared by the kopf handlers and the operator's own loops.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from duraflow import AsyncClient, WorkerInfo
from duraflow_operator.kube import KubeApi
from duraflow_operator.metrics import OperatorMetrics
from duraflow_operator.settings import OperatorSettings
from duraflow_operator.status import Bounds

Key = tuple[str, str]  # (namespace, name)
_META_KEPT = ("name", "namespace", "uid", "generation", "resourceVersion", "deletionTimestamp")


def slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the operator's loops need of a CR, so 10,000 CRs stay cheap in memory: identity,
    the status without kopf's bookkeeping (a copy of the spec), and the spec only until
    the instance has started (a Pending CR is reconciled again from memory)."""
    meta = body.get("metadata") or {}
    status = body.get("status")
    slimmed: dict[str, Any] = {
        "apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
        "metadata": {k: meta[k] for k in _META_KEPT if k in meta},
    }
    if isinstance(status, Mapping):
        slimmed["status"] = {k: v for k, v in status.items() if k != "operator"}
        started = bool(status.get("instanceId") and status.get("startedAt"))
    else:
        started = False
    if not started:
        slimmed["spec"] = body.get("spec")
    return slimmed


@dataclass(slots=True)
class CrView:
    """The latest body of one Orchestration CR seen on the watch, plus sync bookkeeping."""

    body: dict[str, Any]
    #: The instance-mirroring fields the status sync last wrote (to notice them overwritten).
    mirror: dict[str, Any] = field(default_factory=dict)
    last_write: float = 0.0
    #: Accepted=False for want of a worker registering the orchestration.
    waiting_for_worker: bool = False

    @property
    def status(self) -> dict[str, Any]:
        status = self.body.get("status")
        return status if isinstance(status, dict) else {}

    @property
    def started_instance(self) -> str | None:
        status = self.status
        instance = status.get("instanceId")
        return str(instance) if instance and status.get("startedAt") else None


@dataclass(slots=True)
class OperatorState:
    settings: OperatorSettings
    client: AsyncClient
    kube: KubeApi
    metrics: OperatorMetrics
    crs: dict[Key, CrView] = field(default_factory=dict)
    by_instance: dict[str, Key] = field(default_factory=dict)
    pools: dict[Key, dict[str, Any]] = field(default_factory=dict)
    #: The last status seen of each pool's StatefulSet, by pool.
    sts_status: dict[Key, dict[str, Any]] = field(default_factory=dict)
    #: ``spec.replicas`` of each managed StatefulSet, by (namespace, StatefulSet name).
    sts_replicas: dict[Key, int] = field(default_factory=dict)
    workers: list[WorkerInfo] | None = None  # None: not read yet, or the database is away
    backlog: dict[str | None, int] = field(default_factory=dict)
    database_error: str | None = None
    locks: dict[Key, asyncio.Lock] = field(default_factory=dict)
    #: Called when a pool or its StatefulSet changed (the autoscaler looks again).
    pool_changed: Callable[[], None] = lambda: None
    #: Instances the status sync should re-read on its next tick.
    dirty: set[str] = field(default_factory=set)

    @property
    def bounds(self) -> Bounds:
        s = self.settings
        return Bounds(s.max_output_bytes, s.max_error_bytes, s.max_custom_status_bytes)

    def lock(self, key: Key) -> asyncio.Lock:
        lock = self.locks.get(key)
        if lock is None:
            lock = self.locks[key] = asyncio.Lock()
        return lock

    def observe(self, body: Mapping[str, Any]) -> CrView:
        """Record the latest body of a CR (from the watch or a handler), slimmed."""
        meta = body.get("metadata", {})
        key = (str(meta.get("namespace")), str(meta.get("name")))
        view = self.crs.get(key)
        if view is None:
            view = self.crs[key] = CrView(slim(body))
        else:
            view.body = slim(body)
        instance = view.started_instance
        if instance is not None:
            self.by_instance[instance] = key
        return view

    def follow(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> CrView:
        """After a reconcile: its outcome ``status`` (merged as a merge patch merges it: None
        removes) shown in memory at once, before its write lands, the instance indexed, and
        the instance marked for one read by the status sync. The sync follows indexed
        instances only, and an instance can end, with its one change announced, while the
        reconcile that started it still runs: without that read the CR never learns it."""
        view = self.observe(body)
        status_now = dict(view.status)
        for name, value in status.items():
            if value is None:
                status_now.pop(name, None)
            else:
                status_now[name] = value
        view = self.observe({**view.body, "status": status_now})
        instance = view.started_instance
        if instance is not None:
            self.mark_dirty(instance)
        return view

    def forget(self, key: Key) -> None:
        view = self.crs.pop(key, None)
        instance = view.started_instance if view is not None else None
        if instance is not None and self.by_instance.get(instance) == key:
            del self.by_instance[instance]
        self.locks.pop(key, None)

    def forget_pool(self, key: Key) -> None:
        """A WorkerPool is gone (its DELETED event, a 404, or a list without it)."""
        self.pools.pop(key, None)
        self.sts_status.pop(key, None)
        self.metrics.forget_pool(*key)

    def mark_dirty(self, instance_id: str) -> None:
        self.dirty.add(instance_id)

    def phase_counts(self) -> Mapping[str, int]:
        return Counter(str(v.status.get("phase") or "Pending") for v in self.crs.values())

    def registered(self, orchestration: str, version: str | None) -> bool | None:
        """Whether a live worker registers the orchestration (and version); None: unknown."""
        if self.workers is None:
            return None
        for worker in self.workers:
            if not worker.alive:
                continue
            versions = worker.orchestrations.get(orchestration)
            if versions is not None and (version is None or version in versions):
                return True
        return False
