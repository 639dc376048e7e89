"""The provider contract: the one small async interface every storage backend implements.

A provider stores instances, executions, history and two peek-lock queues (orchestrator and
worker). It never creates events or ids and never interprets history: the runtime hands it
pre-digested turns (``TurnCommit``) and it commits each one atomically. Everything a provider
returns is plain data from ``duraflow.core``.

All methods are coroutines bound to the event loop the provider was opened on. Times are
milliseconds since the Unix epoch, taken from the provider's own clock (``now_ms``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

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
from duraflow.core.workitems import WorkItem


class ProviderError(RuntimeError):
    """A storage operation failed. ``retryable`` says whether trying again may succeed.

    A ``RuntimeError`` because duroxide-python reports provider failures as RuntimeError,
    and programs written for it catch that.
    """

    def __init__(self, operation: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(f"{operation}: {message}")
        self.operation = operation
        self.message = message
        self.retryable = retryable


class LockLostError(ProviderError):
    """The lock token is unknown, expired, or its row is gone. Never retryable."""

    def __init__(self, operation: str, message: str = "lock lost or expired") -> None:
        super().__init__(operation, message, retryable=False)


class InstanceNotFoundError(ProviderError):
    """An admin call named an instance that does not exist."""

    def __init__(self, operation: str, instance_id: str) -> None:
        super().__init__(operation, f"instance '{instance_id}' not found", retryable=False)
        self.instance_id = instance_id


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# ─── Data exchanged with the runtime ─────────────────────────────────────────


@dataclass(slots=True)
class OrchestrationItem:
    """A locked batch of messages for one instance, plus what is needed to run its turn.

    ``history`` is the current execution's full history, or ``None`` when the caller's
    cache key (``execution_id``, ``history_len``) matched, so the runtime's live replay
    state is known to be current and loading the history would be wasted work.
    """

    instance_id: str
    lock_token: str
    attempt_count: int
    messages: list[WorkItem]
    orchestration_name: str | None  # None: the instance row does not exist yet
    orchestration_version: str | None
    execution_id: int  # current execution (1 when the instance does not exist)
    execution_status: str | None  # status of the current execution, None if no execution
    history_len: int  # number of events of the current execution
    history: list[HistoryEvent] | None
    parent_instance_id: str | None = None
    history_error: str | None = None  # history could not be decoded (lock held, attempt counted)


@dataclass(slots=True)
class WorkerItem:
    """An activity execution to enqueue on the worker queue."""

    instance_id: str
    execution_id: int
    activity_id: int
    item: WorkItem  # ActivityExecute
    session_id: str | None = None
    tag: str | None = None
    #: Hand-off: insert the row already locked by the committing runtime (see
    #: ``TurnCommit.claim_lock_ms``), which runs it in its own activity slots.
    claim: bool = False


@dataclass(slots=True)
class OutboundMessage:
    """A message for some instance's orchestrator queue, visible from ``visible_at_ms``."""

    instance_id: str
    item: WorkItem
    visible_at_ms: int | None = None  # None: visible immediately


@dataclass(slots=True)
class ActivityRef:
    """Identifies one scheduled activity (for cancellation by deleting its worker row)."""

    instance_id: str
    execution_id: int
    activity_id: int


@dataclass(frozen=True, slots=True)
class KvMutation:
    """One change to an instance's KV store, applied in order by ``ack``.

    ``action``: ``set`` (``key`` = ``value``), ``clear`` (``key``), ``clear_all``.
    """

    action: str
    key: str | None = None
    value: str | None = None
    updated_at_ms: int = 0


