"""PostgreSQL provider: the production backend, shared by many worker processes and pods.

All queue logic runs inside PostgreSQL as plpgsql functions installed by the migrations
(``0002_orchestrator.sql``, ``0003_worker.sql``), so one orchestration turn costs two round
trips (fetch, ack) and one activity two more (fetch, ack), however many rows they touch.
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
import dataclasses
import json
from collections.abc import Mapping, Sequence
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
    WorkerInfo,
)
from duraflow.providers.base import (
    DEFAULT_TAG_FILTER,
    WORKER_ROW_RETENTION_MS,
    InstanceChange,
    LockLostError,
    Notifier,
    OrchestrationItem,
    OrchestratorTaker,
    OutboundMessage,
    ProviderError,
    SessionClaim,
    TagFilter,
    TurnCommit,
    TurnResult,
    WorkLease,
    now_ms,
)
from duraflow.providers.common import encode_item, instance_status_row
from duraflow.providers.entra import ENTRA_UNSUPPORTED
from duraflow.providers.postgres import admin, reads, sessions, workers
from duraflow.providers.postgres.announce import Announcement, Announcer, change_code
from duraflow.providers.postgres.batch import TurnBatcher
from duraflow.providers.postgres.codec import (
    EncodedCommit,
    build_item,
    build_lease,
    claimed_leases,
    encode_commit,
)
from duraflow.providers.postgres.db import Database, open_database
from duraflow.providers.postgres.errors import connect_error
from duraflow.providers.postgres.listen import Listener
from duraflow.providers.postgres.migrations import Channels, migrate, validate_schema

DEFAULT_CONNECT_TIMEOUT_S = 10.0


class InvalidSchemaError(ProviderError, ValueError):
    """The schema name is not a plain identifier (and will not be interpolated)."""

    def __init__(self, message: str) -> None:
        super().__init__("connect", message, retryable=False)


#: status_after_commit's columns in ``instance_status_row``'s order.
_STATUS_COLUMNS = ("name", "version", "execution_id", "status", "output", "custom_status",
                   "custom_status_version", "parent")


#: fetch_work_item's columns renamed, beside a take's in one row (``_ack_and_take``).
_LEASE_COLUMNS = "".join(
    f", f.out_{name} AS w_{name}" for name in (
        "lock_token", "attempt_count", "item", "instance_id", "execution_id", "activity_id",
        "session_id", "tag", "session_owner"))


def _fetch_arguments(
    lock_timeout_ms: int, tag_filter: TagFilter, session: SessionClaim | None
) -> tuple[object, ...]:
    """``fetch_work_item``'s six arguments, wherever a statement calls it."""
    return (
        max(int(lock_timeout_ms), 0),
        tag_filter.mode,
        list(tag_filter.tags),
        None if session is None else list(session.owners),
        0 if session is None else max(int(session.lock_timeout_ms), 0),
        session is not None and session.allow_new,
    )


