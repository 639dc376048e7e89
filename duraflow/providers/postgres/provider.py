"""PostgreSQL provider: the production backend, shared by many worker processes and pods.

All queue logic runs inside PostgreSQL as plpgsql functions (``functions/*.sql``, installed
by ``migrations.py``), so one orchestration turn costs two round trips (fetch, ack) and one
activity two more (fetch, ack), however many rows they touch.
Dispatchers in any number of processes never take the same instance or activity twice and
never block each other: instances are claimed with a schema-scoped advisory *try*-lock plus
the ``instance_locks`` row (a lost race moves on to the next candidate instead of reporting
"no work"), activities with ``FOR UPDATE SKIP LOCKED``; see the SQL files for why this
cannot deadlock.

Lock expiry and the visibility of immediate messages use the database clock, so pods with
skewed clocks agree on who holds a lock. Absolute due times chosen by the runtime (timer
``visible_at_ms``) are stored as given, and ``next_orchestrator_due_ms`` returns them as
stored, so a pod compares them against its own clock as it computed them.

Wake-ups cross processes through LISTEN/NOTIFY (``listen.py``); the methods here also call
the local ``notifier`` right after a commit, so in-process waiters do not wait for the
notification's round trip.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg

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
from duraflow.providers.entra import ENTRA_UNSUPPORTED
from duraflow.providers.errors import ProviderError
from duraflow.providers.postgres import admin, reads, sessions, workers
from duraflow.providers.postgres.builds import BuildOperations
from duraflow.providers.postgres.db import open_database
from duraflow.providers.postgres.errors import DB_ERRORS, connect_error
from duraflow.providers.postgres.listen import Listener
from duraflow.providers.postgres.migrations import migrate
from duraflow.providers.postgres.orchestrator_queue import OrchestratorQueue
from duraflow.providers.postgres.prime import prime
from duraflow.providers.postgres.schedule_queue import ScheduleQueue
from duraflow.providers.postgres.sql import Channels, validate_schema
from duraflow.providers.postgres.worker_queue import WorkerQueue
from duraflow.providers.protocol import WORKER_ROW_RETENTION_MS

DEFAULT_CONNECT_TIMEOUT_S = 10.0


log = logging.getLogger("duraflow.provider")


class InvalidSchemaError(ProviderError, ValueError):
    """The schema name is not a plain identifier (and will not be interpolated)."""

    def __init__(self, message: str) -> None:
        super().__init__("connect", message, retryable=False)


class PostgresProvider(OrchestratorQueue, WorkerQueue, BuildOperations, ScheduleQueue):
    """Durable state in PostgreSQL schema ``schema``; build it with ``connect*``. The queue
    operations live in ``orchestrator_queue.py`` and ``worker_queue.py``, the build
    operations in ``builds.py``, the schedules in ``schedule_queue.py``."""

    _type = "postgres"
    name = "postgres"
    cross_process_notify = True

    # ─── Construction ────────────────────────────────────────────────────────

    @classmethod
    def connect(cls, url: str, **options: Any) -> PostgresProvider:
        """Blocking constructor (duroxide-python style), schema ``public``."""
        return run_sync(cls.connect_async(url, "public", **options))

    @classmethod
    def connect_with_schema(cls, url: str, schema: str, **options: Any) -> PostgresProvider:
        return run_sync(cls.connect_async(url, schema, **options))

    @staticmethod
    def connect_with_entra(*args: Any, **kwargs: Any) -> PostgresProvider:
        """duroxide-python's Entra ID connect: not supported (no Azure token endpoint)."""
        raise NotImplementedError(ENTRA_UNSUPPORTED)

    connect_with_schema_and_entra = connect_with_entra

    @classmethod
    async def connect_async(
        cls,
        url: str,
        schema: str = "public",
        *,
        pool_max: int | None = None,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        listen: bool = True,
        listener_ping_s: float = 30.0,
    ) -> PostgresProvider:
        """Connect, migrate ``schema`` and start the LISTEN connection.

        Fails within about ``connect_timeout_s`` with ``PostgresConnectError`` naming host
        and port when the server cannot be reached or refuses the credentials.
        """
        try:
            validate_schema(schema)
        except ValueError as exc:
            raise InvalidSchemaError(str(exc)) from None
        primer: list[PostgresProvider] = []  # set once the schema's functions exist

        async def init(conn: asyncpg.Connection) -> None:
            if primer:
                await primer[0]._prime(conn)

        db = await open_database(
            url, schema, pool_max=pool_max, connect_timeout_s=connect_timeout_s, init=init
        )
        channels = Channels.for_schema(schema)
        provider = cls(db, channels, asyncio.get_running_loop())
        provider.cross_process_notify = listen
        try:
            await db.run("migrate", lambda conn: migrate(conn, schema), idempotent=True)
            # Every connection opened from now on is primed as it opens; the first one now.
            primer.append(provider)
            await db.run("prime", provider._prime, idempotent=True)
            if listen:
                listener = Listener.for_url(
                    url,
                    schema,
                    channels,
                    provider.notifier,
                    connect_timeout_s=connect_timeout_s,
                    ping_interval_s=listener_ping_s,
                    sender=provider._announcer.sender,
                )
                try:
                    await listener.start()
                except Exception as exc:
                    raise connect_error(url, exc, connect_timeout_s) from None
                provider._listener = listener
        except BaseException:
            await provider.close()
            raise
        return provider

    async def _prime(self, conn: Any) -> None:
        """Warm a new connection's plans for the quiet path (``prime.py``); best effort: a
        connection that cannot be primed simply pays on its first turns."""
        try:
            await prime(conn, self.start_with_turn_sql, self._turns.single_sql)
        except DB_ERRORS as exc:
            log.debug("could not prime a new connection: %s", exc)

    @property
    def listener(self) -> Listener | None:
        return self._listener

    async def ping(self) -> None:
        await self._db.fetchval("ping", "SELECT 1", idempotent=True)

    async def close(self) -> None:
        """Close the listener and the pool. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._turns.close()
        await self._announcer.close()
        if self._listener is not None:
            await self._listener.close()
        await self._db.close()

    async def drop_schema(self) -> None:
        """``DROP SCHEMA ... CASCADE``: every table, function and row of this provider."""
        await self._db.fetchval(
            "drop_schema", f"DROP SCHEMA IF EXISTS {self._s} CASCADE", idempotent=True
        )

    def __repr__(self) -> str:
        return f"PostgresProvider(schema={self.schema!r})"

    # ─── Sessions ────────────────────────────────────────────────────────────

    async def renew_sessions(
        self, owners: Sequence[str], extend_ms: int, idle_timeout_ms: int
    ) -> list[str]:
        return await sessions.renew(self._db, owners, extend_ms, idle_timeout_ms)

    async def release_sessions(self, owners: Sequence[str]) -> int:
        return await sessions.release(self._db, owners, self.channels.worker)

    async def cleanup_sessions(self) -> int:
        return await sessions.cleanup(self._db)

    async def abandon_work_item(
        self, lock_token: str, delay_ms: int | None = None, ignore_attempt: bool = False
    ) -> None:
        due = await self._db.fetchval(
            "abandon_work_item",
            f"SELECT {self._s}.abandon_work_item($1, $2, $3)",
            lock_token,
            None if delay_ms is None else int(delay_ms),
            bool(ignore_attempt),
            idempotent=False,
        )
        if due is None:
            self.notifier.notify_worker()

    # ─── Worker registry ─────────────────────────────────────────────────────

    async def heartbeat_worker(
        self, worker: WorkerInfo, retention_ms: int = WORKER_ROW_RETENTION_MS
    ) -> bool:
        return await workers.heartbeat(self._db, worker, retention_ms)

    async def remove_worker(self, worker_node_id: str, runtime_id: str) -> None:
        await workers.remove(self._db, worker_node_id, runtime_id)

    async def list_workers(self, include_gone: bool = False) -> list[WorkerInfo]:
        return await workers.list_workers(self._db, include_gone)

    async def get_activity_backlog(self) -> dict[str | None, int]:
        return await workers.activity_backlog(self._db)

    async def get_work_demand(self) -> WorkDemand:
        return await workers.work_demand(self._db)

    async def drain_workers(self, worker_node_ids: Sequence[str]) -> None:
        await workers.drain(self._db, worker_node_ids)

    async def undrain_workers(self, worker_node_ids: Sequence[str]) -> None:
        await workers.undrain(self._db, worker_node_ids)

    async def get_drained_workers(self) -> dict[str, bool]:
        return await workers.drained(self._db)

    # ─── Reads ───────────────────────────────────────────────────────────────

    async def get_instance_status(self, instance_id: str) -> InstanceStatus | None:
        return await reads.instance_status(self._db, instance_id)

    async def get_custom_status(
        self, instance_id: str, last_seen_version: int
    ) -> tuple[str | None, int] | None:
        return await reads.custom_status(self._db, instance_id, last_seen_version)

    async def read_history(
        self, instance_id: str, execution_id: int | None = None
    ) -> list[HistoryEvent]:
        return await reads.read_history(self._db, instance_id, execution_id)

    # ─── Admin ───────────────────────────────────────────────────────────────

    async def list_instances(self) -> list[str]:
        return await reads.list_instances(self._db, None)

    async def list_instances_by_status(self, status: str) -> list[str]:
        return await reads.list_instances(self._db, status)

    async def list_executions(self, instance_id: str) -> list[int]:
        return await reads.list_executions(self._db, instance_id)

    async def get_instance_info(self, instance_id: str) -> InstanceInfo:
        return await reads.instance_info(self._db, instance_id)

    async def get_execution_info(self, instance_id: str, execution_id: int) -> ExecutionInfo:
        return await reads.execution_info(self._db, instance_id, execution_id)

    async def get_system_metrics(self) -> SystemMetrics:
        return await reads.system_metrics(self._db)

    async def get_queue_depths(self) -> QueueDepths:
        return await reads.queue_depths(self._db)

    async def get_kv_value(self, instance_id: str, key: str) -> str | None:
        return await reads.kv_value(self._db, instance_id, key)

    async def get_kv_all_values(self, instance_id: str) -> dict[str, str]:
        return await reads.kv_all_values(self._db, instance_id)

    async def get_instance_stats(self, instance_id: str) -> SystemStats | None:
        return await reads.instance_stats(self._db, instance_id)

    async def list_children(self, instance_id: str) -> list[str]:
        return await reads.list_children(self._db, instance_id)

    async def delete_instance_tree(self, instance_id: str, force: bool) -> DeleteInstanceResult:
        result, deleted = await admin.delete_tree(self._db, instance_id, force)
        for gone in deleted:
            self.notifier.notify_instance(gone)
        return result

    async def delete_instance_bulk(self, filter: InstanceFilter) -> DeleteInstanceResult:
        result, deleted = await admin.delete_bulk(self._db, filter)
        for gone in deleted:
            self.notifier.notify_instance(gone)
        return result

    async def prune_executions(self, instance_id: str, options: PruneOptions) -> PruneResult:
        return await admin.prune(self._db, instance_id, options)

    async def prune_executions_bulk(
        self, filter: InstanceFilter, options: PruneOptions
    ) -> PruneResult:
        return await admin.prune_bulk(self._db, filter, options)


__all__ = ["InvalidSchemaError", "PostgresProvider"]
