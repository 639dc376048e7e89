"""Entry point: open the database, start the operator's loops and kopf, stop them together.

``run_operator`` is what ``duraflow operator`` runs and what the tests run in-process. The
order matters: the worker registry is read once before kopf starts, so the first reconciles
already know which orchestrations live workers register; with leader election on, nothing
acts before this replica holds the Lease, and losing the Lease ends the run at once with
``LeaseLost`` (no graceful drain: another replica may be leading already). A graceful stop
releases the Lease once kopf and every loop have stopped, so the next replica need not wait
for it to expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import kopf

from duraflow import AsyncClient, Provider, open_provider
from duraflow_operator.autoscaler import Autoscaler
from duraflow_operator.connection import connect
from duraflow_operator.handlers import build_registry
from duraflow_operator.kube import KubeApi
from duraflow_operator.leader import LeaderElector, LeaseLost
from duraflow_operator.metrics import HealthServer, OperatorMetrics
from duraflow_operator.registry_watch import RegistryWatch
from duraflow_operator.schedule_sync import ScheduleSync
from duraflow_operator.settings import FINALIZER, MANAGED_BY, OperatorSettings
from duraflow_operator.state import OperatorState
from duraflow_operator.status_sync import StatusSync
from duraflow_operator.ttl import TtlSweeper

log = logging.getLogger("duraflow.operator")


async def open_database(settings: OperatorSettings) -> Provider:
    """Connect, retrying with backoff: an operator started before its database waits."""
    delay = 0.5
    while True:
        try:
            return await open_provider(settings.database_url, settings.schema,
                                       pool_max=settings.pg_pool_max)
        except (OSError, RuntimeError) as error:
            log.warning("database not reachable yet (retrying in %.1fs): %s", delay, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


class SpecOnlyDiffBase(kopf.StatusDiffBaseStorage):
    """kopf's last-handled "essence" is the spec plus labels and annotations, so a label or
    annotation edit made kopf store a new essence (a status write) though no handler reacts
    to it. Every handler here follows the spec only: the essence is the spec."""

    def build(self, *, body: kopf.Body,
              extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        essence = super().build(body=body, extra_fields=extra_fields)
        essence.pop("metadata", None)
        return essence


def kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    """kopf's bookkeeping lives in the status (``status.operator``), so it is written in the
    same request as the operator's own status: no annotation writes of its own."""
    kopf_cfg = kopf.OperatorSettings()
    kopf_cfg.persistence.finalizer = FINALIZER
    kopf_cfg.persistence.progress_storage = kopf.StatusProgressStorage(
        field="status.operator.progress", touch_field="status.operator.touch")
    kopf_cfg.persistence.diffbase_storage = SpecOnlyDiffBase(
        field="status.operator.lastHandledSpec")
    kopf_cfg.scanning.disabled = True  # the CRDs are known; no CRD watch needed
    # Server-side: the API server sends only the operator's StatefulSets. (A handler's
    # labels= filter is applied by kopf after it has listed and watched them all.)
    kopf_cfg.watching.label_selectors["apps", "v1", "statefulsets"] = (
        f"app.kubernetes.io/managed-by={MANAGED_BY}")
    kopf_cfg.posting.enabled = False  # Events are posted explicitly (kube.post_event)
    kopf_cfg.watching.reconnect_backoff = 0.5
    kopf_cfg.queueing.error_delays = (1, 2, 5, 10, 30)
    return kopf_cfg


@dataclass(slots=True)
class Running:
    """Handles on a running operator (tests read its counters)."""

    state: OperatorState
    sync: StatusSync
    registry: RegistryWatch
    health: HealthServer | None
    autoscaler: Autoscaler
    schedules: ScheduleSync
    ttl: TtlSweeper


