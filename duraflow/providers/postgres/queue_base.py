"""What the PostgreSQL provider's queue halves share: the pool, the notifier, the
cross-process announcements and turning a fetched row into an ``OrchestrationItem``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import asyncpg

from duraflow.providers.items import OrchestrationItem
from duraflow.providers.postgres import reads
from duraflow.providers.postgres.announce import Announcement, Announcer
from duraflow.providers.postgres.batch import TurnBatcher
from duraflow.providers.postgres.codec import (
    build_item,
)
from duraflow.providers.postgres.db import Database
from duraflow.providers.postgres.listen import Listener
from duraflow.providers.postgres.sql import Channels
from duraflow.providers.wakeups import Notifier


class QueueBase:
    """State and helpers of ``PostgresProvider`` used by both of its queues."""

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

    def _peer_count(self) -> int:
        listener = self._listener
        return 1 if listener is None or listener.peers is None else listener.peers

    @property
    def notify_peers(self) -> bool:
        """Whether another process may be listening (see ``listen.py``): only then do
        writes send notifications. Without a listener of its own a provider cannot tell."""
        listener = self._listener
        return listener is None or listener.peers is None or listener.peers > 0

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
