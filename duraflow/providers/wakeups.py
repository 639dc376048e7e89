"""In-process wake-ups: how dispatchers and waiting clients learn of new work without polling.

A provider calls its ``Notifier`` after every commit (and, on PostgreSQL, when a
notification from another process arrives). Dispatchers block in ``wait_orchestrator`` /
``wait_worker``; a client waiting for one instance holds an ``InstanceWatch``; a reader that
follows many instances (the Kubernetes operator) holds one ``InstanceChangeFeed``. An
``OrchestratorTaker`` lets a provider hand work enqueued in this process straight to an idle
dispatcher. It is plain asyncio on the provider's loop, the same for every backend, so it
lives here rather than in either provider (docs/architecture.md, "Wake-ups instead of
polling").
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from duraflow.core.models import InstanceStatus
from duraflow.core.workitems import WorkItem
from duraflow.providers.clock import now_ms
from duraflow.providers.items import OrchestrationItem, PreparedTurn, TurnResult
from duraflow.providers.running_here import RunningHere

#: Due times remembered per queue; beyond this the fallback poll and the store's own
#: next-due lookup take over.
_MAX_DUES = 10_000


async def _until_set(event: asyncio.Event, timeout_s: float) -> None:
    """Wait until ``event`` is set, at most ``timeout_s`` (at once when it is)."""
    if not event.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(timeout_s, 0.0))


@dataclass(frozen=True, slots=True)
class InstanceChange:
    """What a commit changed for an instance, when the notifier knows (same process).

    ``status`` is the execution status the commit set (None: unchanged, still running).
    """

    status: str | None = None
    custom_status_changed: bool = False
    kv_changed: bool = False
    #: The instance's status as the commit left it, when the provider read it in the commit
    #: itself (PostgreSQL, for Completed and Failed): a waiter needs no read of its own.
    snapshot: InstanceStatus | None = None


class InstanceWatch:
    """Collects every change notified for one instance from the moment it is created, so a
    waiter that is busy reading the database cannot miss a change in between."""

    def __init__(self, notifier: Notifier, instance_id: str) -> None:
        self._notifier = notifier
        self.instance_id = instance_id
        self._changes: list[InstanceChange | None] = []
        self._event = asyncio.Event()

    def push(self, change: InstanceChange | None) -> None:
        self._changes.append(change)
        self._event.set()

    async def next(self, timeout_s: float) -> list[InstanceChange | None]:
        """Changes since the last call ([] on timeout). ``None`` entries mean "something
        changed, re-read it" (e.g. heard from another process)."""
        await _until_set(self._event, timeout_s)
        changes, self._changes = self._changes, []
        self._event.clear()
        return changes

    def close(self) -> None:
        self._notifier._unwatch(self)

    def __enter__(self) -> InstanceWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class InstanceChanges:
    """What an ``InstanceChangeFeed`` collected since it was last read.

    ``instance_ids``: instances whose status, custom status or existence changed.
    ``everything``: changes may have been missed (e.g. the PostgreSQL LISTEN connection was
    re-established), so a reader must re-check every instance it cares about.
    """

    instance_ids: frozenset[str] = frozenset()
    everything: bool = False

    def __bool__(self) -> bool:
        return self.everything or bool(self.instance_ids)