class PostgresProvider:
    """Durable state in PostgreSQL schema ``schema``; build it with ``connect*``."""

    _type = "postgres"
    name = "postgres"
    cross_process_notify = True

    def __init__(self, db: Database, channels: Channels, loop: asyncio.AbstractEventLoop) -> None:
        self._db = db
        self._s = db.s
        self.schema = db.schema
        self.channels = channels
        self.loop = loop
        self.notifier = Notifier()
        self._listener: Listener | None = None
        self._announcer = Announcer(self._send_notification, peers=self._peer_count)
        self._turns = TurnBatcher(db, "ack_orchestration_item")
        self._closed = False

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
        db = await open_database(
            url, schema, pool_max=pool_max, connect_timeout_s=connect_timeout_s
        )
        channels = Channels.for_schema(schema)
        provider = cls(db, channels, asyncio.get_running_loop())
        provider.cross_process_notify = listen
        try:
            await db.run("migrate", lambda conn: migrate(conn, schema), idempotent=True)
            if listen:
                listener = Listener.for_url(
                    url,
                    schema,
                    channels,
                    provider.notifier,
                    connect_timeout_s=connect_timeout_s,
                    ping_interval_s=listener_ping_s,
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

    # ─── Orchestrator queue ──────────────────────────────────────────────────

    def _peer_count(self) -> int:
        listener = self._listener
        return 1 if listener is None or listener.peers is None else listener.peers

    @property
    def notify_peers(self) -> bool:
        """Whether another process may be listening (see ``listen.py``): only then do
        writes send notifications. Without a listener of its own a provider cannot tell."""
        listener = self._listener
        return listener is None or listener.peers is None or listener.peers > 0

    async def enqueue_orchestrator(self, message: OutboundMessage) -> None:
        op = "enqueue_orchestrator"
        encoded = encode_item(op, message.item)
        taker = self.notifier.orchestrator_taker
        if message.visible_at_ms is None and taker is not None and await taker.try_reserve():
            if await self._enqueue_and_take(message.instance_id, encoded, taker):
                return
            # Queued, but locked elsewhere (or pinned out of range): wake whoever holds it.
            self._after_announcement(None, True, now_ms(), False, None)
            self.notifier.notify_orchestrator()
            return
        # An idle dispatcher in this process takes the message; nobody else need wake.
        due = message.visible_at_ms if message.visible_at_ms is not None else now_ms()
        wanted = not self.notifier.orchestrator_waiting
        taken = self._take_announcement(wanted, due, False)
        try:
            visible = await self._db.fetchval(
                op,
                f"SELECT {self._s}.enqueue_orchestrator($1, $2, $3, $4)",
                message.instance_id,
                encoded,
                message.visible_at_ms,
                None if taken is None else taken.payload(),
                idempotent=False,
            )
        except BaseException:
            if taken is not None:
                self._announcer.restore(taken)
            raise
        self._after_announcement(taken, wanted, due, False, None)
        self.notifier.notify_orchestrator(None if visible is None else int(visible))

    async def _enqueue_and_take(
        self, instance_id: str, encoded: str, taker: OrchestratorTaker
    ) -> bool:
        """Enqueue and, in the same transaction, lock the instance for this process's
        dispatcher, which runs the turn without a fetch (``0008_handoff.sql``). True when
        the dispatcher got the item; the reserved slot is given back otherwise."""
        low, high = taker.replay_range
        try:
            row = await self._db.fetchrow(
                "enqueue_orchestrator",
                f"SELECT * FROM {self._s}.enqueue_and_take($1, $2, $3, $4, $5)",
                instance_id, encoded, max(int(taker.lock_timeout_ms), 0), int(low), int(high),
                idempotent=False,
            )
            item = None if row is None else await self._item(row, taker.cached)
        except BaseException:
            taker.unreserve()
            raise
        if item is None:
            taker.unreserve()
            return False
        taker.deliver(item)
        return True

    def _take_announcement(self, wanted: bool, due: int | None, worker: bool,
                           instance: bool = False) -> Announcement | None:
        """The announcement a write should carry in its transaction, if it should carry
        one now (see ``announce.py``); None when it says nothing or defers."""
        if not wanted or not self.notify_peers or (due is None and not worker and not instance):
            return None
        taken = self._announcer.take()
        if taken is not None:
            taken.merge(due, worker, ())
        return taken

    def _after_announcement(
        self, taken: Announcement | None, wanted: bool, due: int | None, worker: bool,
        instance: tuple[str, list[object]] | None,
    ) -> None:
        if taken is not None:
            self._announcer.sent_in_commit()
        elif wanted and self.notify_peers and (due is not None or worker or instance):
            self._announcer.defer(due, worker, () if instance is None else (instance,))

    async def _send_notification(self, payload: str) -> None:
        await self._db.fetchval(
            "notify", "SELECT pg_notify($1, $2)", self.channels.orchestrator, payload,
            idempotent=True,
        )

    async def fetch_orchestration_item(
        self,
        lock_timeout_ms: int,
        cached: Mapping[str, tuple[int, int]] | None = None,
        replay_range: tuple[int, int] | None = None,
    ) -> OrchestrationItem | None:
        items = await self.fetch_orchestration_items(lock_timeout_ms, cached, 1, replay_range)
        return items[0] if items else None

    async def fetch_orchestration_items(
        self,
        lock_timeout_ms: int,
        cached: Mapping[str, tuple[int, int]] | None = None,
        max_items: int = 1,
        replay_range: tuple[int, int] | None = None,
    ) -> list[OrchestrationItem]:
        op = "fetch_orchestration_item"
        # With a replay cache the history is NOT loaded by the fetch: the cache entry of the
        # instance the database picks is compared afterwards, and only a stale or missing
        # entry costs a second query. Shipping the cache with every fetch would cost
        # O(cache size) per turn.
        load_history = cached is None
        lock_ms = max(int(lock_timeout_ms), 0)
        low = None if replay_range is None else int(replay_range[0])
        high = None if replay_range is None else int(replay_range[1])
        if max_items <= 1:
            row = await self._db.fetchrow(
                op,
                f"SELECT * FROM {self._s}.fetch_orchestration_item($1, $2::jsonb, $3, $4, $5)",
                lock_ms, None, load_history, low, high, idempotent=True,
            )
            rows = [] if row is None else [row]
        else:
            # One statement, one transaction: each call locks its instance, so the next
            # call's candidate query skips it and picks another. The argument refers to the
            # outer row on purpose: a function scan whose arguments do not change is
            # evaluated once and its result replayed for every row.
            rows = list(await self._db.fetch(
                op,
                f"SELECT r.* FROM generate_series(1, $6) AS g (n), LATERAL"
                f" {self._s}.fetch_orchestration_item($1 + 0 * g.n, $2::jsonb, $3, $4, $5) AS r",
                lock_ms, None, load_history, low, high, int(max_items), idempotent=True,
            ))
        return [await self._item(row, cached) for row in rows]

    async def _item(
        self, row: asyncpg.Record, cached: Mapping[str, tuple[int, int]] | None
    ) -> OrchestrationItem:
        """The item of a fetched row; without history in the row (``cached`` given), the
        history is read only when the caller's cache entry is missing or stale."""
        instance_id = str(row["out_instance_id"])
        execution_id = int(row["out_execution_id"])
        history_len = int(row["out_history_len"])
        texts: list[str] | None = row["out_history"]
        if texts is None and cached is not None:
            if row["out_name"] is None:
                texts = []  # the instance does not exist yet: there is no history
            elif cached.get(instance_id) != (execution_id, history_len):
                texts = await reads.history_texts(self._db, instance_id, execution_id)
        return build_item(row, instance_id, execution_id, history_len, texts)

    async def ack_orchestration_item(self, lock_token: str, commit: TurnCommit) -> TurnResult:
        op = "ack_orchestration_item"
        encoded = encode_commit(commit)
        # What other processes need to hear: new orchestrator work, unclaimed activities,
        # and a change of this instance's existence, status or custom status.
        dues = [m.visible_at_ms if m.visible_at_ms is not None else now_ms()
                for m in commit.orchestrator_items]
        due = min(dues) if dues else None
        worker = any(not w.claim for w in commit.worker_items)
        change = InstanceChange(commit.status, commit.custom_status_set, bool(commit.kv_mutations))
        changed = (commit.orchestration_name is not None or commit.status is not None
                   or commit.custom_status_set or bool(commit.kv_mutations))
        code = change_code(change)
        taken = self._take_announcement(True, due, worker, changed)
        try:
            row = await self._commit_turn(
                op, lock_token, commit, encoded, taken, code if changed else None
            )
        except BaseException:
            if taken is not None:
                self._announcer.restore(taken)
            raise
        if row is None:  # pragma: no cover - the function always returns one row
            raise ProviderError(op, "ack returned no row", retryable=False)
        instance_id = str(row["out_instance_id"])
        self._after_announcement(taken, True, due, worker,
                                 (instance_id, code) if changed else None)
        if row["out_due"] is not None:
            self.notifier.notify_orchestrator(int(row["out_due"]))
        if worker:
            self.notifier.notify_worker()
        if row.get("st_status") is not None:  # finished: waiters here get the status as left
            change = dataclasses.replace(change, snapshot=instance_status_row(
                instance_id, [row[f"st_{key}"] for key in _STATUS_COLUMNS]))
        # Locally every turn wakes the instance's waiters (cheap: a dict lookup); across
        # processes only status, custom status and creation are announced.
        self.notifier.notify_instance(instance_id, change)
        return TurnResult(claimed_leases(commit, encoded.claim_tokens), bool(row["out_held"]))

    async def _commit_turn(
        self, op: str, lock_token: str, commit: TurnCommit, encoded: EncodedCommit,
        taken: Announcement | None, code: list[object] | None,
    ) -> asyncpg.Record | None:
        # Through the group-commit queue (batch.py): alone when quiet, together under load.
        return await self._turns.commit((
            lock_token,
            commit.execution_id,
            encoded.delta,
            encoded.worker_items,
            encoded.orchestrator_items,
            encoded.cancelled,
            commit.orchestration_name,
            commit.orchestration_version,
            commit.parent_instance_id,
            commit.status,
            commit.output,
            commit.custom_status_set,
            commit.custom_status,
            encoded.kv,
            commit.claim_lock_ms,
            commit.hold_ms,
            list(commit.completed_work),
            None if taken is None else taken.payload(),
            None if taken is None or code is None else json.dumps(code),
        ))

    async def abandon_orchestration_item(
        self, lock_token: str, delay_ms: int | None = None, ignore_attempt: bool = False
    ) -> None:
        due = await self._db.fetchval(
            "abandon_orchestration_item",
            f"SELECT {self._s}.abandon_orchestration_item($1, $2, $3)",
            lock_token,
            None if delay_ms is None else int(delay_ms),
            bool(ignore_attempt),
            idempotent=False,
        )
        self.notifier.notify_orchestrator(None if due is None else int(due))

    async def renew_orchestration_item_lock(self, lock_token: str, extend_ms: int) -> None:
        s = self._s
        found = await self._db.fetchval(
            "renew_orchestration_item_lock",
            f"UPDATE {s}.instance_locks SET locked_until = {s}.now_ms() + $2"
            f" WHERE lock_token = $1 AND locked_until > {s}.now_ms() RETURNING 1",
            lock_token,
            max(int(extend_ms), 0),
            idempotent=True,
        )
        if found is None:
            raise LockLostError("renew_orchestration_item_lock", "lock lost or expired")

    async def next_orchestrator_due_ms(self) -> int | None:
        s = self._s
        due = await self._db.fetchval(
            "next_orchestrator_due_ms",
            # (SELECT now_ms()) is evaluated once, so it can bound the index scan
            f"SELECT min(visible_at) FROM {s}.orchestrator_queue"
            f" WHERE visible_at > (SELECT {s}.now_ms())",
            idempotent=True,
        )
        return None if due is None else int(due)

    # ─── Worker queue ────────────────────────────────────────────────────────

    async def fetch_work_item(
        self,
        lock_timeout_ms: int,
        tag_filter: TagFilter = DEFAULT_TAG_FILTER,
        session: SessionClaim | None = None,
    ) -> WorkLease | None:
        if tag_filter.mode not in ("any", "default_only", "tags", "default_and"):
            return None  # "none": this worker takes no activities, so do not even ask
        op = "fetch_work_item"
        row = await self._db.fetchrow(
            op,
            f"SELECT * FROM {self._s}.fetch_work_item($1, $2, $3, $4, $5, $6)",
            *_fetch_arguments(lock_timeout_ms, tag_filter, session),
            idempotent=True,
        )
        if row is None:
            return None
        return build_lease(row)

    async def ack_work_item(self, lock_token: str, completion: OutboundMessage | None) -> None:
        if completion is not None:
            await self._ack_work_item(lock_token, completion, None)
            return
        await self._db.fetchval(
            "ack_work_item", f"SELECT {self._s}.ack_work_item($1, NULL, NULL, NULL)",
            lock_token, idempotent=False,
        )

    async def ack_and_fetch_work_item(
        self,
        lock_token: str,
        completion: OutboundMessage,
        lock_timeout_ms: int,
        tag_filter: TagFilter = DEFAULT_TAG_FILTER,
        session: SessionClaim | None = None,
    ) -> WorkLease | None:
        """``ack_work_item`` and then ``fetch_work_item`` in ONE transaction and round trip:
        a worker slot that finishes an activity reports it and takes its next one together,
        so a queued activity costs one round trip instead of two."""
        if tag_filter.mode not in ("any", "default_only", "tags", "default_and"):
            await self._ack_work_item(lock_token, completion, None)
            return None
        fetch = _fetch_arguments(lock_timeout_ms, tag_filter, session)
        return await self._ack_work_item(lock_token, completion, fetch)

    async def _ack_work_item(
        self, lock_token: str, completion: OutboundMessage, fetch: tuple[object, ...] | None
    ) -> WorkLease | None:
        op = "ack_work_item"
        encoded = encode_item(op, completion.item)
        taker = self.notifier.orchestrator_taker
        if completion.visible_at_ms is None and taker is not None and await taker.try_reserve():
            return await self._ack_and_take(lock_token, completion, encoded, fetch, taker)
        due = (completion.visible_at_ms if completion.visible_at_ms is not None
               else now_ms())
        wanted = not self.notifier.orchestrator_waiting
        taken = self._take_announcement(wanted, due, False)
        # The ack without an item deletes the row (no notification); the completion is then
        # enqueued with the notification this process chose, in the same statement and
        # transaction (the subquery runs first); the next item's fetch, when asked for, runs
        # last (a lateral call takes its argument from the enqueue's result).
        acked = (f"SELECT {self._s}.enqueue_orchestrator($2, $3, $4, $5) AS visible"
                 f" FROM (SELECT {self._s}.ack_work_item($1, NULL, NULL, NULL) AS acked) x")
        args = [lock_token, completion.instance_id, encoded, completion.visible_at_ms,
                None if taken is None else taken.payload()]
        try:
            if fetch is None:
                row = await self._db.fetchrow(op, acked, *args, idempotent=False)
            else:
                row = await self._db.fetchrow(
                    op,
                    f"SELECT a.visible, f.* FROM ({acked}) a LEFT JOIN LATERAL"
                    f" {self._s}.fetch_work_item($6 + 0 * a.visible, $7, $8, $9, $10, $11) f"
                    f" ON TRUE",
                    *args, *fetch, idempotent=False,
                )
        except BaseException:
            if taken is not None:
                self._announcer.restore(taken)
            raise
        self._after_announcement(taken, wanted, due, False, None)
        visible = None if row is None else row["visible"]
        if visible is not None:
            self.notifier.notify_orchestrator(int(visible))
            self.notifier.notify_instance(completion.instance_id, InstanceChange())
        if fetch is None or row is None or row["out_lock_token"] is None:
            return None
        return build_lease(row)

    async def _ack_and_take(
        self, lock_token: str, completion: OutboundMessage, encoded: str,
        fetch: tuple[object, ...] | None, taker: OrchestratorTaker,
    ) -> WorkLease | None:
        """The ack of an activity whose instance this process's dispatcher can take next:
        in the same statement and transaction, the result is enqueued AND the instance
        locked for that dispatcher, which runs the turn without a fetch (the hand-off of
        ``enqueue_and_take``), and, when asked, the slot's next item is fetched. The three
        parts touch different rows, so their order within the statement does not matter."""
        low, high = taker.replay_range
        sql = (f"SELECT t.*{_LEASE_COLUMNS if fetch is not None else ''}"
               f" FROM (SELECT {self._s}.ack_work_item($1, NULL, NULL, NULL) AS acked) a"
               f" LEFT JOIN {self._s}.enqueue_and_take($2, $3, $4, $5, $6) t ON TRUE")
        args: list[object] = [lock_token, completion.instance_id, encoded,
                              max(int(taker.lock_timeout_ms), 0), int(low), int(high)]
        if fetch is not None:
            sql += (f" LEFT JOIN {self._s}.fetch_work_item($7, $8, $9, $10, $11, $12) f"
                    " ON TRUE")
            args += fetch
        try:
            row = await self._db.fetchrow("ack_work_item", sql, *args, idempotent=False)
            item = (None if row is None or row["out_instance_id"] is None
                    else await self._item(row, taker.cached))
        except BaseException:
            taker.unreserve()
            raise
        if item is None:  # queued (locked elsewhere, or pinned out of range): wake the holder
            taker.unreserve()
            self._after_announcement(None, True, now_ms(), False, None)
            self.notifier.notify_orchestrator()
        else:
            taker.deliver(item)
        self.notifier.notify_instance(completion.instance_id, InstanceChange())
        if fetch is None or row is None or row["w_lock_token"] is None:
            return None
        return build_lease(row, "w_")

    async def renew_work_item_lock(self, lock_token: str, extend_ms: int) -> None:
        await self._db.fetchval(
            "renew_work_item_lock",
            f"SELECT {self._s}.renew_work_item_lock($1, $2)",
            lock_token,
            max(int(extend_ms), 0),
            idempotent=True,
        )

    async def lost_work_items(self, lock_tokens: Sequence[str]) -> set[str]:
        return await sessions.lost_work_items(self._db, lock_tokens)

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
    ) -> None:
        await workers.heartbeat(self._db, worker, retention_ms)

    async def remove_worker(self, worker_node_id: str, runtime_id: str) -> None:
        await workers.remove(self._db, worker_node_id, runtime_id)

    async def list_workers(self, include_gone: bool = False) -> list[WorkerInfo]:
        return await workers.list_workers(self._db, include_gone)

    async def get_activity_backlog(self) -> dict[str | None, int]:
        return await workers.activity_backlog(self._db)

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