@dataclass(slots=True)
class TurnCommit:
    """Everything one orchestration turn writes, committed in ONE transaction by ``ack``.

    The provider: validates the lock (else ``LockLostError`` and nothing is written);
    creates the instance row when it does not exist and ``orchestration_name`` is set
    (name and parent are immutable afterwards; ``orchestration_version`` is filled in when
    still NULL and replaced when ``execution_id`` starts a newer execution, so the instance
    shows the version of its current execution); upserts the execution row ``execution_id`` (status
    ``Running`` when new) and makes it current when it is the highest; appends
    ``history_delta`` (a duplicate ``(instance, execution, event_id)`` is an error that
    rolls back); sets status/output (and ``completed_at`` for a terminal status); applies
    the custom status change and bumps ``custom_status_version`` once; applies
    ``kv_mutations`` in order to the instance's KV store (which outlives executions and is
    removed only with the instance); enqueues worker items
    and orchestrator messages; deletes the worker rows of ``cancelled_activities``; deletes
    the messages this lock fetched; releases the lock.

    The in-process hand-off (see docs/architecture.md, "The fast path"):

    * worker items with ``claim`` set are inserted locked for ``claim_lock_ms`` (attempt 1),
      and returned as leases in ``TurnResult.claimed``, so no worker fetch is needed;
    * ``completed_work`` lists lock tokens of worker rows whose results this turn applied
      (an activity that ran in this process while the instance stayed locked): the rows are
      deleted in the same transaction, ``LockLostError`` when one is gone or re-locked. Such
      a commit accepts an instance lock that has expired as long as nobody took it over
      (the token is unchanged), since then nobody else can have processed the instance;
    * with ``hold_ms`` the lock is kept (until now + ``hold_ms``, same token) instead of
      released, unless other messages for the instance are visible (then it is released so
      they are processed). ``TurnResult.held`` says which happened. A held instance is
      fetchable by anyone once the hold expires: the fast path never blocks take-over.
    """

    execution_id: int
    history_delta: list[HistoryEvent] = field(default_factory=list)
    worker_items: list[WorkerItem] = field(default_factory=list)
    orchestrator_items: list[OutboundMessage] = field(default_factory=list)
    cancelled_activities: list[ActivityRef] = field(default_factory=list)
    orchestration_name: str | None = None
    orchestration_version: str | None = None
    parent_instance_id: str | None = None
    status: str | None = None  # None: leave unchanged
    output: str | None = None
    custom_status_set: bool = False  # True: replace custom status with ``custom_status``
    custom_status: str | None = None  # None with custom_status_set=True: cleared
    kv_mutations: list[KvMutation] = field(default_factory=list)
    claim_lock_ms: int | None = None
    hold_ms: int | None = None
    completed_work: list[str] = field(default_factory=list)


@dataclass(slots=True)
class TurnResult:
    """What ``ack_orchestration_item`` reports back: leases of the claimed worker items (in
    the order of ``worker_items``) and whether the instance lock is still held."""

    claimed: list[WorkLease] = field(default_factory=list)
    held: bool = False


@dataclass(slots=True)
class PreparedTurn:
    """A new instance's first turn, run before its start message is stored
    (``OrchestratorTaker.prepare_first_turn``): a provider that can stores the instance, the
    turn and its lock in one transaction, so the start costs one round trip in all."""

    lock_token: str
    commit: TurnCommit


@dataclass(slots=True)
class WorkLease:
    """A locked worker-queue row (one activity execution)."""

    lock_token: str
    attempt_count: int
    item: WorkItem
    instance_id: str
    execution_id: int
    activity_id: int
    session_id: str | None = None
    tag: str | None = None
    session_owner: str | None = None  # which of the fetch's owner ids holds the session


@dataclass(frozen=True, slots=True)
class SessionClaim:
    """How a worker fetch treats session-bound activities (reference §2.17).

    ``owners``: the owner ids the fetch acts for (a runtime's ``worker_node_id``, or the ids
    of its free slots); a row of a session leased to any of them is eligible. With
    ``allow_new`` a row of a session nobody holds (no lease, or a lapsed one) is eligible
    too, and fetching it claims the session for ``owners[0]`` for ``lock_timeout_ms``.
    Without a claim (``None``) a fetch never returns session rows.
    """

    owners: tuple[str, ...]
    lock_timeout_ms: int
    allow_new: bool = True

    def __post_init__(self) -> None:
        if not self.owners or not all(isinstance(o, str) and o for o in self.owners):
            raise ValueError("SessionClaim needs at least one non-empty owner id")


@dataclass(frozen=True, slots=True)
class TagFilter:
    """Which tagged activities a worker takes.

    ``mode``: ``default_only`` (untagged only), ``tags`` (only ``tags``), ``default_and``
    (untagged and ``tags``), ``any`` (everything), ``none`` (no activities).
    """

    mode: str = "default_only"
    tags: tuple[str, ...] = ()

    def matches(self, tag: str | None) -> bool:
        if self.mode == "any":
            return True
        if self.mode == "none":
            return False
        if tag is None:
            return self.mode in ("default_only", "default_and")
        return self.mode in ("tags", "default_and") and tag in self.tags


DEFAULT_TAG_FILTER = TagFilter()

#: Registry rows of runtimes unseen for this long are deleted by the next heartbeat of any
#: runtime (long enough for an operator to see that a pod went away, and why).
WORKER_ROW_RETENTION_MS = 3_600_000


#: Due times remembered per queue; beyond this the fallback poll and the store's own
#: next-due lookup take over.
_MAX_DUES = 10_000

