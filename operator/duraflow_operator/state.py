"""What the operator knows in memory: the CRs it follows, the worker registry, the database.

Rebuilt from the watch streams and the database after every restart (nothing here needs to
survive one): kopf replays every CR on start, and the worker registry is re-read. One
``OperatorState`` is shared by the kopf handlers and the operator's own loops.
"""

from __future__ import annotations

import asyncio
import datetime
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from duraflow import AsyncClient, ScheduleInfo, WorkerInfo
from duraflow_operator.kube import KubeApi
from duraflow_operator.metrics import OperatorMetrics
from duraflow_operator.schedule_spec import SCHEDULE_LABEL, run_schedule_id, schedule_id
from duraflow_operator.settings import OperatorSettings
from duraflow_operator.status import TERMINAL_PHASES, Bounds

Key = tuple[str, str]  # (namespace, name)
TTL_FIELD = "ttlSecondsAfterFinished"
#: The status fields a pool's rollout decides (``OperatorState.rollouts``).
ROLLOUT_FIELDS = ("currentBuild", "desiredBuild", "revisions", "draining", "conditions")


def pool_lock(key: Key) -> Key:
    """The lock key of a WorkerPool (an Orchestration of the same name has its own)."""
    return (key[0], f"workerpool/{key[1]}")


_META_KEPT = ("name", "namespace", "uid", "generation", "resourceVersion", "deletionTimestamp")


def slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the operator's loops need of a CR, so 10,000 CRs stay cheap in memory: identity,
    the status without kopf's bookkeeping (a copy of the spec), the spec only until the
    instance has started (a Pending CR is reconciled again from memory) and then only its
    ``ttlSecondsAfterFinished``, and of a schedule's run its label and owner."""
    meta = body.get("metadata") or {}
    status = body.get("status")
    kept = {k: meta[k] for k in _META_KEPT if k in meta}
    schedule = (meta.get("labels") or {}).get(SCHEDULE_LABEL)
    if schedule:
        kept["labels"] = {SCHEDULE_LABEL: schedule}
        kept["ownerReferences"] = [o for o in meta.get("ownerReferences") or ()
                                   if o.get("controller")]
    slimmed: dict[str, Any] = {
        "apiVersion": body.get("apiVersion"), "kind": body.get("kind"), "metadata": kept,
    }
    if isinstance(status, Mapping):
        slimmed["status"] = {k: v for k, v in status.items() if k != "operator"}
        started = bool(status.get("instanceId") and status.get("startedAt"))
    else:
        started = False
    spec = body.get("spec")
    if not started:
        slimmed["spec"] = spec
    elif isinstance(spec, Mapping) and spec.get(TTL_FIELD) is not None:
        slimmed["spec"] = {TTL_FIELD: spec[TTL_FIELD]}
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

    @property
    def schedule(self) -> str | None:
        """The OrchestrationSchedule this CR is a run of (its label), if any."""
        labels = self.body["metadata"].get("labels") or {}
        return labels.get(SCHEDULE_LABEL)

    def owned_by(self, uid: str | None) -> bool:
        return uid is not None and any(o.get("uid") == uid
                                       for o in self.body["metadata"].get("ownerReferences")
                                       or ())

    @property
    def finished(self) -> bool:
        return self.status.get("phase") in TERMINAL_PHASES

    def expires_at(self) -> float | None:
        """When ``spec.ttlSecondsAfterFinished`` has passed since the instance ended (epoch
        seconds); None without a TTL or before the end."""
        ttl = (self.body.get("spec") or {}).get(TTL_FIELD)
        completed = self.status.get("completedAt")
        if (not isinstance(ttl, int) or ttl < 0 or not self.finished
                or not isinstance(completed, str)):
            return None
        try:
            ended = datetime.datetime.fromisoformat(completed.replace("Z", "+00:00"))
        except ValueError:
            return None
        return ended.timestamp() + ttl


@dataclass(slots=True)
class ScheduleView:
    """An OrchestrationSchedule as last seen on the watch, and its engine schedule as last
    read (``info``; None until read)."""

    body: dict[str, Any]
    info: ScheduleInfo | None = None
    #: When ``info`` should be read again at the latest (epoch ms): after its next tick.
    read_due_ms: int | None = None
    #: ``status.runsCreatedThroughMs`` as this operator last set it (a watch event may show
    #: an older status for a moment; a run whose CR was deleted must not get one again).
    created_through: int = 0

    @property
    def schedule_id(self) -> str:
        meta = self.body["metadata"]
        return schedule_id(str(meta.get("namespace")), str(meta.get("name")))


