"""``SqliteProvider``: the async face of the SQLite backend, and its notification duties.

The SQL lives in the sibling modules as plain functions; this class only moves each call to
the database thread (one hop per operation, see ``db``) and, once a write has committed,
wakes whoever it concerns through ``notifier``. Notifications are sent after the commit and
never from the database thread, because the ``Notifier`` belongs to the provider's loop.

SQLite has no cross-process signal, so ``cross_process_notify`` is False and dispatchers in
other processes sharing the file discover work by polling.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping, Sequence

from duraflow.bridge import run_sync
from duraflow.core.events import HistoryEvent
from duraflow.core.models import (
    DeleteInstanceResult,
    ExecutionInfo,
    InstanceFilter,
    InstanceInfo,
    InstanceStatus,
    PruneOptions,
    PruneResult,
    QueueDepths,
    SystemMetrics,
    SystemStats,
    WorkDemand,
    WorkerInfo,
)
from duraflow.providers.admin_rules import DeletePage
from duraflow.providers.clock import now_ms
from duraflow.providers.common import claimed_leases, encode_item
from duraflow.providers.items import (
    DEFAULT_TAG_FILTER,
    OrchestrationItem,
    OutboundMessage,
    SessionClaim,
    TurnCommit,
    TurnResult,
    WorkerTagFilter,
    WorkLease,
)
from duraflow.providers.protocol import WORKER_ROW_RETENTION_MS
from duraflow.providers.schedule_items import (
    DueTimes,
    FireResult,
    Planner,
    ScheduleChange,
    StoredSchedule,
)
from duraflow.providers.schedule_rows import RUNS_KEPT
from duraflow.providers.sqlite import (
    admin,
    codec,
    orchestrator_queue,
    reads,
    schedules,
    sessions,
    worker_queue,
    workers,
)
from duraflow.providers.sqlite.builds import BuildOperations
from duraflow.providers.sqlite.db import MEMORY, Database
from duraflow.providers.wakeups import InstanceChange, Notifier


class SqliteProvider(BuildOperations):
    """Durable storage in one SQLite file (or a private in-memory database).

    Build it with ``SqliteProvider.open(path)`` / ``in_memory()`` from blocking code (the
    provider then lives on Duraflow's shared background loop), or with ``await
    open_async(path)`` / ``await in_memory_async()`` inside a running loop. Opening failures
    raise ``SqliteOpenError``, which is both a ``RuntimeError`` and a ``ProviderError``.
    """

    name = "sqlite"
    cross_process_notify = False

    def __init__(self, db: Database, loop: asyncio.AbstractEventLoop) -> None:
        self._db = db
        self.loop = loop
        self.notifier = Notifier()

    # Construction ------------------------------------------------------------

    @staticmethod
    def open(path: str) -> SqliteProvider:
        """Open (creating if needed) ``path``: ``sqlite:path``, ``sqlite://path`` or bare."""
        return run_sync(SqliteProvider.open_async(path))

    @staticmethod
    def in_memory() -> SqliteProvider:
        """A fresh private in-memory database, gone when the provider is closed."""
        return run_sync(SqliteProvider.in_memory_async())

    @staticmethod
    async def open_async(path: str) -> SqliteProvider:
        db = await Database.open(path)
        return SqliteProvider(db, asyncio.get_running_loop())

    @staticmethod
    async def in_memory_async() -> SqliteProvider:
        return await SqliteProvider.open_async(MEMORY)

    @property
    def path(self) -> str:
        """The database file path, or ``":memory:"``."""
        return self._db.path

    async def close(self) -> None:
        """Close the connection and stop the database thread; safe to call twice."""
        await self._db.close()

    async def ping(self) -> None:
        await self._db.run("ping", _select_one)

    def __repr__(self) -> str:
        return f"SqliteProvider({self._db.path!r})"

    # Orchestrator queue ------------------------------------------------------

    async def enqueue_orchestrator(self, message: OutboundMessage) -> None:
        op = "enqueue_orchestrator"
        encoded = encode_item(op, message.item)
        visible_at = await self._db.run(op, orchestrator_queue.enqueue, message, encoded)
        self.notifier.notify_orchestrator(visible_at)

    async def fetch_orchestration_item(
        self,
        lock_timeout_ms: int,
        cached: Mapping[str, tuple[int, int]] | None = None,
        replay_range: tuple[int, int] | None = None,
        build_id: str | None = None,
    ) -> OrchestrationItem | None:
        # ``cached`` is only looked up (``.get``) for the instance the fetch picks, on the
        # database thread: copying it per fetch would cost O(cache size) every turn.
        return await self._db.run(
            "fetch_orchestration_item", orchestrator_queue.fetch, lock_timeout_ms, cached,
            replay_range, build_id,
        )

    async def fetch_orchestration_items(
        self,
        lock_timeout_ms: int,
        cached: Mapping[str, tuple[int, int]] | None = None,
        max_items: int = 1,
        replay_range: tuple[int, int] | None = None,
        build_id: str | None = None,
    ) -> list[OrchestrationItem]:
        return await self._db.run(
            "fetch_orchestration_item", orchestrator_queue.fetch_many, lock_timeout_ms, cached,
            max_items, replay_range, build_id,
        )

    async def ack_orchestration_item(self, lock_token: str, commit: TurnCommit) -> TurnResult:
        prepared = codec.prepare_commit(commit)
        instance_id, held, schedule_due = await self._db.run(
            "ack_orchestration_item", orchestrator_queue.commit_turn, lock_token, prepared
        )
        if schedule_due is not None:  # a tick may wait for the run this turn ended
            self.notifier.notify_schedules(schedule_due)
        if any(not w.claim for w in commit.worker_items):
            self.notifier.notify_worker()
        for message in commit.orchestrator_items:
            self.notifier.notify_orchestrator(message.visible_at_ms)
        self.notifier.notify_instance(
            instance_id,
            InstanceChange(commit.status, commit.custom_status_set, bool(commit.kv_mutations)),
        )
        return TurnResult(claimed_leases(commit, prepared.claim_tokens), held)

    async def abandon_orchestration_item(
        self, lock_token: str, delay_ms: int | None = None, ignore_attempt: bool = False
    ) -> None:
        _, visible_at = await self._db.run(
            "abandon_orchestration_item",
            orchestrator_queue.abandon,
            lock_token,
            delay_ms,
            ignore_attempt,
        )
        self.notifier.notify_orchestrator(visible_at)

    async def renew_orchestration_item_lock(self, lock_token: str, extend_ms: int) -> None:
        await self._db.run(
            "renew_orchestration_item_lock", orchestrator_queue.renew, lock_token, extend_ms
        )

    async def next_orchestrator_due_ms(self) -> int | None:
        return await self._db.run("next_orchestrator_due_ms", orchestrator_queue.next_due)

    # Worker queue ------------------------------------------------------------

    async def fetch_work_item(
        self,
        lock_timeout_ms: int,
        tag_filter: WorkerTagFilter = DEFAULT_TAG_FILTER,
        session: SessionClaim | None = None,
        build_id: str | None = None,
    ) -> WorkLease | None:
        if tag_filter.mode == "none":
            return None
        return await self._db.run(
            "fetch_work_item", worker_queue.fetch, lock_timeout_ms, tag_filter, session, build_id
        )

    async def ack_work_item(self, lock_token: str, completion: OutboundMessage | None) -> None:
        op = "ack_work_item"
        encoded = None
        if completion is not None:
            encoded = (
                completion.instance_id,
                encode_item(op, completion.item),
                completion.visible_at_ms,
            )
        visible_at = await self._db.run(op, worker_queue.ack, lock_token, encoded)
        if completion is not None:
            self.notifier.notify_orchestrator(visible_at)
            self.notifier.notify_instance(completion.instance_id, InstanceChange())

    async def renew_work_item_lock(self, lock_token: str, extend_ms: int) -> None:
        await self._db.run("renew_work_item_lock", worker_queue.renew, lock_token, extend_ms)

    async def lost_work_items(self, lock_tokens: Sequence[str]) -> set[str]:
        if not lock_tokens:
            return set()
        return await self._db.run("lost_work_items", worker_queue.lost, list(lock_tokens))

    async def abandon_work_item(
        self, lock_token: str, delay_ms: int | None = None, ignore_attempt: bool = False
    ) -> None:
        visible_at = await self._db.run(
            "abandon_work_item", worker_queue.abandon, lock_token, delay_ms, ignore_attempt
        )
        if visible_at is None:
            self.notifier.notify_worker()

    # Sessions ----------------------------------------------------------------

    async def renew_sessions(
        self, owners: Sequence[str], extend_ms: int, idle_timeout_ms: int
    ) -> list[str]:
        return await self._db.run(
            "renew_sessions", sessions.renew, list(owners), int(extend_ms), int(idle_timeout_ms)
        )

    async def release_sessions(self, owners: Sequence[str]) -> int:
        released = await self._db.run("release_sessions", sessions.release, list(owners))
        if released:
            self.notifier.notify_worker()  # their waiting activities are anyone's now
        return released

    async def cleanup_sessions(self) -> int:
        return await self._db.run("cleanup_sessions", sessions.cleanup)

    # Worker registry ---------------------------------------------------------

    async def heartbeat_worker(
        self, worker: WorkerInfo, retention_ms: int = WORKER_ROW_RETENTION_MS
    ) -> bool:
        return await self._db.run("heartbeat_worker", workers.heartbeat, worker, retention_ms)

    async def remove_worker(self, worker_node_id: str, runtime_id: str) -> None:
        await self._db.run("remove_worker", workers.remove, worker_node_id, runtime_id)

    async def list_workers(self, include_gone: bool = False) -> list[WorkerInfo]:
        return await self._db.run("list_workers", workers.list_workers, include_gone)

    async def get_activity_backlog(self) -> dict[str | None, int]:
        return await self._db.run("get_activity_backlog", workers.activity_backlog)

    async def get_work_demand(self) -> WorkDemand:
        return await self._db.run("get_work_demand", workers.work_demand)

    async def drain_workers(self, worker_node_ids: Sequence[str]) -> None:
        await self._db.run("drain_workers", workers.drain, list(worker_node_ids))

    async def undrain_workers(self, worker_node_ids: Sequence[str]) -> None:
        await self._db.run("undrain_workers", workers.undrain, list(worker_node_ids))

    async def get_drained_workers(self) -> dict[str, bool]:
        return await self._db.run("get_drained_workers", workers.drained)

    # Reads -------------------------------------------------------------------

    async def get_instance_status(self, instance_id: str) -> InstanceStatus | None:
        return await self._db.run("get_instance_status", reads.instance_status, instance_id)

    async def get_custom_status(
        self, instance_id: str, last_seen_version: int
    ) -> tuple[str | None, int] | None:
        return await self._db.run(
            "get_custom_status", reads.custom_status, instance_id, last_seen_version
        )

    async def read_history(
        self, instance_id: str, execution_id: int | None = None
    ) -> list[HistoryEvent]:
        return await self._db.run("read_history", reads.read_history, instance_id, execution_id)

    async def get_kv_value(self, instance_id: str, key: str) -> str | None:
        return await self._db.run("get_kv_value", reads.kv_value, instance_id, key)

    async def get_kv_all_values(self, instance_id: str) -> dict[str, str]:
        return await self._db.run("get_kv_all_values", reads.kv_all_values, instance_id)

    # Admin -------------------------------------------------------------------

    async def list_instances(self) -> list[str]:
        return await self._db.run("list_instances", reads.list_instances, None)

    async def list_instances_by_status(self, status: str) -> list[str]:
        return await self._db.run("list_instances_by_status", reads.list_instances, status)

    async def list_executions(self, instance_id: str) -> list[int]:
        return await self._db.run("list_executions", reads.list_executions, instance_id)

    async def get_instance_info(self, instance_id: str) -> InstanceInfo:
        return await self._db.run("get_instance_info", reads.instance_info, instance_id)

    async def get_execution_info(self, instance_id: str, execution_id: int) -> ExecutionInfo:
        return await self._db.run(
            "get_execution_info", reads.execution_info, instance_id, execution_id
        )

    async def get_system_metrics(self) -> SystemMetrics:
        return await self._db.run("get_system_metrics", reads.system_metrics)

    async def get_queue_depths(self) -> QueueDepths:
        return await self._db.run("get_queue_depths", reads.queue_depths)

    async def get_instance_stats(self, instance_id: str) -> SystemStats | None:
        return await self._db.run("get_instance_stats", reads.instance_stats, instance_id)

    async def list_children(self, instance_id: str) -> list[str]:
        return await self._db.run("list_children", reads.list_children, instance_id)

    async def delete_instance_tree(self, instance_id: str, force: bool) -> DeleteInstanceResult:
        result, ids = await self._db.run("delete_instance", admin.delete_tree, instance_id, force)
        self._notify_deleted(ids)
        return result

    async def delete_instance_bulk(self, filter: InstanceFilter) -> DeleteInstanceResult:
        result, ids = await self._db.run("delete_instance_bulk", admin.delete_bulk, filter)
        self._notify_deleted(ids)
        return result

    async def prune_executions(self, instance_id: str, options: PruneOptions) -> PruneResult:
        return await self._db.run("prune_executions", admin.prune, instance_id, options)

    async def prune_executions_bulk(
        self, filter: InstanceFilter, options: PruneOptions
    ) -> PruneResult:
        return await self._db.run("prune_executions_bulk", admin.prune_bulk, filter, options)

    async def delete_finished_instances(
        self, completed_before_ms: int, limit: int, after: tuple[int, int] | None = None
    ) -> DeletePage:
        page = await self._db.run(
            "delete_finished_instances", admin.delete_bulk_page,
            InstanceFilter(completed_before=completed_before_ms, limit=limit), False, after)
        self._notify_deleted(page.deleted)
        return page

    def _notify_deleted(self, ids: list[str]) -> None:
        # Waiters on a deleted instance should look again (and find it gone) now; a schedule
        # that waited for one of them to end may be due now.
        for instance_id in ids:
            self.notifier.notify_instance(instance_id)
        if ids:
            self.notifier.notify_schedules()

    # Schedules and leases ----------------------------------------------------

    async def create_schedule(self, schedule: StoredSchedule) -> None:
        await self._db.run("create_schedule", schedules.create, schedule)
        if schedule.state.due_at_ms is not None:
            self.notifier.notify_schedules(schedule.state.due_at_ms)

    async def change_schedule(self, schedule_id: str, change: ScheduleChange) -> StoredSchedule:
        new = await self._db.run("change_schedule", schedules.change, schedule_id, change,
                                 now_ms())
        if new.state.due_at_ms is not None:
            self.notifier.notify_schedules(new.state.due_at_ms)
        return new

    async def delete_schedule(self, schedule_id: str) -> bool:
        return await self._db.run("delete_schedule", schedules.delete, schedule_id)

    async def get_schedule(self, schedule_id: str, runs: int = RUNS_KEPT) -> StoredSchedule | None:
        found = await self._db.run("read_schedules", schedules.read, schedule_id, runs)
        return found[0] if found else None

    async def list_schedules(self, runs: int = RUNS_KEPT) -> list[StoredSchedule]:
        return await self._db.run("read_schedules", schedules.read, None, runs)

    async def fire_due_schedules(self, now_ms: int, limit: int, planner: Planner) -> FireResult:
        result, queued = await self._db.run("fire_due_schedules", schedules.fire_due, now_ms,
                                            limit, planner)
        if queued:
            self.notifier.notify_orchestrator()
        return result

    async def next_due_ms(self) -> DueTimes:
        return await self._db.run("next_due_ms", schedules.next_due, now_ms())

    async def try_lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        return await self._db.run("try_lease", schedules.try_lease, name, holder, ttl_ms)


def _select_one(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1").fetchone()