async def run_operator(
    settings: OperatorSettings,
    *,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
    on_running: Any = None,
) -> None:
    """Run until ``stop_flag`` is set (or the Lease is lost)."""
    provider = await open_database(settings)
    kube = KubeApi()
    metrics = OperatorMetrics()
    state = OperatorState(settings=settings, client=AsyncClient(provider), kube=kube,
                          metrics=metrics)
    sync, registry_watch = StatusSync(state), RegistryWatch(state)
    autoscaler = Autoscaler(state)
    schedule_sync, ttl = ScheduleSync(state), TtlSweeper(state)
    health: HealthServer | None = None
    tasks: list[asyncio.Task[Any]] = []  # the loops and kopf (/healthz: none may end)
    waiters: list[asyncio.Future[Any]] = []
    stop = stop_flag or asyncio.Event()
    kopf_ready, lost = asyncio.Event(), asyncio.Event()
    elector: LeaderElector | None = None

    def healthy() -> tuple[bool, dict[str, object]]:
        loops_ok = all(not t.done() for t in tasks)
        return loops_ok and kopf_ready.is_set(), {
            "database": "unreachable" if state.database_error else "ok",
            "kopf": "ready" if kopf_ready.is_set() else "starting",
            "orchestrations": len(state.crs),
        }

    try:
        if settings.metrics_port:
            health = HealthServer(metrics, healthy, state.phase_counts)
            await health.start(settings.metrics_host, settings.metrics_port)
        if on_running is not None:
            on_running(Running(state, sync, registry_watch, health, autoscaler, schedule_sync,
                               ttl))
        registry = build_registry(state)
        tasks.append(asyncio.create_task(registry_watch.run(), name="duraflow-registry"))
        await registry_watch.first_read.wait()
        kopf_cfg = kopf_settings(settings)
        if settings.leader_election:
            connection = connect(settings, kopf_cfg)
            if connection is None:
                raise SystemExit("duraflow operator: no Kubernetes credentials "
                                 "(not in a cluster, no KUBECONFIG, no --kube-url)")
            kube.configure(connection)
            elector = LeaderElector(kube, settings)
            await elector.acquire()
            tasks.append(asyncio.create_task(_keep_lease(elector, lost), name="duraflow-lease"))
        tasks.append(asyncio.create_task(sync.run(), name="duraflow-status-sync"))
        tasks.append(asyncio.create_task(autoscaler.run(), name="duraflow-autoscaler"))
        tasks.append(asyncio.create_task(schedule_sync.run(), name="duraflow-schedule-sync"))
        tasks.append(asyncio.create_task(ttl.run(), name="duraflow-ttl"))
        # Every task is created before kopf starts: kopf takes any task created after its
        # start for one of its own, and a graceful stop waits 5 s for those, then cancels them.
        ready_waiter = asyncio.ensure_future(kopf_ready.wait())
        lost_waiter = asyncio.ensure_future(lost.wait())
        waiters += [ready_waiter, lost_waiter]
        operator = asyncio.create_task(kopf.operator(
            registry=registry, settings=kopf_cfg, standalone=True,
            clusterwide=not settings.namespaces, namespaces=list(settings.namespaces),
            stop_flag=stop, ready_flag=kopf_ready,
        ), name="duraflow-kopf")
        tasks.append(operator)
        await asyncio.wait({operator, ready_waiter, lost_waiter},
                           return_when=asyncio.FIRST_COMPLETED)
        if kopf_ready.is_set() and not lost.is_set() and ready_flag is not None:
            ready_flag.set()
        await asyncio.wait({operator, lost_waiter}, return_when=asyncio.FIRST_COMPLETED)
        if lost.is_set():
            # Stop acting at once: no graceful drain of kopf's queues (the finally cancels
            # kopf and every loop), since another replica may lead from now on.
            raise LeaseLost(f"lost the lease {settings.lease_namespace}/{settings.lease_name}")
        with contextlib.suppress(asyncio.CancelledError):
            await operator
    finally:
        for task in [*tasks, *waiters]:
            task.cancel()
        for task in [*tasks, *waiters]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if elector is not None and elector.is_leader:  # False once the Lease was lost
            # Nothing acts any more: hand the Lease over now (it checks that it is ours).
            with contextlib.suppress(asyncio.CancelledError):
                await elector.release()
        if health is not None:
            await health.stop()
        await kube.close()
        await provider.close()


async def _keep_lease(elector: LeaderElector, lost: asyncio.Event) -> None:
    """Renew until the Lease is lost; whatever ends this (even a bug) ends the leading."""
    try:
        await elector.keep()
    finally:
        lost.set()

