"""The plain data a provider and the runtime hand each other.

The runtime never sees SQL and a provider never interprets history: what crosses between
them is these dataclasses. A fetch returns an ``OrchestrationItem`` (a locked batch of
messages and the history to replay) or a ``WorkLease`` (one locked activity); a turn goes
back as one ``TurnCommit`` made of ``WorkerItem``s, ``OutboundMessage``s, ``ActivityRef``s
and ``KvMutation``s, and its ``TurnResult`` says what the commit kept for this process. A
worker fetch is shaped by a ``WorkerTagFilter`` and a ``SessionClaim``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from duraflow.core.events import HistoryEvent
from duraflow.core.workitems import WorkItem


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

    Builds (docs/rollouts.md): ``build_id`` is the committing runtime's build. An execution
    not pinned yet (its first turn) is pinned to it, the instance's routing pin follows its
    running execution (cleared when the execution ends), and the worker rows are stamped
    with it, so only workers of that build (or without one) run them.
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
    build_id: str | None = None


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
class UpgradeClaim:
    """A running execution pinned to a draining build, locked (like a turn, by its instance
    lock) for a replay-verified upgrade to ``to_build``; ``history`` is its recorded events.
    Finish it with ``Provider.finish_upgrade`` before the lock expires."""

    instance_id: str
    execution_id: int
    lock_token: str
    from_build: str
    to_build: str
    orchestration_name: str
    orchestration_version: str
    history: list[HistoryEvent]


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
class WorkerTagFilter:
    """Which tagged activities a worker takes: the parsed ``worker_tag_filter`` option.

    ``mode``: ``default_only`` (untagged only), ``tags`` (only ``tags``), ``default_and``
    (untagged and ``tags``), ``any`` (everything), ``none`` (no activities).

    Not to be confused with the public ``duraflow.TagFilter`` (duroxide-python's helper),
    which only spells the option's string values (``TagFilter.tags(["gpu"])`` is a JSON
    string); ``RuntimeOptions`` parses that string into this, and runtimes and providers
    work with this one only.
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


DEFAULT_TAG_FILTER = WorkerTagFilter()
