"""The orchestration dispatcher: fetch a locked batch, run its turn, commit it atomically.

One fetch loop per runtime feeds up to ``orchestration_concurrency`` turns at once. When the
queue is empty the loop sleeps until the provider's notifier says there is work, until the
next timer is due, or until the idle fallback poll; it never spins. Live replays are kept in
a ``ReplayCache`` so a turn costs its new messages, not a replay of the whole history.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from duraflow.core import workitems as wi
from duraflow.core.events import HistoryEvent
from duraflow.providers.clock import now_ms
from duraflow.providers.errors import LockLostError, ProviderError
from duraflow.providers.items import ActivityRef, OrchestrationItem, PreparedTurn, TurnResult
from duraflow.providers.protocol import Provider
from duraflow.providers.schedule_items import DueTimes
from duraflow.runtime.activity_dispatcher import ActivityDispatcher
from duraflow.runtime.capability import incompatible, replayable
from duraflow.runtime.drain import Gate
from duraflow.runtime.due_times import READ_TTL_S, StoredDueTimes
from duraflow.runtime.fast_path import Claims, FastPath
from duraflow.runtime.metrics import Metrics
from duraflow.runtime.options import RuntimeOptions
from duraflow.runtime.registry import OrchestrationRegistry
from duraflow.runtime.resilience import Backoff, retry_call
from duraflow.runtime.turns import Abandon, ReplayCache, Turn, TurnBuilder

log = logging.getLogger("duraflow.orchestration")
runtime_log = logging.getLogger("duraflow.runtime")


@dataclass(slots=True)
class _FirstTurn(PreparedTurn):
    """A first turn prepared for the provider, and what finishing it needs."""

    item: OrchestrationItem
    turn: Turn
    claims: Claims
    began: float
    ticket: int  # ``RunningHere.sending``'s, for the outcome


class _Slot:
    """A dispatcher slot taken for one fetched item, given back exactly once: when its
    turn's commit is sent (for a turn that schedules no activities), or when its task ends."""

    __slots__ = ("_release",)

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