class InstanceChangeFeed:
    """Collects the ids of ALL instances that change, from the moment it is created.

    One feed replaces a watch per instance for a reader that follows many instances (the
    Kubernetes operator follows every Orchestration CR this way with one loop). Ids are
    de-duplicated between reads, so a burst of turns of one instance costs the reader one
    re-read, and the memory held is bounded by the number of distinct instances changed.
    """

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier
        self._ids: set[str] = set()
        self._everything = False
        self._event = asyncio.Event()

    def push(self, instance_id: str) -> None:
        self._ids.add(instance_id)
        self._event.set()

    def push_everything(self) -> None:
        self._everything = True
        self._event.set()

    async def next(self, timeout_s: float) -> InstanceChanges:
        """Changes since the last call (empty on timeout)."""
        await _until_set(self._event, timeout_s)
        changes = InstanceChanges(frozenset(self._ids), self._everything)
        self._ids = set()
        self._everything = False
        self._event.clear()
        return changes

    def close(self) -> None:
        self._notifier._feeds.discard(self)

    def __enter__(self) -> InstanceChangeFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WorkFeed:
    """Tells a reader that follows how much work exists (the Kubernetes operator's
    autoscaler) that new work was announced: orchestrator or worker work, in this process or,
    on PostgreSQL, heard from another one. It carries no detail, only "look again": the
    reader then reads the demand of every pool in one query, however many announcements
    arrived meanwhile."""

    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier
        self._event = asyncio.Event()

    def push(self) -> None:
        self._event.set()

    async def next(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for an announcement since the last call; whether one came."""
        await _until_set(self._event, timeout_s)
        came = self._event.is_set()
        self._event.clear()
        return came

    def close(self) -> None:
        self._notifier._work_feeds.discard(self)

    def __enter__(self) -> WorkFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OrchestratorTaker(Protocol):
    """An orchestration dispatcher of this process that accepts work handed to it directly.

    A provider that can enqueue a message and lock its instance in one transaction (the
    PostgreSQL provider) hands the locked item to the taker instead of queueing it and
    waking the dispatcher, which saves the fetch round trip of the instance's next turn.
    """

    @property
    def lock_timeout_ms(self) -> int: ...

    @property
    def replay_range(self) -> tuple[int, int]: ...

    @property
    def build_id(self) -> str | None:
        """The dispatcher's build (None: none): the provider hands it only instances of
        that build, and new ones only while the build is current."""

    @property
    def cached(self) -> Mapping[str, tuple[int, int]]:
        """Cache keys (instance id -> (execution id, history length)) of live replays."""

    async def try_reserve(self) -> bool:
        """Reserve a free turn slot without waiting for one; False when none is free."""

    def unreserve(self) -> None:
        """Give back a reserved slot that got no item."""

    def deliver(self, item: OrchestrationItem) -> None:
        """Run the turn of ``item`` (locked for this taker) in the reserved slot."""

    async def prepare_first_turn(
        self, instance_id: str, start: WorkItem
    ) -> PreparedTurn | None:
        """Run, in the reserved slot, the first turn of the new instance that ``start`` (a
        StartOrchestration message about to be stored) would begin, under a fresh lock
        token. Nothing is written yet. None when the taker will not (orchestration not
        registered here, stopping): the provider then hands off or queues as usual."""

    def first_turn_committed(self, prepared: PreparedTurn, result: TurnResult) -> None:
        """The provider stored the instance with that turn, instead of the start message:
        finish it (claimed activities, hold, cache) and free the slot."""

    def first_turn_dropped(self, prepared: PreparedTurn) -> None:
        """Not stored (the instance exists, other messages wait for it, or it was locked):
        forget the turn. The slot stays reserved for ``deliver`` or ``unreserve``."""


class Notifier:
    """In-process wake-ups for dispatchers and waiting clients.

    Providers call ``notify_*`` after committing; dispatchers and client waits block on
    ``wait_*`` / ``watch_instance`` instead of polling. Providers that can hear other
    processes (PostgreSQL LISTEN/NOTIFY) call the same methods when a notification arrives.
    All methods must be called on the provider's event loop.
    """

    def __init__(self) -> None:
        self._orchestrator = asyncio.Event()
        self._worker = asyncio.Event()
        self._watches: dict[str, set[InstanceWatch]] = {}
        self._feeds: set[InstanceChangeFeed] = set()
        self._work_feeds: set[WorkFeed] = set()
        self._schedules = asyncio.Event()
        self._schedules_unknown = False  # woken without a due time: re-read the store
        self._orchestrator_dues: list[int] = []  # heaps of announced future due times
        self._worker_dues: list[int] = []
        self._schedule_dues: list[int] = []
        self._orchestrator_waiters = 0
        self._cancel_listeners: list[Callable[[str], None]] = []
        #: The dispatcher that takes orchestrator work enqueued in this process, if any.
        self.orchestrator_taker: OrchestratorTaker | None = None
        # Instances whose lock a runtime of this process keeps between turns, and the
        # monotonic time until which the lock surely lasts (see ``held_here``).
        self._held: dict[str, float] = {}
        #: Instances this process's own last commit left running (``running_here.py``).
        self.running = RunningHere()

    def hold_instance(self, instance_id: str, until_monotonic: float) -> None:
        """A runtime here keeps ``instance_id``'s lock (a running instance) at least until
        ``until_monotonic``; call ``release_instance`` when it no longer does."""
        self._held[instance_id] = until_monotonic

    def release_instance(self, instance_id: str) -> None:
        self._held.pop(instance_id, None)

    def held_here(self, instance_id: str) -> bool:
        """True when a runtime of this process holds the instance's lock now: it is
        running, and only this process can change it, which every waiter here hears. A
        client that waits for it to finish can skip reading its status first."""
        until = self._held.get(instance_id)
        return until is not None and time.monotonic() < until

    def known_running(self, instance_id: str) -> bool:
        """True when the instance is running and its next change will be notified here:
        held here, or left running by this process's last commit with nothing heard since
        (``RunningHere``). A wait for it to finish need not read its status first."""
        return self.held_here(instance_id) or self.running.running(instance_id)

    @property
    def orchestrator_waiting(self) -> bool:
        """True while a dispatcher of this process is idle, waiting for orchestrator work:
        new work is then taken here, and other processes need not be woken for it."""
        return self._orchestrator_waiters > 0

    def add_cancel_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(lock_token)`` when an in-flight activity's worker row was deleted
        by someone other than its worker (heard from another process)."""
        self._cancel_listeners.append(listener)

    def remove_cancel_listener(self, listener: Callable[[str], None]) -> None:
        with contextlib.suppress(ValueError):
            self._cancel_listeners.remove(listener)

    def notify_work_cancelled(self, lock_token: str) -> None:
        for listener in list(self._cancel_listeners):
            listener(lock_token)

    def notify_orchestrator(self, due_ms: int | None = None) -> None:
        """New orchestrator work exists now, or (``due_ms``) will become visible then."""
        self._announce(self._orchestrator, self._orchestrator_dues, due_ms)
        self._push_work()

    def notify_worker(self, due_ms: int | None = None) -> None:
        """New worker work exists now, or (``due_ms``) will become visible then."""
        self._announce(self._worker, self._worker_dues, due_ms)
        self._push_work()

    def _push_work(self) -> None:
        for feed in self._work_feeds:
            feed.push()

    def watch_work(self) -> WorkFeed:
        """Start hearing of new work (see ``WorkFeed``); close it when done."""
        feed = WorkFeed(self)
        self._work_feeds.add(feed)
        return feed

    def notify_schedules(self, due_ms: int | None = None) -> None:
        """A schedule is due at ``due_ms`` (a tick shares the timers' path: a due time
        announced here and, across processes, in the same notification), or (None) some
        schedule may have changed: the ticker reads the store's next due time again."""
        dues = self._schedule_dues
        if due_ms is None or len(dues) >= _MAX_DUES:  # too many remembered: read the store
            self._schedules_unknown = True
        else:  # due now too: the ticker fires what is due, it does not fetch
            heapq.heappush(dues, due_ms)
        if self._schedules_unknown or due_ms is None or due_ms <= now_ms() or dues[0] == due_ms:
            self._schedules.set()

    def take_schedules_unknown(self) -> bool:
        """Whether a schedule changed without a due time since the last call."""
        unknown, self._schedules_unknown = self._schedules_unknown, False
        return unknown

    @staticmethod
    def _announce(event: asyncio.Event, dues: list[int], due_ms: int | None) -> None:
        if due_ms is None or due_ms <= now_ms():
            event.set()
            return
        if not dues or due_ms < dues[0]:
            event.set()  # let the dispatcher shorten its sleep
        if len(dues) < _MAX_DUES:
            heapq.heappush(dues, due_ms)

    @staticmethod
    def _next_due(dues: list[int]) -> int | None:
        """The earliest announced due time; "now" once for any that passed since the last
        call, whose work is visible but may not have been fetched yet (the dispatcher may
        have been busy when it became due), so the caller fetches before it sleeps."""
        current = now_ms()
        passed = False
        while dues and dues[0] <= current:
            heapq.heappop(dues)
            passed = True
        if passed:
            return current
        return dues[0] if dues else None

    def take_earliest_due_ms(self) -> int | None:
        """The earliest orchestrator due time announced in this process (see ``_next_due``)."""
        return self._next_due(self._orchestrator_dues)

    def take_earliest_schedule_due_ms(self) -> int | None:
        """The earliest schedule due time announced in this process (see ``_next_due``)."""
        return self._next_due(self._schedule_dues)

    def take_earliest_worker_due_ms(self) -> int | None:
        """The earliest worker due time announced in this process (see ``_next_due``)."""
        return self._next_due(self._worker_dues)

    def notify_instance(self, instance_id: str, change: InstanceChange | None = None) -> None:
        """A change made in this process: a commit's (``change``), or (None) one that is not
        a turn's, such as a delete, after which nothing is known of the instance."""
        if change is None:
            self.running.forget(instance_id)
        for watch in list(self._watches.get(instance_id, ())):
            watch.push(change)
        for feed in self._feeds:
            feed.push(instance_id)

    def heard_instance(self, instance_id: str, change: InstanceChange | None = None) -> None:
        """A change made by another process (heard through the provider's notifications)."""
        self.running.forget(instance_id)
        self.notify_instance(instance_id, change)

    def notify_all_instances(self) -> None:
        """Changes may have been missed (e.g. while notifications could not arrive)."""
        self.running.forget_all()
        for watches in list(self._watches.values()):
            for watch in list(watches):
                watch.push(None)
        for feed in self._feeds:
            feed.push_everything()

    def watch_all_instances(self) -> InstanceChangeFeed:
        """Start collecting the ids of every instance that changes (see ``InstanceChangeFeed``)."""
        feed = InstanceChangeFeed(self)
        self._feeds.add(feed)
        return feed

    def watch_instance(self, instance_id: str) -> InstanceWatch:
        """Start collecting changes of ``instance_id``. Create the watch BEFORE reading the
        state you wait on; close it (or use ``with``) when done."""
        watch = InstanceWatch(self, instance_id)
        self._watches.setdefault(instance_id, set()).add(watch)
        return watch

    def _unwatch(self, watch: InstanceWatch) -> None:
        watches = self._watches.get(watch.instance_id)
        if watches is not None:
            watches.discard(watch)
            if not watches:
                del self._watches[watch.instance_id]

    async def wait_instance(self, instance_id: str, timeout_s: float) -> None:
        """Wait for the next change of ``instance_id`` (or the timeout)."""
        with self.watch_instance(instance_id) as watch:
            await watch.next(timeout_s)

    async def wait_orchestrator(self, timeout_s: float) -> None:
        self._orchestrator_waiters += 1
        try:
            await self._wait(self._orchestrator, timeout_s)
        finally:
            self._orchestrator_waiters -= 1

    async def wait_worker(self, timeout_s: float) -> None:
        await self._wait(self._worker, timeout_s)

    async def wait_schedules(self, timeout_s: float) -> None:
        await self._wait(self._schedules, timeout_s)

    @staticmethod
    async def _wait(event: asyncio.Event, timeout_s: float) -> None:
        await _until_set(event, timeout_s)
        event.clear()
