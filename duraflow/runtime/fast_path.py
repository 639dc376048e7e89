"""The fast path: one transaction per sequential step while an instance stays in this process.

The plain path costs four round trips per step: orchestrator fetch, turn commit, worker
fetch, worker ack. When a turn schedules activities this runtime can run itself, the fast
path does instead:

1. *Claim*: the turn's commit inserts those worker rows already locked by this runtime and
   they start in its activity slots at once (no worker fetch, no notification).
2. *Hold*: the same commit keeps the instance lock (same token, until now + ``HOLD_MS``)
   instead of releasing it, unless other messages for the instance are waiting.
3. *Continue*: when a claimed activity finishes, its result is applied to the live replay in
   the cache and the next turn is committed together with the deletion of the activity's
   row: one transaction for "activity done + next turn" (DBOS does the same). Results that
   arrive while a continuation commits are applied together by the next one.

Every row stays visible to other processes. A hold is a short lease: once it expires anyone
may take the instance over (fetch replaces the token); a continuation then fails with
``LockLostError`` and its results take the plain path (``ack_work_item``), so nothing is
lost or applied twice. A crash loses nothing either: the claimed rows' locks expire and
another worker runs them again, exactly as for fetched rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from duraflow.core import workitems as wi
from duraflow.core.models import RUNNING
from duraflow.core.version import ENGINE_VERSION, pack
from duraflow.providers.clock import now_ms
from duraflow.providers.errors import ProviderError
from duraflow.providers.items import OrchestrationItem, TurnCommit, TurnResult, WorkLease
from duraflow.providers.protocol import Provider
from duraflow.runtime.activity_dispatcher import ActivityDispatcher
from duraflow.runtime.metrics import Metrics
from duraflow.runtime.options import RuntimeOptions
from duraflow.runtime.resilience import retry_call
from duraflow.runtime.turns import ReplayCache, Turn, TurnBuilder

log = logging.getLogger("duraflow.orchestration")

#: How long a commit keeps its instance locked for an in-process continuation. Messages for
#: a held instance wait at most this long (or until the running activity finishes, which
#: releases the hold when messages are waiting); longer activities take the plain path.
HOLD_MS = 250


@dataclass(slots=True)
class Hold:
    """An instance whose lock this runtime kept after a commit."""

    token: str
    execution_id: int
    leases: dict[str, int]  # claimed rows (token -> activity id) that continue this hold
    pending: list[tuple[WorkLease, wi.WorkItem]] = field(default_factory=list)
    running: bool = False
    expiry: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class Claims:
    """What ``FastPath.prepare`` reserved for one commit."""

    reserved: int  # activity slots reserved for rows the commit will insert locked
    running: dict[str, int]  # the carried hold's still-running claims (token -> activity id)
    sent_at: float  # monotonic time before the commit was sent: a hold lasts HOLD_MS from it


class FastPath:
    """Claims, holds and continuations for one orchestration dispatcher."""

    def __init__(
        self,
        provider: Provider,
        options: RuntimeOptions,
        metrics: Metrics,
        cache: ReplayCache,
        builder: TurnBuilder,
        activities: ActivityDispatcher | None,
        emit_traces: Callable[[OrchestrationItem, Turn], None],
    ) -> None:
        self.provider = provider
        self.options = options
        self.metrics = metrics
        self.cache = cache
        self.builder = builder
        self.activities = activities
        self._emit_traces = emit_traces
        self._holds: dict[str, Hold] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Capability filtering: the turns this runtime commits pin their new executions to
        # this engine's version; a runtime told not to replay that version must not continue
        # them in memory either, so it claims activities but never holds.
        low, high = options.replay_range
        self._may_hold = low <= pack(ENGINE_VERSION) <= high
        #: Set when the runtime shuts down: results then take the plain path, which the
        #: activity dispatcher's own shutdown waits for.
        self.closing = False

    # ─── Committing a turn ──────────────────────────────────────────────────

    async def commit(
        self, item: OrchestrationItem, turn: Turn, carry: Hold | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> TurnResult | None:
        """Commit ``turn`` under ``item``'s lock, claiming what this runtime can run and
        keeping the lock while claimed activities run. ``carry``: the hold a continuation
        turn runs under (its still-running activities keep it alive). ``on_sent`` is
        called once the commit is on its way, before its round trip."""
        claims = await self.prepare(turn, carry)
        known = self.provider.notifier.running  # what this process knows is running
        ticket = known.sending(item.instance_id)
        if on_sent is not None:
            on_sent()
        try:
            result = await retry_call(
                lambda: self.provider.ack_orchestration_item(item.lock_token, turn.commit),
                f"commit turn of {item.instance_id!r}", self.metrics,
            )
        except BaseException:
            known.committed(item.instance_id, ticket, False)
            self.drop(claims)
            raise
        known.committed(item.instance_id, ticket, turn.leaves_running)
        return self.committed(item, turn, claims, result, carry)

    async def prepare(self, turn: Turn, carry: Hold | None = None) -> Claims:
        """Before a commit: reserve activity slots for what this runtime can run and ask to
        keep the lock while they run. Hand the result to ``committed`` or ``drop``."""
        commit = turn.commit
        cancelled = {ref.activity_id for ref in commit.cancelled_activities}
        running = {token: activity_id for token, activity_id in (carry.leases if carry else {})
                   .items() if activity_id not in cancelled}
        reserved = await self._reserve(commit)
        if self._may_hold and (reserved or running) and commit.status in (None, RUNNING):
            commit.hold_ms = HOLD_MS
        return Claims(reserved, running, time.monotonic())

    def drop(self, claims: Claims) -> None:
        """The commit did not happen: give the reserved activity slots back."""
        self._unreserve(claims.reserved)
        claims.reserved = 0

    def committed(
        self, item: OrchestrationItem, turn: Turn, claims: Claims, result: TurnResult | None,
        carry: Hold | None = None,
    ) -> TurnResult | None:
        """After a commit: start the claimed activities and remember the hold."""
        commit, running = turn.commit, claims.running
        self.forget(item.instance_id)
        if result is None:  # a provider without claims: the rows were queued normally
            self.drop(claims)
            return None
        if len(result.claimed) < claims.reserved:  # pragma: no cover - provider contract
            self._unreserve(claims.reserved - len(result.claimed))
        running.update((lease.lock_token, lease.activity_id) for lease in result.claimed)
        if result.held and running:
            hold = carry if carry is not None else Hold(item.lock_token, commit.execution_id, {})
            hold.leases = running
            hold.expiry = asyncio.get_running_loop().call_later(
                HOLD_MS / 1000, self.provider.notifier.notify_orchestrator
            )
            self._holds[item.instance_id] = hold
            self.provider.notifier.hold_instance(item.instance_id,
                                                 claims.sent_at + HOLD_MS / 1000)
        if self.activities is not None:
            for lease in result.claimed:
                self.activities.start_claimed(lease, self.report)
        return result

    async def _reserve(self, commit: TurnCommit) -> int:
        if self.activities is None or not commit.worker_items:
            return 0
        reserved = 0
        for worker_item in commit.worker_items:
            if await self.activities.reserve(worker_item):
                worker_item.claim = True
                reserved += 1
        if reserved:
            commit.claim_lock_ms = self.options.worker_lock_timeout_ms
        return reserved

    def _unreserve(self, count: int) -> None:
        if self.activities is not None:
            for _ in range(count):
                self.activities.unreserve()

    def forget(self, instance_id: str, only: Hold | None = None) -> None:
        """The hold ended (commit, take-over): results of its activities go the plain way
        unless a new hold takes them. With ``only``, end that hold and no newer one."""
        hold = self._holds.get(instance_id)
        if hold is None or (only is not None and hold is not only):
            return
        del self._holds[instance_id]
        self.provider.notifier.release_instance(instance_id)
        if hold.expiry is not None:
            hold.expiry.cancel()
            hold.expiry = None

    # ─── Continuations ──────────────────────────────────────────────────────

    async def report(self, lease: WorkLease, completion: wi.WorkItem) -> None:
        """Where a claimed activity's result goes: into its held instance's next turn, or,
        when the instance is no longer held here, to the worker queue."""
        hold = self._holds.get(lease.instance_id)
        if (hold is None or self.closing
                or hold.leases.pop(lease.lock_token, None) is None):
            await self._plain(lease, completion)
            return
        hold.pending.append((lease, completion))
        if hold.running:
            return  # the continuation in progress applies it next
        # A task of its own, so the activity's slot is free while the turn commits.
        hold.running = True
        task = asyncio.create_task(self._run_continuation(lease.instance_id, hold))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_continuation(self, instance_id: str, hold: Hold) -> None:
        try:
            await self._continue(instance_id, hold)
        except Exception:  # the queue path still has every row: nothing is lost
            log.exception("continuation of %r failed unexpectedly", instance_id)
            self.forget(instance_id, hold)
        finally:
            hold.running = False

    async def _continue(self, instance_id: str, hold: Hold) -> None:
        while hold.pending and self._holds.get(instance_id) is hold:
            batch, hold.pending = hold.pending, []
            replay = self.cache.checkout(instance_id)
            if replay is None or replay.execution_id != hold.execution_id:
                if replay is not None:
                    self.cache.put(replay)
                self.forget(instance_id, hold)
                hold.pending[:0] = batch
                break
            item = OrchestrationItem(
                instance_id=instance_id, lock_token=hold.token, attempt_count=1,
                messages=[completion for _, completion in batch],
                orchestration_name=replay.name, orchestration_version=replay.version,
                execution_id=replay.execution_id, execution_status=RUNNING,
                history_len=replay.history_len, history=None,
            )
            began = time.perf_counter()
            outcome = self.builder.build(item, replay, None, now_ms())
            if not isinstance(outcome, Turn):  # pragma: no cover - a live replay runs
                self.forget(instance_id, hold)
                hold.pending[:0] = batch
                break
            outcome.commit.completed_work = [lease.lock_token for lease, _ in batch]
            self._emit_traces(item, outcome)
            try:
                await self.commit(item, outcome, hold)
            except ProviderError as exc:  # includes LockLostError
                # Taken over, or failed (rolled back, or committed and a retry found the
                # rows gone): the worker queue decides, exactly once.
                log.debug("continuation of %r did not commit (%s); reporting through the "
                          "queue", instance_id, exc)
                self.forget(instance_id, hold)
                hold.pending[:0] = batch
                break
            # Counted like a fetched turn, once committed: it continued the cached replay.
            self.metrics.turn_committed(replay.name, outcome.commit, outcome.output,
                                        time.perf_counter() - began, True)
            if outcome.commit.cancelled_activities:
                cancelled = {ref.activity_id for ref in outcome.commit.cancelled_activities}
                hold.pending = [(lease, c) for lease, c in hold.pending
                                if lease.activity_id not in cancelled]
                if self.activities is not None:
                    self.activities.cancel_local(outcome.commit.cancelled_activities)
            if outcome.replay is not None:
                self.cache.put(outcome.replay)
        if hold.pending and self._holds.get(instance_id) is not hold:
            batch, hold.pending = hold.pending, []
            for lease, completion in batch:
                await self._plain(lease, completion)

    async def _plain(self, lease: WorkLease, completion: wi.WorkItem) -> None:
        if self.activities is not None:
            await self.activities.ack_completion(lease, completion)

    async def stop(self, timeout_s: float) -> None:
        """Let running continuations commit (within ``timeout_s``); holds simply expire, so
        forget them and let late results take the plain path."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for instance_id in list(self._holds):
            self.forget(instance_id)