class OrchestrationDispatcher:
    def __init__(
        self,
        provider: Provider,
        registry: OrchestrationRegistry,
        options: RuntimeOptions,
        metrics: Metrics,
        on_activities_cancelled: Callable[[list[ActivityRef]], None],
        activities: ActivityDispatcher | None = None,
        due_times: StoredDueTimes | None = None,
    ) -> None:
        self.provider = provider
        self.options = options
        self.metrics = metrics
        self.cache = ReplayCache(options.replay_cache_size)
        self.registry = registry
        self.builder = TurnBuilder(registry, metrics, options.max_attempts, options.build_id)
        self._on_cancelled = on_activities_cancelled
        self._slots = asyncio.Semaphore(max(options.orchestration_concurrency, 1))
        # A turn that schedules no activities gives its slot back once its commit is sent,
        # so the next fetch overlaps the commit's round trip instead of waiting for it
        # (timers that come due in a burst are fired at the fetch rate, not at fetch +
        # commit; see ``_run_turn``); this bounds the commits in flight.
        self._committing = asyncio.Semaphore(8 * max(options.orchestration_concurrency, 1))
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        #: Closed while the runtime drains (``drain.py``): no fetch, no hand-off.
        self.gate = Gate()
        #: Set once the first fetch (the work stored before this runtime started) returned:
        #: until then every slot waits on it, so nothing enqueued here can be handed over.
        self.ready = asyncio.Event()
        self.fast = FastPath(provider, options, metrics, self.cache, self.builder, activities,
                             self._emit_traces)
        # The next future messages in the store, as last read (see ``_stored_due_ms``);
        # the read is shared with the schedule ticker.
        self.due_times = due_times if due_times is not None else StoredDueTimes(provider)
        self._stored_dues: collections.deque[int] = collections.deque()
        self._stored_from: DueTimes | None = None  # the read they came from

    # ─── Loop ───────────────────────────────────────────────────────────────

    def attach(self) -> None:
        """Take work enqueued in this process from now on (``OrchestratorTaker``); the
        runtime calls it as it starts, so a start made right after ``start()`` returns
        is already handed over."""
        self.provider.notifier.orchestrator_taker = self

    async def run(self) -> None:
        self.attach()
        try:
            await self._fetch_loop()
        finally:
            if self.provider.notifier.orchestrator_taker is self:
                self.provider.notifier.orchestrator_taker = None

    async def _fetch_loop(self) -> None:
        backoff = Backoff()
        drained = False
        while not self._stopping.is_set():
            if drained:
                # The last fetch found fewer ready instances than it asked for: the queue
                # was empty when it looked, and anything enqueued since has rung the
                # notifier, so wait for that instead of paying an empty fetch.
                drained = False
                await self._idle()
                continue
            await self.gate.wait_open(self._stopping)
            await self._slots.acquire()
            if self._stopping.is_set():
                self._slots.release()
                break
            if self.gate.closed:
                self._slots.release()
                continue
            # Every other free slot joins the same round trip: under load one fetch brings
            # several instances; when quiet the extra candidates cost nothing but a lookup.
            wanted = 1
            while not self._slots.locked():
                await self._slots.acquire()  # a slot is free: this does not suspend
                wanted += 1
            started = self.metrics.database.now()
            try:
                items = await self.provider.fetch_orchestration_items(
                    self.options.orchestrator_lock_timeout_ms, self.cache, wanted,
                    self.options.replay_range, self.options.build_id,
                )
            except Exception as exc:
                self.ready.set()
                self._free(wanted)
                self.metrics.provider_error(exc, "fetch_orchestration_item", started)
                delay = backoff.next_delay_s()
                runtime_log.debug("orchestration fetch failed: %s; retrying in %.2fs",
                                  exc, delay)
                await self._sleep(delay)
                continue
            self.metrics.provider_ok(started)
            backoff.reset()
            self._free(wanted - len(items))
            self.ready.set()
            if items and self._stopping.is_set():  # fetched as the stop began
                self._free(len(items))
                for item in items:
                    await self._release(item.lock_token)
                break
            if not items:
                await self._idle()
                continue
            drained = len(items) < wanted
            for item in items:
                self.metrics.add("orch_dispatcher_items_fetched")
                self._start(item)

    def _start(self, item: OrchestrationItem) -> None:
        """Run ``item``'s turn in a slot already taken for it."""
        slot = _Slot(self._slots.release)
        task = asyncio.create_task(self._process(item, slot))
        self._inflight.add(task)
        task.add_done_callback(lambda done: self._done(done, slot))

    # ─── Hand-off (``OrchestratorTaker``): work enqueued in this process ─────

    @property
    def lock_timeout_ms(self) -> int:
        return self.options.orchestrator_lock_timeout_ms

    @property
    def replay_range(self) -> tuple[int, int]:
        return self.options.replay_range

    @property
    def build_id(self) -> str | None:
        return self.options.build_id

    @property
    def cached(self) -> ReplayCache:
        return self.cache

    async def try_reserve(self) -> bool:
        if self._stopping.is_set() or self.gate.closed or self._slots.locked():
            return False
        await self._slots.acquire()  # a slot is free: this does not suspend
        return True

    def unreserve(self) -> None:
        self._slots.release()

    def deliver(self, item: OrchestrationItem) -> None:
        if self._stopping.is_set():  # handed over as the stop began: give it back
            self._slots.release()
            task = asyncio.create_task(self._release(item.lock_token))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            return
        self.metrics.add("orch_dispatcher_items_fetched")
        self._start(item)

    async def prepare_first_turn(
        self, instance_id: str, start: wi.WorkItem
    ) -> PreparedTurn | None:
        if self._stopping.is_set() or self.gate.closed or self.registry.resolve(
                str(start.get("orchestration")), start.get("version")) is None:
            return None  # unregistered here: the usual path retries or fails it
        began = time.perf_counter()
        item = OrchestrationItem(
            instance_id=instance_id, lock_token=str(uuid.uuid4()), attempt_count=1,
            messages=[start], orchestration_name=None, orchestration_version=None,
            execution_id=1, execution_status=None, history_len=0, history=[],
        )
        try:
            outcome = self.builder.build(item, None, [], now_ms())
        except Exception:  # a bug here must not fail the client's start: take the usual path
            log.exception("first turn of %r failed unexpectedly; queueing it", instance_id)
            return None
        if not isinstance(outcome, Turn) or outcome.commit.orchestration_name is None:
            return None  # pragma: no cover - a registered orchestration starts
        claims = await self.fast.prepare(outcome)
        ticket = self.provider.notifier.running.sending(instance_id)
        return _FirstTurn(item.lock_token, outcome.commit, item, outcome, claims, began, ticket)

    def first_turn_committed(self, prepared: PreparedTurn, result: TurnResult) -> None:
        assert isinstance(prepared, _FirstTurn)
        try:
            self.provider.notifier.running.committed(
                prepared.item.instance_id, prepared.ticket, prepared.turn.leaves_running)
            self.metrics.add("orch_dispatcher_items_fetched")
            self.fast.committed(prepared.item, prepared.turn, prepared.claims, result)
            self._emit_traces(prepared.item, prepared.turn)
            self._count(prepared.item, prepared.turn, False,
                        time.perf_counter() - prepared.began)
            if prepared.turn.replay is not None:
                self.cache.put(prepared.turn.replay)
        finally:
            self._slots.release()

    def first_turn_dropped(self, prepared: PreparedTurn) -> None:
        assert isinstance(prepared, _FirstTurn)
        self.provider.notifier.running.committed(prepared.item.instance_id, prepared.ticket,
                                                 False)
        self.fast.drop(prepared.claims)

    def _free(self, count: int) -> None:
        for _ in range(count):
            self._slots.release()

    def _done(self, task: asyncio.Task[None], slot: _Slot) -> None:
        self._inflight.discard(task)
        slot.release()

    @property
    def busy(self) -> bool:
        """Whether a turn of this runtime runs now."""
        return bool(self._inflight)

    def wake(self) -> None:
        self.provider.notifier.notify_orchestrator()

    async def _idle(self) -> None:
        fallback_ms = (
            self.options.idle_poll_interval_ms
            if self.provider.cross_process_notify
            else self.options.dispatcher_poll_interval_ms
        )
        wait_ms = float(fallback_ms)
        due = self.provider.notifier.take_earliest_due_ms()
        stored_due = await self._stored_due_ms()
        for candidate in (due, stored_due):
            if candidate is not None:
                wait_ms = min(wait_ms, max(candidate - now_ms(), 0) + 1)
        if self._stopping.is_set():
            # The stop's wake-up may have come while this loop was reading above, and
            # another runtime on the same provider (same notifier) may have consumed it.
            return
        await self.provider.notifier.wait_orchestrator(wait_ms / 1000)

    async def _stored_due_ms(self) -> int | None:
        """The earliest future message in the store (timers, delayed retries), read at most
        once a second, and again as soon as all of the next ones read are due.

        Every message enqueued with a future due time is announced with that time, in
        process or through the provider's cross-process notifications, so the notifier
        knows about new ones; the read covers what was stored before this runtime started
        or while notifications could not reach it. Reading it on every idle spell would
        cost a round trip per turn on a quiet system. The read returns the next 64 due
        times, not only the first: a burst of timers due milliseconds apart (a notification
        from another process carries only the earliest of what it merged) is followed
        without a read per timer. The same statement reads the earliest due schedule for
        the ticker (``StoredDueTimes``)."""
        current = now_ms()
        dues = self._stored_dues
        if dues and dues[0] <= current:
            # Due, perhaps while the dispatcher was busy: fetch before sleeping. Follow the
            # next ones read, and read again once none is left.
            while dues and dues[0] <= current:
                dues.popleft()
            if not dues:
                self.due_times.expire()
            return current
        value = await self.due_times.read(READ_TTL_S)
        if value is not self._stored_from:  # a new read
            self._stored_from = value
            first = () if value.orchestrator_ms is None else (value.orchestrator_ms,)
            self._stored_dues = dues = collections.deque(value.orchestrator_next or first)
        return dues[0] if dues else None

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _release(self, lock_token: str) -> None:
        """Give an instance back at once on shutdown, without counting an attempt: another
        worker takes it now instead of after the lock timeout."""
        with contextlib.suppress(Exception):
            await self.provider.abandon_orchestration_item(lock_token, None, True)

    async def stop(self, timeout_s: float) -> None:
        """Stop fetching; wait up to ``timeout_s`` for in-flight turns, then cancel them
        (a cancelled turn releases its instance: see ``_release``)."""
        self._stopping.set()
        self.ready.set()
        self.fast.closing = True
        self.provider.notifier.notify_orchestrator()
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        await self.fast.stop(timeout_s)

    # ─── One turn ───────────────────────────────────────────────────────────

    async def _process(self, item: OrchestrationItem, slot: _Slot) -> None:
        renewal = asyncio.create_task(self._renew(item.lock_token))
        try:
            await self._run_turn(item, slot)
        except asyncio.CancelledError:
            self.cache.discard(item.instance_id)
            await asyncio.shield(self._release(item.lock_token))
            raise
        except Exception:
            self.cache.discard(item.instance_id)
            log.exception("turn for instance %r failed unexpectedly; abandoning",
                          item.instance_id)
            with contextlib.suppress(Exception):
                await self.provider.abandon_orchestration_item(item.lock_token, 1_000)
        finally:
            renewal.cancel()

    async def _run_turn(self, item: OrchestrationItem, slot: _Slot) -> None:
        self.fast.forget(item.instance_id)  # a fetch took the lock: any old hold is over
        began = time.perf_counter()
        cached = self.cache.checkout(item.instance_id) if item.history is None else None
        if item.history is not None:
            self.cache.discard(item.instance_id)
        history: list[HistoryEvent] | None = item.history
        if history is None and cached is None:
            history = await self.provider.read_history(item.instance_id, item.execution_id)
        if item.history_error is not None:
            outcome: Turn | Abandon = self.builder.history_error(item, now_ms())
        elif cached is None and not replayable(history, self.options.replay_range):
            outcome = incompatible(item, history)
        else:
            outcome = self.builder.build(item, cached, history, now_ms())
        if isinstance(outcome, Abandon):
            await retry_call(
                lambda: self.provider.abandon_orchestration_item(
                    item.lock_token, outcome.delay_ms, outcome.ignore_attempt
                ),
                "abandon orchestration item", self.metrics,
            )
            if cached is not None:
                self.cache.put(cached)
            return
        self._emit_traces(item, outcome)
        # A turn that hands no work to activities (a timer's, a last turn) frees its slot
        # as soon as its commit is sent; one that schedules activities keeps it until the
        # commit is answered: the slots also pace how fast new work is let in, and letting
        # it in faster than the activity slots take it would push activities off the fast
        # path (W1: +1 transaction per orchestration when every turn freed its slot early).
        early = None if outcome.commit.worker_items else slot.release
        await self._committing.acquire()
        try:
            await self.fast.commit(item, outcome, on_sent=early)
        except LockLostError:
            log.warning("lock on instance %r expired before its turn committed; another "
                        "worker will redo the turn", item.instance_id)
            return
        except ProviderError as exc:
            log.log(self.metrics.database.level(logging.ERROR),
                    "could not commit turn of %r: %s; it will be retried", item.instance_id, exc)
            with contextlib.suppress(Exception):
                await self.provider.abandon_orchestration_item(item.lock_token, 100)
            return
        finally:
            self._committing.release()
        self._count(item, outcome, cached is not None, time.perf_counter() - began)
        if outcome.commit.cancelled_activities:
            self._on_cancelled(outcome.commit.cancelled_activities)
        if outcome.replay is not None:
            self.cache.put(outcome.replay)

    def _count(self, item: OrchestrationItem, turn: Turn, hit: bool, seconds: float) -> None:
        commit, replay = turn.commit, turn.replay
        if turn.begins_execution:  # counted once committed, not when built
            self.metrics.add("orch_starts")
        name = commit.orchestration_name or (replay.name if replay else item.orchestration_name)
        # Cache hits and misses only mean something for a turn that continues an execution.
        continues = commit.orchestration_name is None and replay is not None
        self.metrics.turn_committed(name, commit, turn.output, seconds,
                                    hit if continues else None)

    async def _renew(self, lock_token: str) -> None:
        interval = self.options.orchestrator_renewal_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.provider.renew_orchestration_item_lock(
                    lock_token, self.options.orchestrator_lock_timeout_ms
                )
            except ProviderError as exc:
                self.metrics.provider_error(exc, "renew_orchestration_item_lock")
                log.log(self.metrics.database.level(logging.WARNING),
                        "could not renew orchestration lock: %s", exc)
                return

    def _emit_traces(self, item: OrchestrationItem, turn: Turn) -> None:
        if not turn.output.traces or turn.replay is None:
            return
        extra = {
            "instance_id": item.instance_id,
            "execution_id": turn.replay.execution_id,
            "orchestration_name": turn.replay.name,
            "orchestration_version": turn.replay.version,
        }
        for level, message in turn.output.traces:
            log.log(logging.getLevelName(level.upper()), "%s", message, extra=extra)