# ─── Wake-ups ────────────────────────────────────────────────────────────────


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
        if not self._event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), max(timeout_s, 0.0))
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
        if not self._event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), max(timeout_s, 0.0))
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
        self._orchestrator_dues: list[int] = []  # heaps of announced future due times
        self._worker_dues: list[int] = []
        self._orchestrator_waiters = 0
        self._cancel_listeners: list[Callable[[str], None]] = []
        #: The dispatcher that takes orchestrator work enqueued in this process, if any.
        self.orchestrator_taker: OrchestratorTaker | None = None
        # Instances whose lock a runtime of this process keeps between turns, and the
        # monotonic time until which the lock surely lasts (see ``held_here``).
        self._held: dict[str, float] = {}

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

    def notify_worker(self, due_ms: int | None = None) -> None:
        """New worker work exists now, or (``due_ms``) will become visible then."""
        self._announce(self._worker, self._worker_dues, due_ms)

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

    def take_earliest_worker_due_ms(self) -> int | None:
        """The earliest worker due time announced in this process (see ``_next_due``)."""
        return self._next_due(self._worker_dues)

    def notify_instance(self, instance_id: str, change: InstanceChange | None = None) -> None:
        for watch in list(self._watches.get(instance_id, ())):
            watch.push(change)
        for feed in self._feeds:
            feed.push(instance_id)

    def notify_all_instances(self) -> None:
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

    @staticmethod
    async def _wait(event: asyncio.Event, timeout_s: float) -> None:
        if not event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), max(timeout_s, 0.0))
        event.clear()


# ─── The protocol ────────────────────────────────────────────────────────────


