"""The orchestrator queue of the PostgreSQL provider: enqueue (with hand-off), fetch, the
turn commit (through the group-commit queue), abandon, renew and the next due time."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping

import asyncpg

from duraflow.core import workitems as wi
from duraflow.providers.clock import now_ms
from duraflow.providers.common import claimed_leases, encode_item, instance_status_row
from duraflow.providers.errors import LockLostError, ProviderError
from duraflow.providers.items import (
    OrchestrationItem,
    OutboundMessage,
    PreparedTurn,
    TurnCommit,
    TurnResult,
)
from duraflow.providers.postgres.announce import Announcement, change_code
from duraflow.providers.postgres.codec import EncodedCommit, encode_commit
from duraflow.providers.postgres.queue_base import QueueBase
from duraflow.providers.wakeups import InstanceChange, OrchestratorTaker

log = logging.getLogger("duraflow.provider")

#: start_with_turn's parameters: instance, message, lock, replay range, token, then the
#: 19 commit_turn arguments that follow its token (the last one: the build).
_START_WITH_TURN_ARGS = ", ".join(f"${n}" for n in range(1, 6 + 19 + 1))

#: status_after_commit's columns in ``instance_status_row``'s order.
_STATUS_COLUMNS = ("name", "version", "execution_id", "status", "output", "custom_status",
                   "custom_status_version", "parent")


@dataclasses.dataclass(slots=True)
class _TurnPlan:
    """A turn about to be committed: its encoded arguments and its announcement."""

    commit: TurnCommit
    encoded: EncodedCommit
    args: tuple[object, ...]  # commit_turn's arguments after the lock token
    change: InstanceChange
    changed: bool
    code: list[object]
    due: int | None
    worker: bool
    taken: Announcement | None


class OrchestratorQueue(QueueBase):
    """``PostgresProvider``'s orchestrator-queue operations."""

    async def enqueue_orchestrator(self, message: OutboundMessage) -> None:
        op = "enqueue_orchestrator"
        encoded = encode_item(op, message.item)
        taker = self.notifier.orchestrator_taker
        if message.visible_at_ms is None and taker is not None and await taker.try_reserve():
            if await self._enqueue_and_take(message, encoded, taker):
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

    @property
    def start_with_turn_sql(self) -> str:
        return f"SELECT * FROM {self._s}.start_with_turn({_START_WITH_TURN_ARGS})"

    async def _enqueue_and_take(
        self, message: OutboundMessage, encoded: str, taker: OrchestratorTaker
    ) -> bool:
        """Enqueue and, in the same transaction, lock the instance for this process's
        dispatcher, which runs the turn without a fetch (``enqueue_and_take``). A start of
        a new instance goes further: the dispatcher runs its first turn first and the same
        transaction stores the turn instead of the message (``start_with_turn``).
        True when the dispatcher got the item or the turn was stored; the reserved slot is
        given back otherwise."""
        low, high = taker.replay_range
        lock_ms = max(int(taker.lock_timeout_ms), 0)
        try:
            if message.item.get("type") == wi.START_ORCHESTRATION:
                first = await taker.prepare_first_turn(message.instance_id, message.item)
                if first is not None and await self._start_with_turn(
                        message.instance_id, encoded, taker, first, lock_ms):
                    return True
            row = await self._db.fetchrow(
                "enqueue_orchestrator",
                f"SELECT * FROM {self._s}.enqueue_and_take($1, $2, $3, $4, $5, $6)",
                message.instance_id, encoded, lock_ms, int(low), int(high), taker.build_id,
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

    async def _start_with_turn(
        self, instance_id: str, encoded: str, taker: OrchestratorTaker, first: PreparedTurn,
        lock_ms: int,
    ) -> bool:
        """Store a new instance together with its first turn. True when stored; False when
        nothing was written, and the caller enqueues as usual. When the instance exists
        or has other messages waiting, the function does that itself, and the taker gets
        the item here."""
        low, high = taker.replay_range
        plan = self._plan_turn(first.commit)
        try:
            row = await self._db.fetchrow(
                "enqueue_orchestrator", self.start_with_turn_sql, instance_id, encoded,
                lock_ms, int(low), int(high), first.lock_token, *plan.args, idempotent=False,
            )
        except ProviderError as exc:
            self._unplan_turn(plan)
            taker.first_turn_dropped(first)
            if not isinstance(exc.__cause__, asyncpg.PostgresError) or isinstance(
                    exc.__cause__, asyncpg.PostgresConnectionError):
                raise  # the outcome is unknown: the client decides, as for any enqueue
            # Rejected, so rolled back: a turn the database refuses must not cost the
            # client its start. Queue the start; the usual turn runs and reports.
            log.warning("the first turn of %r was rejected (%s); starting it the usual way",
                        instance_id, exc)
            return False
        except BaseException:
            self._unplan_turn(plan)
            taker.first_turn_dropped(first)
            raise
        if row is not None and row["out_committed"]:
            taker.first_turn_committed(first, self._turn_stored(plan, row))
            return True
        self._unplan_turn(plan)
        taker.first_turn_dropped(first)
        item = None if row is None else await self._item(row, taker.cached)
        if item is None:
            taker.unreserve()
            # Queued, but locked elsewhere: announced like any message another holder takes.
            self._after_announcement(None, True, now_ms(), False, None)
            self.notifier.notify_orchestrator()
        else:
            taker.deliver(item)
        return True

    async def fetch_orchestration_item(
        self,
        lock_timeout_ms: int,
        cached: Mapping[str, tuple[int, int]] | None = None,
        replay_range: tuple[int, int] | None = None,
        build_id: str | None = None,
    ) -> OrchestrationItem | None:
        items = await self.fetch_orchestration_items(lock_timeout_ms, cached, 1, replay_range,
                                                     build_id)
        return items[0] if items else None

    async def fetch_orchestration_items(
        self,
        lock_timeout_ms: int,
        cached: Mapping[str, tuple[int, int]] | None = None,
        max_items: int = 1,
        replay_range: tuple[int, int] | None = None,
        build_id: str | None = None,
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
                f"SELECT * FROM {self._s}.fetch_orchestration_item($1, $2::jsonb, $3, $4, $5,"
                " $6)",
                lock_ms, None, load_history, low, high, build_id, idempotent=True,
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
                f" {self._s}.fetch_orchestration_item($1 + 0 * g.n, $2::jsonb, $3, $4, $5, $7)"
                " AS r",
                lock_ms, None, load_history, low, high, int(max_items), build_id,
                idempotent=True,
            ))
        return [await self._item(row, cached) for row in rows]

    async def ack_orchestration_item(self, lock_token: str, commit: TurnCommit) -> TurnResult:
        plan = self._plan_turn(commit)
        try:
            # Through the group-commit queue (batch.py): alone when quiet, together under load.
            row = await self._turns.commit((lock_token, *plan.args))
        except BaseException:
            self._unplan_turn(plan)
            raise
        if row is None:  # pragma: no cover - the function always returns one row
            raise ProviderError("ack_orchestration_item", "ack returned no row", retryable=False)
        return self._turn_stored(plan, row)

    def _plan_turn(self, commit: TurnCommit) -> _TurnPlan:
        """A turn's commit arguments (after the lock token) and what to announce with it."""
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
        args = (
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
            None if taken is None else taken.payload(instance_follows=changed),
            None if taken is None or not changed else json.dumps(code),
            commit.build_id,
        )
        return _TurnPlan(commit, encoded, args, change, changed, code, due, worker, taken)

    def _unplan_turn(self, plan: _TurnPlan) -> None:
        """The turn was not stored: its announcement goes back to the announcer."""
        if plan.taken is not None:
            self._announcer.restore(plan.taken)

    def _turn_stored(self, plan: _TurnPlan, row: asyncpg.Record) -> TurnResult:
        instance_id = str(row["out_instance_id"])
        self._after_announcement(plan.taken, True, plan.due, plan.worker,
                                 (instance_id, plan.code) if plan.changed else None)
        if row["out_due"] is not None:
            self.notifier.notify_orchestrator(int(row["out_due"]))
        if plan.worker:
            self.notifier.notify_worker()
        change = plan.change
        if row.get("st_status") is not None:  # finished: waiters here get the status as left
            change = dataclasses.replace(change, snapshot=instance_status_row(
                instance_id, [row[f"st_{key}"] for key in _STATUS_COLUMNS]))
        # Locally every turn wakes the instance's waiters (cheap: a dict lookup); across
        # processes only status, custom status and creation are announced.
        self.notifier.notify_instance(instance_id, change)
        return TurnResult(claimed_leases(plan.commit, plan.encoded.claim_tokens),
                          bool(row["out_held"]))

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
