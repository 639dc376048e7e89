"""The activity dispatcher: lock a worker-queue row, run the activity, report the result.

Sync activities run in a thread pool so they never block the event loop; ``async def``
activities run on the loop. While an activity runs its lock is renewed; a failed renewal
means the row is gone (the orchestration dropped the activity), which is reported to the
activity as cancellation. Cancellations committed by this process are signalled at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from duraflow.core import errors as er
from duraflow.core import workitems as wi
from duraflow.core.limits import check_payload_size, decode_payload
from duraflow.core.tasks import SYSCALL_GET_KV
from duraflow.providers.clock import now_ms
from duraflow.providers.errors import LockLostError, ProviderError
from duraflow.providers.items import ActivityRef, OutboundMessage, WorkerItem, WorkLease
from duraflow.providers.protocol import Provider
from duraflow.runtime.activity_context import ActivityContext
from duraflow.runtime.activity_threads import ActivityThreads
from duraflow.runtime.drain import Gate
from duraflow.runtime.metrics import Metrics
from duraflow.runtime.options import RuntimeOptions
from duraflow.runtime.registry import ActivityRegistry
from duraflow.runtime.resilience import Backoff, retry_call
from duraflow.runtime.sessions import SessionManager
from duraflow.runtime.turns import unregistered_backoff_ms

log = logging.getLogger("duraflow.activity")
runtime_log = logging.getLogger("duraflow.runtime")
ActivityKey = tuple[str, int, int]
#: Where a handed-off activity reports its result (instead of ``ack_work_item``).
Reporter = Callable[[WorkLease, wi.WorkItem], Awaitable[None]]
#: How often a runtime without cross-process notifications checks its running activities.
CANCEL_CHECK_S = 0.5


class _Stopped(Exception):
    """The runtime stopped (its thread pool is shut down) before the activity could run."""


class ActivityDispatcher:
    def __init__(
        self,
        provider: Provider,
        registry: ActivityRegistry,
        options: RuntimeOptions,
        metrics: Metrics,
        worker_id: str,
        client_factory: Callable[[], Any] | None,
        async_client_factory: Callable[[], Any] | None,
    ) -> None:
        self.provider = provider
        self.registry = registry
        self.options = options
        self.metrics = metrics
        self.worker_id = worker_id
        self._client_factory = client_factory
        self._async_client_factory = async_client_factory
        self._slots = asyncio.Semaphore(max(options.worker_concurrency, 1))
        self._threads = ActivityThreads(max(options.worker_concurrency, 1), "duraflow-activity")
        self._inflight: set[asyncio.Task[None]] = set()
        self._running: dict[ActivityKey, ActivityContext] = {}
        self._free_slots = list(range(max(options.worker_concurrency, 1)))
        self._stopping = asyncio.Event()
        #: Closed while the runtime drains (``drain.py``): nothing new is fetched or claimed.
        self.gate = Gate()
        self.sessions = SessionManager(
            provider, options, worker_id, max(options.worker_concurrency, 1)
        )
        self.sessions.on_error = lambda exc: metrics.provider_error(exc, "renew_sessions")
        self._by_token: dict[str, ActivityContext] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._loop_exited: asyncio.Event | None = None  # set once the fetch loop has exited

    async def run(self) -> None:
        if self.options.tag_filter.mode == "none" or self.options.worker_concurrency == 0:
            return
        self.sessions.start()
        self.provider.notifier.add_cancel_listener(self._cancelled_elsewhere)
        if not self.provider.cross_process_notify:
            self._watcher = asyncio.create_task(self._watch_cancellations())
        self._loop_exited = asyncio.Event()
        try:
            await self._fetch_loop()
        finally:
            self._loop_exited.set()

    async def _fetch_loop(self) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            await self.gate.wait_open(self._stopping)
            await self._slots.acquire()
            if self._stopping.is_set():
                self._slots.release()
                break
            if self.gate.closed:
                self._slots.release()
                continue
            started = self.metrics.database.now()
            claim = self.sessions.claim(self._free_slots)
            try:
                lease = await self.provider.fetch_work_item(
                    self.options.worker_lock_timeout_ms, self.options.tag_filter, claim,
                    self.options.build_id,
                )
            except Exception as exc:
                self.sessions.settle(claim)
                self._slots.release()
                self.metrics.provider_error(exc, "fetch_work_item", started)
                delay = backoff.next_delay_s()
                runtime_log.debug("activity fetch failed: %s; retrying in %.2fs", exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                continue
            self.sessions.settle(claim)
            self.metrics.provider_ok(started)
            backoff.reset()
            if lease is None:
                self._slots.release()
                wait_ms = float(self.options.idle_poll_interval_ms
                                if self.provider.cross_process_notify
                                else self.options.dispatcher_poll_interval_ms)
                due = self.provider.notifier.take_earliest_worker_due_ms()
                if due is not None:  # an item this process delayed (backoff) becomes visible
                    wait_ms = min(wait_ms, max(due - now_ms(), 0) + 1)
                await self.provider.notifier.wait_worker(wait_ms / 1000)
                continue
            if self._stopping.is_set() or self.gate.closed:  # give it back untouched
                self._slots.release()
                await self._release(lease)
                continue
            self.metrics.add("worker_dispatcher_items_fetched")
            self.sessions.fetched(lease)
            slot = self._take_slot(lease)
            task = asyncio.create_task(self._execute(lease, slot))
            self._inflight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slots.release()

    @property
    def busy(self) -> bool:
        """Whether an activity of this runtime runs (or reports its result) now."""
        return bool(self._inflight)

    def wake(self) -> None:
        self.provider.notifier.notify_worker()

    # ─── In-process hand-off (the fast path, see docs/architecture.md) ─────────

    async def reserve(self, item: WorkerItem) -> bool:
        """Take a slot for an activity a turn is about to schedule, if this runtime can run
        it right now: a free slot, a tag its filter accepts, no session, a registered name.
        The caller then claims the row in its commit and calls ``start_claimed`` (or
        ``unreserve`` when the commit did not happen)."""
        if (
            self._stopping.is_set()
            or self.gate.closed
            or self.options.worker_concurrency <= 0
            or item.session_id is not None
            or not self.options.tag_filter.matches(item.tag)
            or self._slots.locked()
        ):
            return False
        name = str(item.item.get("name"))
        if self._builtin(name) is None and self.registry.get(name) is None:
            return False
        await self._slots.acquire()  # a slot is free: this does not suspend
        return True

    def unreserve(self) -> None:
        self._slots.release()

    def start_claimed(self, lease: WorkLease, report: Reporter | None) -> None:
        """Run a claimed row in the slot ``reserve`` took; ``report`` receives its result
        (None: acked to the worker queue as usual)."""
        slot = self._take_slot(lease)
        task = asyncio.create_task(self._execute(lease, slot, report))
        self._inflight.add(task)
        task.add_done_callback(self._done)

    async def ack_completion(self, lease: WorkLease, completion: wi.WorkItem) -> None:
        """Report a result through the worker queue (the path every fetched activity takes)."""
        await self._ack(lease, completion)

    def _take_slot(self, lease: WorkLease) -> int:
        """A free slot for ``lease``: the one owning its session under per-slot affinity."""
        wanted = self.sessions.slot_for(lease, self._free_slots)
        if wanted is not None:
            self._free_slots.remove(wanted)
            return wanted
        return self._free_slots.pop(0) if self._free_slots else 0

    def _cancelled_elsewhere(self, lock_token: str) -> None:
        """Another process deleted the worker row of an activity running here."""
        ctx = self._by_token.get(lock_token)
        if ctx is not None:
            ctx._cancel()

    async def _watch_cancellations(self) -> None:
        """Without cross-process notifications (SQLite), check every running activity's row
        with one query every ``CANCEL_CHECK_S`` so cancellation is seen within a second."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), CANCEL_CHECK_S)
            tokens = list(self._by_token)
            if not tokens or self._stopping.is_set():
                continue
            try:
                lost = await self.provider.lost_work_items(tokens)
            except ProviderError as exc:
                runtime_log.debug("cancellation check failed: %s", exc)
                continue
            for token in lost:
                self._cancelled_elsewhere(token)

    def cancel_local(self, refs: list[ActivityRef]) -> None:
        """Signal cancellation to activities of this process that were just dropped."""
        for ref in refs:
            ctx = self._running.get((ref.instance_id, ref.execution_id, ref.activity_id))
            if ctx is not None:
                ctx._cancel()

    async def _release(self, lease: WorkLease) -> None:
        """Give a work item back at once on shutdown, without counting an attempt: another
        worker takes it now instead of after the lock timeout."""
        with contextlib.suppress(Exception):
            await self.provider.abandon_work_item(lease.lock_token, None, True)

    async def stop(self, timeout_s: float) -> None:
        """Stop fetching; wait up to ``timeout_s`` for running activities, then release
        the rest (``_release``). Their threads are not waited for: a sync activity cannot
        be interrupted, and its result would be dropped anyway (its item is released)."""
        self._stopping.set()
        self.provider.notifier.notify_worker()
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        self.provider.notifier.remove_cancel_listener(self._cancelled_elsewhere)
        if self._watcher is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher
        if self._loop_exited is not None:  # a fetch in progress could claim a session
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._loop_exited.wait(), 5.0)
        await self.sessions.stop()  # after in-flight work: hand the sessions over
        self._threads.shutdown()

    # ─── One activity ───────────────────────────────────────────────────────

    async def _execute(self, lease: WorkLease, slot: int, report: Reporter | None = None) -> None:
        """Run ``lease`` in ``slot``, then whatever the slot took next with its ack."""
        following: WorkLease | None = lease
        while following is not None:
            try:
                following = await self._execute_in_slot(following, slot, report)
            finally:
                self._free_slots.append(slot)
            if following is None:
                return
            if self._stopping.is_set() or self.gate.closed:  # taken as the stop or a drain
                await self._release(following)  # began: give it back untouched
                return
            self.metrics.add("worker_dispatcher_items_fetched")
            self.sessions.fetched(following)
            slot, report = self._take_slot(following), None

    async def _execute_in_slot(
        self, lease: WorkLease, slot: int, report: Reporter | None = None
    ) -> WorkLease | None:
        """Run one activity and report it; the ack may bring the slot's next item."""
        item = lease.item
        name = str(item.get("name"))
        key = (lease.instance_id, lease.execution_id, lease.activity_id)
        try:
            if lease.attempt_count > self.options.max_attempts:
                self.metrics.add("activity_poison")
                self.metrics.activity_finished(name, "poison")
                details = er.poison(
                    f"activity {name}#{lease.activity_id} exceeded {lease.attempt_count} "
                    f"attempts (max {self.options.max_attempts})"
                )
                await self._ack(lease, wi.activity_failed(
                    lease.instance_id, lease.execution_id, lease.activity_id, details.to_dict()))
                return None
            fn = self._builtin(name) or self.registry.get(name)
            if fn is None:
                delay = unregistered_backoff_ms(lease.attempt_count)
                log.warning("activity %r is not registered on this runtime (attempt %d); "
                            "retrying in %d ms", name, lease.attempt_count, delay)
                self.metrics.add("activity_config_errors")
                await retry_call(
                    lambda: self.provider.abandon_work_item(lease.lock_token, delay),
                    "abandon work item", self.metrics,
                )
                self.provider.notifier.notify_worker(now_ms() + delay)
                return None
            ctx = ActivityContext(item, f"work-{slot}-{self.worker_id}", self._client_factory,
                                  self._async_client_factory)
            self._running[key] = ctx
            self._by_token[lease.lock_token] = ctx
            renewal = asyncio.create_task(self._renew(lease, ctx))
            began = time.perf_counter()
            try:
                completion = await self._invoke(fn, ctx, lease)
            except _Stopped:
                # Handed over (a claim, an ack's next item) as the stop began: give it back
                # untouched, so another worker runs it now. It did not fail.
                await asyncio.shield(self._release(lease))
                return None
            finally:
                renewal.cancel()
                self._running.pop(key, None)
                self._by_token.pop(lease.lock_token, None)
            outcome = ("cancelled" if ctx.is_cancelled()
                       else "success" if completion.get("type") == wi.ACTIVITY_COMPLETED
                       else "failure")
            self.metrics.activity_finished(name, outcome, time.perf_counter() - began)
            if ctx.is_cancelled():
                log.info("activity %s#%d finished after cancellation; result dropped",
                         name, lease.activity_id)
                with contextlib.suppress(ProviderError):
                    await self.provider.ack_work_item(lease.lock_token, None)
                return None
            if report is not None:
                await report(lease, completion)
                return None
            return await self._ack(lease, completion, slot)
        except asyncio.CancelledError:
            await asyncio.shield(self._release(lease))
            raise

    def _builtin(self, name: str) -> Any:
        if name != SYSCALL_GET_KV:
            return None
        provider = self.provider

        async def get_kv_value(ctx: ActivityContext, request: dict[str, str]) -> str | None:
            return await provider.get_kv_value(request["instance_id"], request["key"])

        return get_kv_value

    async def _invoke(self, fn: Any, ctx: ActivityContext, lease: WorkLease) -> wi.WorkItem:
        item = lease.item
        name = str(item.get("name"))
        value = decode_payload(item.get("input"))
        try:
            if self.registry.is_async(fn):
                result = await fn(ctx, value)
            else:
                try:
                    pending = self._threads.run(functools.partial(fn, ctx, value))
                except RuntimeError:  # "cannot schedule new futures after shutdown"
                    if self._stopping.is_set():
                        raise _Stopped from None
                    raise
                result = await pending
                if asyncio.iscoroutine(result):
                    result = await result
            text = json.dumps(result)
            check_payload_size(f"activity '{name}' result", text)
        except _Stopped:
            raise
        except Exception as exc:
            self.metrics.add("activity_app_errors")
            message = f"Activity '{name}' call failed: {type(exc).__name__}: {exc}"
            if isinstance(exc, TypeError) and "JSON serializable" in str(exc):
                message = f"Activity '{name}' returned a value that is not JSON-serialisable: {exc}"
            details = er.application(er.ACTIVITY_FAILED, message)
            return wi.activity_failed(lease.instance_id, lease.execution_id, lease.activity_id,
                                      details.to_dict())
        self.metrics.add("activity_success")
        return wi.activity_completed(lease.instance_id, lease.execution_id, lease.activity_id,
                                     text)

    async def _ack(
        self, lease: WorkLease, completion: wi.WorkItem, slot: int | None = None
    ) -> WorkLease | None:
        """Report ``completion`` through the worker queue. With ``slot`` (the slot that ran
        it) and a provider that can, the same round trip fetches the slot's next item."""
        message = OutboundMessage(lease.instance_id, completion)
        ack_and_fetch = getattr(self.provider, "ack_and_fetch_work_item", None)
        try:
            if (ack_and_fetch is not None and slot is not None and not self._stopping.is_set()
                    and not self.gate.closed):
                claim = self.sessions.claim([slot])
                try:
                    following: WorkLease | None = await retry_call(
                        lambda: ack_and_fetch(lease.lock_token, message,
                                              self.options.worker_lock_timeout_ms,
                                              self.options.tag_filter, claim,
                                              self.options.build_id),
                        "ack work item", self.metrics,
                    )
                finally:
                    self.sessions.settle(claim)
                return following
            await retry_call(
                lambda: self.provider.ack_work_item(lease.lock_token, message),
                "ack work item", self.metrics,
            )
        except LockLostError:
            log.info("activity %s#%d result dropped: its work item was cancelled or its lock "
                     "expired", lease.item.get("name"), lease.activity_id)
        except ProviderError as exc:
            self.metrics.add("activity_infra_errors")
            log.log(self.metrics.database.level(logging.ERROR),
                    "could not report activity result: %s; it will run again", exc)
            with contextlib.suppress(Exception):
                await self.provider.abandon_work_item(lease.lock_token, 100)
        return None

    async def _renew(self, lease: WorkLease, ctx: ActivityContext) -> None:
        interval = self.options.worker_renewal_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self.provider.renew_work_item_lock(
                    lease.lock_token, self.options.worker_lock_timeout_ms
                )
            except LockLostError:
                ctx._cancel()
                return
            except ProviderError as exc:
                self.metrics.provider_error(exc, "renew_work_item_lock")
                log.log(self.metrics.database.level(logging.WARNING),
                        "could not renew activity lock: %s", exc)
