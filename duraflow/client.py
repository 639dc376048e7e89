"""``AsyncClient``: start, signal, cancel, observe and administer orchestration instances.

The blocking ``duraflow.Client`` wraps this class. Waits block on the provider's notifier
(in-process wake-ups, and PostgreSQL LISTEN/NOTIFY across processes) with a slow fallback
poll, so waiting for an instance costs a handful of queries, not a tight polling loop.
Every value is validated and JSON-encoded before anything is written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from duraflow.core import workitems as wi
from duraflow.core.builds import check_build_id
from duraflow.core.limits import check_instance_id, check_name, decode_payload, encode_payload
from duraflow.core.models import (
    CONTINUED_AS_NEW,
    FAILED,
    NOT_FOUND,
    RUNNING,
    BuildInfo,
    DeleteInstanceResult,
    Event,
    ExecutionInfo,
    InstanceFilter,
    InstanceInfo,
    InstanceStatus,
    InstanceTree,
    PruneOptions,
    PruneResult,
    QueueDepths,
    SystemMetrics,
    SystemStats,
    WorkDemand,
    WorkerInfo,
)
from duraflow.core.status import Status
from duraflow.core.version import SemVer
from duraflow.providers.errors import ProviderError
from duraflow.providers.items import OutboundMessage
from duraflow.providers.protocol import Provider
from duraflow.providers.wakeups import InstanceChange, InstanceChangeFeed, WorkFeed
from duraflow.schedules.api import ScheduleApi


class OperationTimedOut(TimeoutError, RuntimeError):
    """A wait ran out of time. Both a ``TimeoutError`` and (as in duroxide-python) a
    ``RuntimeError``, so either ``except`` clause catches it."""

    def __init__(self, message: str = "Operation timed out") -> None:
        super().__init__(message)


class OrchestrationResult:
    """Status of an instance; ``output`` is JSON-decoded (raw string if not JSON)."""

    def __init__(
        self,
        status: str,
        output: Any = None,
        error: str | None = None,
        custom_status: str | None = None,
        custom_status_version: int = 0,
    ) -> None:
        self.status = status
        self.output = output
        self.error = error
        self.custom_status = custom_status
        self.custom_status_version = custom_status_version

    @property
    def is_terminal(self) -> bool:
        return self.status in Status.TERMINAL

    def __repr__(self) -> str:
        # str(): a Status member shows as the plain string a duroxide program prints.
        return (f"OrchestrationResult(status={str(self.status)!r}, output={self.output!r}, "
                f"error={self.error!r}, custom_status={self.custom_status!r}, "
                f"custom_status_version={self.custom_status_version})")


#: A worker node id is a pod name (at most 253 characters) or a host name.
MAX_WORKER_NODE_ID = 253


def _node_ids(worker_node_ids: Sequence[str]) -> list[str]:
    """The ids of a drain call, checked: a plain string is refused (it would be taken as a
    sequence of one-letter ids)."""
    if isinstance(worker_node_ids, str):
        raise TypeError("worker_node_ids must be a sequence of ids, not one string")
    ids = list(worker_node_ids)
    for node in ids:
        if not isinstance(node, str) or not node or len(node) > MAX_WORKER_NODE_ID:
            raise ValueError(f"a worker node id must be a string of 1 to {MAX_WORKER_NODE_ID} "
                             f"characters, got {node!r}")
    return ids


def result_from_status(status: InstanceStatus | None) -> OrchestrationResult:
    if status is None:
        return OrchestrationResult(NOT_FOUND)
    state = RUNNING if status.status == CONTINUED_AS_NEW else status.status
    if state == FAILED:
        return OrchestrationResult(state, None, status.output, status.custom_status,
                                   status.custom_status_version)
    output = decode_payload(status.output) if state != RUNNING else None
    return OrchestrationResult(state, output, None, status.custom_status,
                               status.custom_status_version)


class AsyncClient(ScheduleApi):
    """Start, signal, observe and administer instances, and (``ScheduleApi``) schedules."""

    def __init__(self, provider: Provider) -> None:
        if not isinstance(provider, Provider):
            raise TypeError(f"Client needs a Duraflow provider, got {type(provider).__name__}")
        self.provider = provider
        # Fallback poll while waiting: long when other processes' changes are heard anyway.
        self._fallback_s = 2.0 if provider.cross_process_notify else 0.1

    # ─── Starting and signalling ────────────────────────────────────────────

    async def start_orchestration(self, instance_id: str, name: str, input: Any = None) -> None:
        await self._start(instance_id, name, input, None)

    async def start_orchestration_versioned(
        self, instance_id: str, name: str, input: Any, version: str
    ) -> None:
        SemVer(check_name("orchestration version", version))
        await self._start(instance_id, name, input, version)

    async def _start(self, instance_id: str, name: str, input: Any, version: str | None) -> None:
        check_instance_id(instance_id)
        check_name("orchestration name", name)
        payload = encode_payload("orchestration input", input)
        item = wi.start_orchestration(instance_id, name, payload, version)
        await self.provider.enqueue_orchestrator(OutboundMessage(instance_id, item))

    async def raise_event(
        self,
        instance_id: str,
        event_name: str,
        data: Any = None,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        """Raise an external event. With ``idempotency_key``, raising again with the same key
        is a no-op for the instance's current execution: the engine records the event once.
        That lets a client that crashed between raising and recording that it raised simply
        raise again (the Kubernetes operator does this for ``spec.events``)."""
        check_instance_id(instance_id)
        check_name("event name", event_name)
        if idempotency_key is not None:
            check_name("idempotency key", idempotency_key)
        item = wi.external_raised(
            instance_id, event_name, encode_payload("event data", data), idempotency_key
        )
        await self.provider.enqueue_orchestrator(OutboundMessage(instance_id, item))

    async def enqueue_event(self, instance_id: str, queue_name: str, data: Any = None) -> None:
        check_instance_id(instance_id)
        check_name("queue name", queue_name)
        item = wi.queue_message(instance_id, queue_name, encode_payload("queue message", data))
        await self.provider.enqueue_orchestrator(OutboundMessage(instance_id, item))

    async def cancel_instance(self, instance_id: str, reason: str | None = None) -> None:
        check_instance_id(instance_id)
        item = wi.cancel_instance(instance_id, "" if reason is None else str(reason))
        await self.provider.enqueue_orchestrator(OutboundMessage(instance_id, item))

    # Typed aliases (duroxide-python keeps both spellings)
    start_orchestration_typed = start_orchestration
    start_orchestration_versioned_typed = start_orchestration_versioned
    raise_event_typed = raise_event
    enqueue_event_typed = enqueue_event

    # ─── Status and waits ───────────────────────────────────────────────────

    async def get_status(self, instance_id: str) -> OrchestrationResult:
        return result_from_status(await self.provider.get_instance_status(instance_id))

    async def wait_for_orchestration(
        self, instance_id: str, timeout_ms: int = 30_000
    ) -> OrchestrationResult:
        """Wait until the instance is Completed or Failed; ``OperationTimedOut`` otherwise."""
        return await self._wait(instance_id, timeout_ms, lambda r: r.is_terminal,
                                running_is_enough=True)

    async def wait_for_orchestration_typed(
        self, instance_id: str, timeout_ms: int = 30_000
    ) -> Any:
        result = await self.wait_for_orchestration(instance_id, timeout_ms)
        if result.status == FAILED:
            raise Exception(result.error or "Orchestration failed")
        return result.output

    async def wait_for_status_change(
        self,
        instance_id: str,
        last_seen_version: int = 0,
        poll_interval_ms: int = 200,
        timeout_ms: int = 30_000,
    ) -> OrchestrationResult:
        """Wait until ``custom_status_version`` exceeds ``last_seen_version`` or the instance
        finishes. ``poll_interval_ms`` only bounds the fallback poll; changes made in this
        process (or announced by the database) wake the wait immediately."""
        fallback = max(poll_interval_ms, 1) / 1000
        return await self._wait(
            instance_id, timeout_ms,
            lambda r: r.custom_status_version > last_seen_version or r.is_terminal,
            fallback,
            custom_status_matters=True,
        )

    async def _wait(
        self,
        instance_id: str,
        timeout_ms: int,
        done: Callable[[OrchestrationResult], bool],
        fallback_s: float | None = None,
        custom_status_matters: bool = False,
        running_is_enough: bool = False,
    ) -> OrchestrationResult:
        deadline = time.monotonic() + max(timeout_ms, 0) / 1000
        fallback = self._fallback_s if fallback_s is None else min(fallback_s, self._fallback_s)

        def worth_reading(change: InstanceChange | None) -> bool:
            return (change is None or change.status in Status.TERMINAL
                    or (custom_status_matters and change.custom_status_changed))

        notifier = self.provider.notifier
        with notifier.watch_instance(instance_id) as watch:
            # ``running_is_enough``: ``done`` is false for any running instance. One that a
            # runtime of this process holds, or that its last commit left running with no
            # change heard since, is running, and the watch hears its next change: no need
            # to read it first (``Notifier.known_running``).
            result: OrchestrationResult | None = None
            if not (running_is_enough and notifier.known_running(instance_id)):
                result = await self.get_status(instance_id)
            while result is None or not done(result):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise OperationTimedOut()
                changes = await watch.next(min(remaining, fallback))
                # A commit of this process that finished the instance says how it left it.
                left = changes[-1].snapshot if changes and changes[-1] is not None else None
                if left is not None and done(result_from_status(left)):
                    return result_from_status(left)
                # A turn that left the instance running with the same custom status cannot
                # satisfy the wait: skip the read (the fallback poll still re-checks).
                if not changes or any(worth_reading(c) for c in changes):
                    result = await self.get_status(instance_id)
            return result

    def watch_instance_changes(self) -> InstanceChangeFeed:
        """A feed of the ids of every instance whose status or custom status changes (or that
        is created), in this process and, on PostgreSQL, in every process on the database.

        For a reader that follows many instances with one loop (the Kubernetes operator):
        ``changes = await feed.next(timeout_s)`` returns the ids changed since the last call,
        de-duplicated, and ``changes.everything`` when notifications may have been missed
        (re-check everything). Create the feed BEFORE reading the state it keeps current;
        close it (or use ``with``) when done. Notifications are best-effort wake-ups: a
        reader must read the instance's status rather than trust the notification alone.
        """
        return self.provider.notifier.watch_all_instances()

    # ─── KV store ───────────────────────────────────────────────────────────

    async def get_kv_value(self, instance_id: str, key: str) -> str | None:
        return await self.provider.get_kv_value(instance_id, key)

    async def get_kv_value_typed(self, instance_id: str, key: str) -> Any:
        raw = await self.get_kv_value(instance_id, key)
        return None if raw is None else json.loads(raw)

    async def get_kv_all_values(self, instance_id: str) -> dict[str, str]:
        return await self.provider.get_kv_all_values(instance_id)

    async def wait_for_kv_value(self, instance_id: str, key: str, timeout_ms: int = 30_000) -> str:
        """Wait until ``key`` is set on the instance; ``TimeoutError`` (``OperationTimedOut``)
        otherwise. Woken by the commit that sets it, not by polling."""
        deadline = time.monotonic() + max(timeout_ms, 0) / 1000
        with self.provider.notifier.watch_instance(instance_id) as watch:
            while True:
                value = await self.get_kv_value(instance_id, key)
                if value is not None:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise OperationTimedOut(
                        f"Timed out waiting for value '{key}' on instance '{instance_id}'"
                    )
                changes = await watch.next(min(remaining, self._fallback_s))
                while changes and all(c is not None and not c.kv_changed for c in changes):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    changes = await watch.next(min(remaining, self._fallback_s))

    async def wait_for_kv_value_typed(
        self, instance_id: str, key: str, timeout_ms: int = 30_000
    ) -> Any:
        return json.loads(await self.wait_for_kv_value(instance_id, key, timeout_ms))

    # ─── Admin ──────────────────────────────────────────────────────────────

    async def get_system_metrics(self) -> SystemMetrics:
        return await self.provider.get_system_metrics()

    async def get_orchestration_stats(self, instance_id: str) -> SystemStats | None:
        return await self.provider.get_instance_stats(instance_id)

    async def get_queue_depths(self) -> QueueDepths:
        return await self.provider.get_queue_depths()

    async def list_workers(self, include_gone: bool = False) -> list[WorkerInfo]:
        """Runtimes recorded in the worker registry, by ``worker_node_id``; those unseen for
        three heartbeat intervals only with ``include_gone`` (``alive`` is False)."""
        return await self.provider.list_workers(bool(include_gone))

    # ─── Builds (docs/rollouts.md) ──────────────────────────────────────────

    async def list_builds(self) -> list[BuildInfo]:
        """Every build the store knows, oldest first: its state (current, draining, retired,
        pending), its live workers and the running executions still pinned to it."""
        return await self.provider.list_builds()

    async def set_current_build(self, build_id: str) -> None:
        """Make ``build_id`` current: new starts go to it, the previous current build drains
        (a rollback is promoting the old build again). ``UnknownBuildError`` for a build no
        runtime ever registered."""
        await self.provider.set_current_build(check_build_id(build_id))

    async def drain_build(self, build_id: str) -> None:
        """``build_id`` takes nothing new and finishes what is pinned to it (with no current
        build, new starts wait). ``UnknownBuildError``."""
        await self.provider.drain_build(check_build_id(build_id))

    async def move_instance(self, instance_id: str, build_id: str) -> None:
        """Pin a running instance to ``build_id`` now, without a replay check (an operator's
        override, e.g. to rescue instances from a bad build): its next turns and its waiting
        activities run on that build; a turn of the old build in flight is discarded and
        runs again there. ``UnknownBuildError``, ``ProviderError`` when it is not running."""
        check_instance_id(instance_id)
        await self.provider.move_instance(instance_id, check_build_id(build_id))

    async def adopt_unpinned(self, build_id: str) -> int:
        """Say that the runtimes running without a build id run ``build_id``: register it if
        the store does not know it (current when no build is current, else pending) and pin
        to it every running execution that runtimes without a build id have run (pinned to
        no build). Returns how many it pinned; calling it again pins only what is new.

        For the first rollout onto builds (the operator calls it as it adopts a WorkerPool
        made before revisions): build-less runtimes pin nothing, and an unpinned execution
        is pinned by whichever build runs its next turn, so new code could otherwise replay
        a history old code wrote. Executions that have not run a turn yet stay unpinned (new
        work: the current build takes it). Only pinning closes the gap while no build-less
        runtime is left: one that keeps running still takes every execution."""
        return await self.provider.adopt_unpinned(check_build_id(build_id))

    async def get_activity_backlog(self) -> dict[str | None, int]:
        """Activities waiting for a worker, per tag (``None``: untagged)."""
        return await self.provider.get_activity_backlog()

    # ─── Elastic pools (docs/autoscaling.md) ────────────────────────────────

    async def get_work_demand(self) -> WorkDemand:
        """Activities waiting and running per tag, instances with orchestration work and
        live sessions per owner, in one query (what an autoscaler sizes pools from)."""
        return await self.provider.get_work_demand()

    def watch_work(self) -> WorkFeed:
        """Hear of new work as it is announced (on PostgreSQL by any process), to read
        ``get_work_demand`` again; close the feed (or use ``with``) when done."""
        return self.provider.notifier.watch_work()

    async def drain_workers(self, worker_node_ids: Sequence[str]) -> None:
        """Ask the runtimes of these worker nodes (pod names) to drain: within a heartbeat
        they take no new work and no new sessions, finish what runs, release their
        sessions and report ``drain_state="drained"``; ``get_drained_workers`` then says
        they are idle. The request stays until ``undrain_workers``."""
        await self.provider.drain_workers(_node_ids(worker_node_ids))

    async def undrain_workers(self, worker_node_ids: Sequence[str]) -> None:
        """Withdraw drain requests: those runtimes take work again at their next heartbeat."""
        await self.provider.undrain_workers(_node_ids(worker_node_ids))

    async def get_drained_workers(self) -> dict[str, bool]:
        """Every worker node asked to drain, and whether it is idle (safe to remove)."""
        return await self.provider.get_drained_workers()

    async def list_all_instances(self) -> list[str]:
        return await self.provider.list_instances()

    async def list_instances_by_status(self, status: str) -> list[str]:
        return await self.provider.list_instances_by_status(status)

    async def get_instance_info(self, instance_id: str) -> InstanceInfo:
        return await self.provider.get_instance_info(instance_id)

    async def get_execution_info(self, instance_id: str, execution_id: int) -> ExecutionInfo:
        return await self.provider.get_execution_info(instance_id, execution_id)

    async def list_executions(self, instance_id: str) -> list[int]:
        return await self.provider.list_executions(instance_id)

    async def read_execution_history(self, instance_id: str, execution_id: int) -> list[Event]:
        history = await self.provider.read_history(instance_id, execution_id)
        return [Event.from_history(event) for event in history]

    async def get_instance_tree(self, instance_id: str) -> InstanceTree:
        await self.provider.get_instance_info(instance_id)  # raises when missing
        tree = InstanceTree(instance_id, [instance_id])
        frontier = [instance_id]
        while frontier:
            children = await self.provider.list_children(frontier.pop(0))
            tree.all_ids.extend(children)
            frontier.extend(children)
        return tree

    async def delete_instance(self, instance_id: str, force: bool = False) -> DeleteInstanceResult:
        return await self.provider.delete_instance_tree(instance_id, force)

    async def delete_instance_bulk(
        self, filter: InstanceFilter | None = None
    ) -> DeleteInstanceResult:
        return await self.provider.delete_instance_bulk(filter or InstanceFilter())

    async def prune_executions(
        self, instance_id: str, options: PruneOptions | None = None
    ) -> PruneResult:
        return await self.provider.prune_executions(instance_id, options or PruneOptions())

    async def prune_executions_bulk(
        self, filter: InstanceFilter | None = None, options: PruneOptions | None = None
    ) -> PruneResult:
        return await self.provider.prune_executions_bulk(
            filter or InstanceFilter(), options or PruneOptions()
        )


__all__ = [
    "AsyncClient",
    "InstanceChangeFeed",
    "OperationTimedOut",
    "WorkFeed",
    "OrchestrationResult",
    "ProviderError",
]