@runtime_checkable
class Provider(Protocol):
    """Storage backend for Duraflow. See module docstring; every method is atomic."""

    name: str
    notifier: Notifier
    #: True when ``notifier`` also hears other processes (no need for fast polling).
    cross_process_notify: bool

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """One trivial round trip (``SELECT 1``); raises ``ProviderError`` when the database
        does not answer. Health probes use it."""

    # Orchestrator queue ------------------------------------------------------

    async def enqueue_orchestrator(self, message: OutboundMessage) -> None:
        """Insert one message (never creates an instance) and notify."""

    async def fetch_orchestration_item(
        self,
        lock_timeout_ms: int,
        cached: Mapping[str, tuple[int, int]] | None = None,
        replay_range: tuple[int, int] | None = None,
    ) -> OrchestrationItem | None:
        """Lock the next instance that has visible messages, oldest message first.

        ``replay_range`` (packed versions, see ``duraflow.core.version.pack``, inclusive):
        skip instances whose current execution is pinned to an engine version outside it
        (unpinned instances are always eligible). The pin is the ``engine_version`` of the
        execution's ``OrchestrationStarted`` event, recorded by the provider when it is stored.

        Skips instances whose lock is live. Locks ALL messages of that instance visible
        now (``attempt_count`` + 1 each; the item's count is their max); messages arriving
        later stay for the next turn. ``cached`` maps instance id to the caller's
        ``(execution_id, history_len)``; when it matches, ``history`` is returned as None.
        Providers only call ``cached.get(instance_id)`` for the instance they picked (it may
        be large, and may be read from a provider's own thread); they never iterate it.
        Returns None when nothing is visible.
        """

    async def fetch_orchestration_items(
        self,
        lock_timeout_ms: int,
        cached: Mapping[str, tuple[int, int]] | None = None,
        max_items: int = 1,
        replay_range: tuple[int, int] | None = None,
    ) -> list[OrchestrationItem]:
        """Up to ``max_items`` batches of different instances in ONE round trip, each
        exactly as ``fetch_orchestration_item`` would lock and return it ([] when nothing
        is visible). Dispatchers with several free slots use it under load."""

    async def ack_orchestration_item(
        self, lock_token: str, commit: TurnCommit
    ) -> TurnResult | None:
        """Commit a turn atomically (see ``TurnCommit``) and notify whoever it concerns.

        Notifications skip what this process handles itself: claimed worker items wake
        nobody, and a held instance is processed by its holder."""

    async def abandon_orchestration_item(
        self, lock_token: str, delay_ms: int | None = None, ignore_attempt: bool = False
    ) -> None:
        """Release the lock without consuming messages; optionally delay their visibility
        and (``ignore_attempt``) undo the attempt increment (never below 0)."""

    async def renew_orchestration_item_lock(self, lock_token: str, extend_ms: int) -> None:
        """Extend a live lock to now + ``extend_ms``; ``LockLostError`` if expired/unknown."""

    async def next_orchestrator_due_ms(self) -> int | None:
        """Earliest ``visible_at`` among unlocked messages not yet visible, else None."""

    # Worker queue ------------------------------------------------------------

    async def fetch_work_item(
        self,
        lock_timeout_ms: int,
        tag_filter: TagFilter = DEFAULT_TAG_FILTER,
        session: SessionClaim | None = None,
    ) -> WorkLease | None:
        """Lock the oldest visible, unlocked (or lock-expired) row the filter accepts, and
        that ``session`` allows (see ``SessionClaim``), claiming its session in the same
        atomic step. A lost race for a session moves on to another row."""

    async def ack_work_item(self, lock_token: str, completion: OutboundMessage | None) -> None:
        """Delete the locked row and enqueue its completion, atomically. ``LockLostError``
        when the row is gone (cancelled) or the lock expired. Marks the row's session
        active now."""

    async def renew_work_item_lock(self, lock_token: str, extend_ms: int) -> None:
        """``LockLostError`` when the row is gone or its lock expired (= cancellation).
        Marks the row's session active now."""

    async def lost_work_items(self, lock_tokens: Sequence[str]) -> set[str]:
        """Which of ``lock_tokens`` no longer name a live locked row (cancelled, or the lock
        expired): one query for all of a runtime's running activities."""

    # Sessions ----------------------------------------------------------------

    async def renew_sessions(
        self, owners: Sequence[str], extend_ms: int, idle_timeout_ms: int
    ) -> list[str]:
        """Extend to now + ``extend_ms`` the live leases of ``owners`` whose session was
        active within ``idle_timeout_ms``; release (delete) the idle ones. Returns the
        sessions ``owners`` still hold."""

    async def release_sessions(self, owners: Sequence[str]) -> int:
        """Drop every lease of ``owners`` (graceful shutdown), so another worker can take
        their sessions at once. Returns how many were released."""

    async def cleanup_sessions(self) -> int:
        """Delete sessions whose lease lapsed and that have no worker rows left."""

    async def abandon_work_item(
        self, lock_token: str, delay_ms: int | None = None, ignore_attempt: bool = False
    ) -> None: ...

    # Worker registry ---------------------------------------------------------

    async def heartbeat_worker(
        self, worker: WorkerInfo, retention_ms: int = WORKER_ROW_RETENTION_MS
    ) -> None:
        """Record ``worker`` (keyed by ``worker_node_id`` + ``runtime_id``) as seen now, in ONE
        write; ``last_seen_at_ms`` comes from the store's clock and ``alive`` is ignored. The
        same statement deletes rows unseen for more than ``retention_ms``."""

    async def remove_worker(self, worker_node_id: str, runtime_id: str) -> None:
        """Delete a runtime's registry row (graceful shutdown); no error if it is gone."""

    async def list_workers(self, include_gone: bool = False) -> list[WorkerInfo]:
        """Registered runtimes ordered by ``worker_node_id``; ``alive`` is computed with the
        store's clock. Gone ones only with ``include_gone``."""

    async def get_activity_backlog(self) -> dict[str | None, int]:
        """Visible, unlocked worker-queue rows per tag (``None`` = untagged); tags with no
        such rows are absent."""

    # Reads -------------------------------------------------------------------

    async def get_instance_status(self, instance_id: str) -> InstanceStatus | None: ...

    async def get_custom_status(
        self, instance_id: str, last_seen_version: int
    ) -> tuple[str | None, int] | None:
        """(custom_status, version) when version > last_seen_version, else None."""

    async def read_history(
        self, instance_id: str, execution_id: int | None = None
    ) -> list[HistoryEvent]:
        """History of one execution (default: current), ordered by event id; [] if none."""

    async def get_kv_value(self, instance_id: str, key: str) -> str | None:
        """The instance's current value for ``key`` (None if unset or no such instance)."""

    async def get_kv_all_values(self, instance_id: str) -> dict[str, str]: ...

    # Admin -------------------------------------------------------------------

    async def list_instances(self) -> list[str]:
        """All instance ids, newest first."""

    async def list_instances_by_status(self, status: str) -> list[str]: ...

    async def list_executions(self, instance_id: str) -> list[int]: ...

    async def get_instance_info(self, instance_id: str) -> InstanceInfo:
        """``InstanceNotFoundError`` if missing."""

    async def get_execution_info(self, instance_id: str, execution_id: int) -> ExecutionInfo: ...

    async def get_system_metrics(self) -> SystemMetrics: ...

    async def get_queue_depths(self) -> QueueDepths: ...

    async def get_instance_stats(self, instance_id: str) -> SystemStats | None: ...

    async def list_children(self, instance_id: str) -> list[str]: ...

    async def delete_instance_tree(self, instance_id: str, force: bool) -> DeleteInstanceResult:
        """Delete a root instance and all its descendants atomically (see reference §2.21)."""

    async def delete_instance_bulk(self, filter: InstanceFilter) -> DeleteInstanceResult: ...

    async def prune_executions(self, instance_id: str, options: PruneOptions) -> PruneResult: ...

    async def prune_executions_bulk(
        self, filter: InstanceFilter, options: PruneOptions
    ) -> PruneResult: ...


def describe(value: Any) -> str:
    """Short description of a value for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
