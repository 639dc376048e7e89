"""The LISTEN connection: how dispatchers and clients in every process wake without polling.

Acks, enqueues and abandons ``pg_notify`` on three schema-specific channels (orchestrator
work with its due time, worker work, instance status changes with the instance id). Each
provider keeps ONE dedicated connection, outside the pool, that LISTENs on them and turns
each notification into the matching ``Notifier`` call on the provider's loop.

A pooled connection cannot do this job: LISTEN is per session, and the pool would hand the
session to someone else or recycle it. The dedicated connection can still die (database
restart, failover, ``pg_terminate_backend``, a network partition). A supervisor task notices
through asyncpg's termination callback, or through a periodic ``SELECT 1`` that catches
half-open TCP connections, and reconnects with capped exponential backoff plus jitter.
Notifications sent while it was gone are lost, so after every reconnect it wakes every
dispatcher and instance waiter once: they re-check the database, nothing is missed. While
it is up, the notifier may trust what its own commits left running (``running_here.py``):
every change made elsewhere is heard and drops that knowledge, while the provider's own
notifications, which come back here too, are recognised by their sender and do not.

Peers: every notification costs each listening backend a transaction, so a process that is
alone need not send any (its own waiters are woken in-process). The listener counts the
other listeners of its schema when it connects and at every ping, and announces itself with
a ``hello`` notification so that the processes already running start notifying at once.
Until the first count, and without a listener at all, a provider assumes peers exist.

The listener logs its reconnect attempts at DEBUG only: an outage is a database event, and
the runtime reports it once (``duraflow.runtime.health``) instead of once per component.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable

import asyncpg

from duraflow.providers.postgres.announce import decode_change
from duraflow.providers.postgres.errors import DB_ERRORS
from duraflow.providers.postgres.sql import Channels
from duraflow.providers.wakeups import Notifier

log = logging.getLogger("duraflow.providers.postgres")
HELLO = '{"hello": 1}'

Connector = Callable[[], Awaitable[asyncpg.Connection]]


class Listener:
    """Owns the LISTEN connection of one provider and keeps it alive until ``close``."""

    def __init__(
        self,
        connect: Connector,
        channels: Channels,
        notifier: Notifier,
        *,
        ping_interval_s: float = 30.0,
        max_backoff_s: float = 5.0,
        app_name: str | None = None,
        sender: str | None = None,
    ) -> None:
        self._connect = connect
        self._app_name = app_name
        #: The ``Announcement.sender`` of this listener's own provider.
        self._sender = sender
        #: Other listening processes on this schema (None: not counted yet).
        self.peers: int | None = None
        self._channels = channels
        self._notifier = notifier
        self._ping_interval_s = ping_interval_s
        self._max_backoff_s = max_backoff_s
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.reconnects = 0  # for tests and metrics
        self.connected = asyncio.Event()

    @classmethod
    def for_url(
        cls,
        url: str,
        schema: str,
        channels: Channels,
        notifier: Notifier,
        *,
        connect_timeout_s: float,
        ping_interval_s: float = 30.0,
        sender: str | None = None,
    ) -> Listener:
        # application_name shows in pg_stat_activity which schema a session serves.
        async def connect() -> asyncpg.Connection:
            conn: asyncpg.Connection = await asyncpg.connect(
                url,
                timeout=connect_timeout_s,
                server_settings={"application_name": f"duraflow-listen/{schema}"},
            )
            return conn

        return cls(connect, channels, notifier, ping_interval_s=ping_interval_s,
                   app_name=f"duraflow-listen/{schema}", sender=sender)

    async def start(self) -> None:
        """Connect and LISTEN once (errors propagate), then supervise in the background."""
        await self._open()
        self._notifier.running.enabled = True
        self._task = asyncio.get_running_loop().create_task(
            self._supervise(), name="duraflow-pg-listener"
        )

    async def _open(self) -> None:
        conn = await self._connect()
        try:
            await conn.add_listener(self._channels.orchestrator, self._on_orchestrator)
            await conn.add_listener(self._channels.worker, self._on_worker)
            await conn.add_listener(self._channels.instance, self._on_instance)
            if self._channels.cancel:
                await conn.add_listener(self._channels.cancel, self._on_cancel)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn
        self._lost.clear()
        self.connected.set()
        if self._app_name is not None:
            with contextlib.suppress(*DB_ERRORS):
                await self._count_peers(conn)
                await conn.execute(
                    "SELECT pg_notify($1, $2)", self._channels.orchestrator, HELLO
                )

    async def _count_peers(self, conn: asyncpg.Connection) -> None:
        count = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = $1 AND pid <> pg_backend_pid()",
            self._app_name,
        )
        self.peers = int(count)

    # Notification callbacks run on the connection's (= the provider's) loop.

    def _on_orchestrator(self, _c: object, pid: int, _channel: str, payload: object) -> None:
        text = str(payload) if payload else ""
        if text.startswith("{"):
            self._on_combined(pid, text)
            return
        due: int | None = None
        with contextlib.suppress(TypeError, ValueError):
            due = int(text) if text else None
        self._notifier.notify_orchestrator(due)

    def _on_combined(self, pid: int, text: str) -> None:
        """One notification per transaction (``announce.py``):
        ``{"o": due, "w": 1, "i": {id: change}}``, ``{"s": due}`` (a schedule is due then),
        or ``{"hello": 1}`` from a new peer."""
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict):  # unknown shape: look at everything again
            self._notifier.notify_orchestrator()
            self._notifier.notify_worker()
            self._notifier.notify_schedules()
            self._notifier.notify_all_instances()
            return
        if "hello" in message:
            conn = self._conn
            if conn is not None and pid != conn.get_server_pid():
                self.peers = (self.peers or 0) + 1
            return
        if "o" in message:
            due = message["o"]
            self._notifier.notify_orchestrator(due if isinstance(due, int) else None)
        if message.get("w"):
            self._notifier.notify_worker()
        if "s" in message:
            due = message["s"]
            self._notifier.notify_schedules(due if isinstance(due, int) else None)
        changes = message.get("i")
        own = self._sender is not None and message.get("p") == self._sender
        if isinstance(changes, dict):
            for instance_id, code in changes.items():
                if own:  # this provider's commit: its waiters were woken as it committed
                    self._notifier.notify_instance(str(instance_id), decode_change(code))
                else:
                    self._notifier.heard_instance(str(instance_id), decode_change(code))
        elif changes is not None and not own:
            self._notifier.notify_all_instances()

    def _on_worker(self, _c: object, _pid: int, _channel: str, _payload: object) -> None:
        self._notifier.notify_worker()

    def _on_instance(self, _c: object, _pid: int, _channel: str, payload: object) -> None:
        if payload:
            self._notifier.heard_instance(str(payload))

    def _on_cancel(self, _c: object, _pid: int, _channel: str, payload: object) -> None:
        if payload:
            self._notifier.notify_work_cancelled(str(payload))

    def _on_terminated(self, conn: object) -> None:
        if conn is self._conn:
            self._deaf()
            self._lost.set()

    def _deaf(self) -> None:
        """Changes made elsewhere can no longer be heard (until ``_reconnect`` is done)."""
        self.connected.clear()
        self._notifier.running.enabled = False
        self._notifier.running.forget_all()

    async def _supervise(self) -> None:
        while not self._closed:
            try:
                await asyncio.wait_for(self._lost.wait(), self._ping_interval_s)
            except TimeoutError:
                if await self._alive():
                    continue
            if self._closed:
                return
            await self._drop()
            await self._reconnect()

    async def _alive(self) -> bool:
        conn = self._conn
        if conn is None or conn.is_closed():
            return False
        try:
            # The ping recounts peers: a process that left stops costing notifications.
            ping = self._count_peers(conn) if self._app_name else conn.fetchval("SELECT 1")
            await asyncio.wait_for(ping, min(10.0, self._ping_interval_s))
            return True
        except DB_ERRORS:
            return False

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._deaf()
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def _reconnect(self) -> None:
        delay = 0.05
        while not self._closed:
            try:
                await self._open()
            except Exception as exc:  # whatever it is, the listener must not die of it
                log.debug(
                    "PostgreSQL listener reconnect failed (retrying in %.2fs): %s", delay, exc
                )
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self._max_backoff_s)
                continue
            self.reconnects += 1
            log.debug("PostgreSQL listener reconnected")
            # Whatever was notified while we were away is lost: make everyone look again.
            self._notifier.notify_orchestrator()
            self._notifier.notify_worker()
            self._notifier.notify_schedules()
            self._notifier.notify_all_instances()
            self._notifier.running.enabled = True
            return

    async def close(self) -> None:
        self._closed = True
        self._notifier.running.enabled = False
        self._lost.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2.0)
            except DB_ERRORS:
                conn.terminate()
