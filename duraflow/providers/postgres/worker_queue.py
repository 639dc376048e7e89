"""The worker queue of the PostgreSQL provider: fetch, ack (with the next fetch and the
hand-off of the instance), renew, abandon and the cancellation check."""

from __future__ import annotations

from collections.abc import Sequence

from duraflow.providers.clock import now_ms
from duraflow.providers.common import encode_item
from duraflow.providers.items import (
    DEFAULT_TAG_FILTER,
    OutboundMessage,
    SessionClaim,
    WorkerTagFilter,
    WorkLease,
)
from duraflow.providers.postgres import sessions
from duraflow.providers.postgres.codec import (
    build_lease,
)
from duraflow.providers.postgres.queue_base import QueueBase
from duraflow.providers.wakeups import InstanceChange, OrchestratorTaker

#: fetch_work_item's columns renamed, beside a take's in one row (``_ack_and_take``).
_LEASE_COLUMNS = "".join(
    f", f.out_{name} AS w_{name}" for name in (
        "lock_token", "attempt_count", "item", "instance_id", "execution_id", "activity_id",
        "session_id", "tag", "session_owner"))


def _fetch_arguments(
    lock_timeout_ms: int, tag_filter: WorkerTagFilter, session: SessionClaim | None,
    build_id: str | None,
) -> tuple[object, ...]:
    """``fetch_work_item``'s seven arguments, wherever a statement calls it."""
    return (
        max(int(lock_timeout_ms), 0),
        tag_filter.mode,
        list(tag_filter.tags),
        None if session is None else list(session.owners),
        0 if session is None else max(int(session.lock_timeout_ms), 0),
        session is not None and session.allow_new,
        build_id,
    )


class WorkerQueue(QueueBase):
    """``PostgresProvider``'s worker-queue operations."""

    async def fetch_work_item(
        self,
        lock_timeout_ms: int,
        tag_filter: WorkerTagFilter = DEFAULT_TAG_FILTER,
        session: SessionClaim | None = None,
        build_id: str | None = None,
    ) -> WorkLease | None:
        if tag_filter.mode not in ("any", "default_only", "tags", "default_and"):
            return None  # "none": this worker takes no activities, so do not even ask
        op = "fetch_work_item"
        row = await self._db.fetchrow(
            op,
            f"SELECT * FROM {self._s}.fetch_work_item($1, $2, $3, $4, $5, $6, $7)",
            *_fetch_arguments(lock_timeout_ms, tag_filter, session, build_id),
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
        tag_filter: WorkerTagFilter = DEFAULT_TAG_FILTER,
        session: SessionClaim | None = None,
        build_id: str | None = None,
    ) -> WorkLease | None:
        """``ack_work_item`` and then ``fetch_work_item`` in ONE transaction and round trip:
        a worker slot that finishes an activity reports it and takes its next one together,
        so a queued activity costs one round trip instead of two."""
        if tag_filter.mode not in ("any", "default_only", "tags", "default_and"):
            await self._ack_work_item(lock_token, completion, None)
            return None
        fetch = _fetch_arguments(lock_timeout_ms, tag_filter, session, build_id)
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
                    f" {self._s}.fetch_work_item($6 + 0 * a.visible, $7, $8, $9, $10, $11, $12) f"
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
               f" LEFT JOIN {self._s}.enqueue_and_take($2, $3, $4, $5, $6, $7) t ON TRUE")
        args: list[object] = [lock_token, completion.instance_id, encoded,
                              max(int(taker.lock_timeout_ms), 0), int(low), int(high),
                              taker.build_id]
        if fetch is not None:
            sql += (f" LEFT JOIN {self._s}.fetch_work_item($8, $9, $10, $11, $12, $13, $14) f"
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