@dataclass(slots=True)
class OperatorState:
    settings: OperatorSettings
    client: AsyncClient
    kube: KubeApi
    metrics: OperatorMetrics
    crs: dict[Key, CrView] = field(default_factory=dict)
    by_instance: dict[str, Key] = field(default_factory=dict)
    pools: dict[Key, dict[str, Any]] = field(default_factory=dict)
    #: The last status seen of the StatefulSet of each pool's current revision, by pool.
    sts_status: dict[Key, dict[str, Any]] = field(default_factory=dict)
    #: ``spec.replicas`` of each managed StatefulSet, by (namespace, StatefulSet name).
    sts_replicas: dict[Key, int] = field(default_factory=dict)
    #: The rollout fields of each pool's status as the operator last decided them: newer
    #: than any body a watch or a handler brings until its write lands (``with_rollout``).
    rollouts: dict[Key, dict[str, Any]] = field(default_factory=dict)
    workers: list[WorkerInfo] | None = None  # None: not read yet, or the database is away
    backlog: dict[str | None, int] = field(default_factory=dict)
    database_error: str | None = None
    #: The store knows at least one build (read by the registry loop).
    builds_in_use: bool = False
    locks: dict[Key, asyncio.Lock] = field(default_factory=dict)
    #: Called when a pool or its StatefulSet changed (the autoscaler looks again).
    pool_changed: Callable[[], None] = lambda: None
    #: Instances the status sync should re-read on its next tick.
    dirty: set[str] = field(default_factory=set)
    #: OrchestrationSchedules, by CR and by engine schedule id, and their run CRs' names.
    schedules: dict[Key, ScheduleView] = field(default_factory=dict)
    schedule_ids: dict[str, Key] = field(default_factory=dict)
    runs: dict[Key, set[str]] = field(default_factory=dict)
    #: Schedules whose engine schedule should be read again / whose runs changed.
    schedules_to_read: set[Key] = field(default_factory=set)
    schedules_touched: set[Key] = field(default_factory=set)
    schedules_changed: asyncio.Event = field(default_factory=asyncio.Event)
    #: CRs with a ttlSecondsAfterFinished that have ended: when to delete them (epoch s).
    expiring: dict[Key, float] = field(default_factory=dict)
    expiring_changed: asyncio.Event = field(default_factory=asyncio.Event)
    #: One rollout step of a pool outside kopf's handlers (set by ``build_registry``).
    pool_step: Callable[[Key], Awaitable[None]] | None = None

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
        schedule = view.schedule
        if schedule is not None:
            self.runs.setdefault((key[0], schedule), set()).add(key[1])
            self.touch_schedule((key[0], schedule))
        expires = view.expires_at()
        if expires is not None and self.expiring.get(key) != expires:
            self.expiring[key] = expires
            self.expiring_changed.set()
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
        self.expiring.pop(key, None)
        schedule = view.schedule if view is not None else None
        if schedule is not None:
            self.runs.get((key[0], schedule), set()).discard(key[1])
            self.touch_schedule((key[0], schedule))

    # ─── OrchestrationSchedules ─────────────────────────────────────────────

    def observe_schedule(self, body: Mapping[str, Any]) -> ScheduleView:
        meta = body.get("metadata", {})
        key = (str(meta.get("namespace")), str(meta.get("name")))
        slimmed = {k: v for k, v in body.items() if k != "status"}
        slimmed["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
        slimmed["status"] = {k: v for k, v in (body.get("status") or {}).items()
                             if k != "operator"}
        view = self.schedules.get(key)
        if view is None:
            view = self.schedules[key] = ScheduleView(slimmed)
            self.schedule_ids[view.schedule_id] = key
            self.schedules_to_read.add(key)
            self.schedules_changed.set()
        else:
            view.body = slimmed
        return view

    def forget_schedule(self, key: Key) -> None:
        view = self.schedules.pop(key, None)
        if view is not None and self.schedule_ids.get(view.schedule_id) == key:
            del self.schedule_ids[view.schedule_id]
        self.schedules_to_read.discard(key)
        self.schedules_touched.discard(key)

    def read_schedule(self, key: Key) -> None:
        """Have the schedule sync read the engine schedule again (it fired, or changed)."""
        if key in self.schedules:
            self.schedules_to_read.add(key)
            self.schedules_changed.set()

    def touch_schedule(self, key: Key) -> None:
        """Have the schedule sync look at the schedule's runs again (no database read)."""
        if key in self.schedules:
            self.schedules_touched.add(key)
            self.schedules_changed.set()

    def instances_changed(self, instance_ids: Iterable[str], everything: bool) -> None:
        """From the status sync's change feed: a tick's instance that no run CR follows yet
        (just created) has its schedule read again; so fired runs are learnt of without any
        polling. A followed run's changes reach the schedule through its CR's watch."""
        if everything:
            for key in self.schedules:
                self.read_schedule(key)
            return
        for instance_id in instance_ids:
            if instance_id in self.by_instance:
                continue
            sid = run_schedule_id(instance_id)
            owner = self.schedule_ids.get(sid) if sid is not None else None
            if owner is not None:
                self.read_schedule(owner)

    def forget_pool(self, key: Key) -> None:
        """A WorkerPool is gone (its DELETED event, a 404, or a list without it)."""
        self.pools.pop(key, None)
        self.sts_status.pop(key, None)
        self.metrics.forget_pool(*key)
        self.rollouts.pop(key, None)
        self.locks.pop(pool_lock(key), None)

    def remember(self, key: Key, fields: Mapping[str, Any]) -> None:
        """Keep the rollout fields of a status the operator decided or wrote."""
        decided = {k: fields[k] for k in ROLLOUT_FIELDS if k in fields}
        if decided:
            self.rollouts.setdefault(key, {}).update(decided)

    def with_rollout(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``body`` with the rollout fields the operator last decided for the pool."""
        meta = body.get("metadata") or {}
        decided = self.rollouts.get((str(meta.get("namespace")), str(meta.get("name"))))
        if not decided:
            return dict(body)
        return {**body, "status": {**(body.get("status") or {}), **decided}}

    def note_builds(self, present: bool) -> None:
        """Whether the store knows builds. When it starts to, every followed instance is
        read once: one that got its pin before could show no ``buildId`` until its next
        change (the status sync looks for pins only while builds exist)."""
        if present and not self.builds_in_use:
            for instance in self.by_instance:
                self.mark_dirty(instance)
        self.builds_in_use = present

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
