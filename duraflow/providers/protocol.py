"""The provider contract: the one small async interface every storage backend implements.

A provider stores instances, executions, history and two peek-lock queues (orchestrator and
worker). It never creates events or ids and never interprets history: the runtime hands it
pre-digested turns (``TurnCommit``) and it commits each one atomically. Everything a provider
returns is plain data (``items``, ``duraflow.core``).

All methods are coroutines bound to the event loop the provider was opened on. Times are
milliseconds since the Unix epoch, taken from the provider's own clock (``clock.now_ms``).

This module holds only the interface. What crosses it lives in ``items``, what it raises in
``errors``, and the ``Notifier`` every provider carries in ``wakeups``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from duraflow.core.events import HistoryEvent
from duraflow.core.models import (
    BuildInfo,
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
    WorkDemand,
    WorkerInfo,
)
from duraflow.providers.admin_rules import DeletePage
from duraflow.providers.items import (
    DEFAULT_TAG_FILTER,
    OrchestrationItem,
    OutboundMessage,
    SessionClaim,
    TurnCommit,
    TurnResult,
    UpgradeClaim,
    WorkerTagFilter,
    WorkLease,
)
from duraflow.providers.schedule_items import (
    DueTimes,
    FireResult,
    Planner,
    ScheduleChange,
    StoredSchedule,
)
from duraflow.providers.schedule_rows import RUNS_KEPT
from duraflow.providers.wakeups import Notifier

#: Registry rows of runtimes unseen for this long are deleted by the next heartbeat of any
#: runtime (long enough for an operator to see that a pod went away, and why).
WORKER_ROW_RETENTION_MS = 3_600_000


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
        build_id: str | None = None,
    ) -> OrchestrationItem | None:
        """Lock the next instance that has visible messages, oldest message first.

        ``replay_range`` (packed versions, see ``duraflow.core.version.pack``, inclusive):
        skip instances whose current execution is pinned to an engine version outside it
        (unpinned instances are always eligible). The pin is the ``engine_version`` of the
        execution's ``OrchestrationStarted`` event, recorded by the provider when it is stored.

        ``build_id`` (docs/rollouts.md): take only instances whose running execution is
        pinned to that build, and unpinned ones only while it is the current build; None
        takes every instance.

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
        build_id: str | None = None,
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

    async def next_due_ms(self) -> DueTimes:
        """In ONE statement: what ``next_orchestrator_due_ms`` returns and the earliest
        ``due_at`` of any schedule (due ones included). Timers and schedule ticks share it:
        a runtime reads it at most once a second, however many schedules exist."""

    # Schedules ---------------------------------------------------------------

    async def create_schedule(self, schedule: StoredSchedule) -> None:
        """Store a new schedule (``ScheduleExistsError`` if its id is taken) and announce
        its due time (in process and, on PostgreSQL, to the other processes)."""

    async def change_schedule(self, schedule_id: str, change: ScheduleChange) -> StoredSchedule:
        """Replace the stored schedule with ``change(current, now_ms)`` in one transaction
        (``ScheduleNotFoundError`` if there is none; ``current.running`` is filled, its
        ``runs`` are not); announce its due time; return what was written."""

    async def delete_schedule(self, schedule_id: str) -> bool:
        """Delete a schedule and its run records (not the instances); False if none."""

    async def get_schedule(self, schedule_id: str, runs: int = RUNS_KEPT) -> StoredSchedule | None:
        """One schedule with its active runs and its newest ``runs`` runs."""

    async def list_schedules(self, runs: int = RUNS_KEPT) -> list[StoredSchedule]:
        """Every schedule, by id, as ``get_schedule`` returns it."""

    async def fire_due_schedules(self, now_ms: int, limit: int, planner: Planner) -> FireResult:
        """Take up to ``limit`` schedules whose ``due_at <= now_ms`` that no other caller
        holds, plan each with ``planner(schedule, now_ms)`` and store every plan (its
        starts, idempotent on the tick; its cancellations; its new state), all in ONE
        transaction that holds the schedules meanwhile. A run's end (its instance ended or
        was deleted) is recorded in the transaction that ends it, and makes the schedule due
        now when its ``wake_on_end`` is set."""

    # Maintenance -------------------------------------------------------------

    async def try_lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        """Take or renew the named lease for ``holder`` until now + ``ttl_ms``; False while
        another holder's lease is live (one runtime at a time does the named job)."""

    async def delete_finished_instances(
        self, completed_before_ms: int, limit: int, after: tuple[int, int] | None = None
    ) -> DeletePage:
        """Look at up to ``limit`` root instances that ended before ``completed_before_ms``,
        oldest first and created after the cursor ``after`` (a previous page's ``last``), and
        delete them with their trees, skipping any tree in which an instance still runs."""

    # Worker queue ------------------------------------------------------------

    async def fetch_work_item(
        self,
        lock_timeout_ms: int,
        tag_filter: WorkerTagFilter = DEFAULT_TAG_FILTER,
        session: SessionClaim | None = None,
        build_id: str | None = None,
    ) -> WorkLease | None:
        """Lock the oldest visible, unlocked (or lock-expired) row the filter accepts, and
        that ``session`` allows (see ``SessionClaim``), claiming its session in the same
        atomic step. A lost race for a session moves on to another row. With ``build_id``
        only rows of that build or of none."""

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
    ) -> bool:
        """Record ``worker`` (keyed by ``worker_node_id`` + ``runtime_id``) as seen now, in ONE
        write; ``last_seen_at_ms`` comes from the store's clock and ``alive`` is ignored. The
        same statement deletes rows unseen for more than ``retention_ms``. Returns whether
        the worker's node is asked to drain (``drain_workers``)."""

    async def remove_worker(self, worker_node_id: str, runtime_id: str) -> None:
        """Delete a runtime's registry row (graceful shutdown); no error if it is gone."""

    async def list_workers(self, include_gone: bool = False) -> list[WorkerInfo]:
        """Registered runtimes ordered by ``worker_node_id``; ``alive`` is computed with the
        store's clock. Gone ones only with ``include_gone``."""

    async def get_activity_backlog(self) -> dict[str | None, int]:
        """Visible, unlocked worker-queue rows per tag (``None`` = untagged); tags with no
        such rows are absent."""

    async def get_work_demand(self) -> WorkDemand:
        """In ONE statement: activities waiting and running per tag, instances with
        orchestration work, live session leases per owner (see ``WorkDemand``)."""

    async def drain_workers(self, worker_node_ids: Sequence[str]) -> None:
        """Ask the runtimes of these nodes to drain (take nothing new, finish what runs,
        release their sessions); a node already asked keeps its first request time."""

    async def undrain_workers(self, worker_node_ids: Sequence[str]) -> None:
        """Withdraw the drain requests of these nodes (unknown ones are ignored)."""

    async def get_drained_workers(self) -> dict[str, bool]:
        """Every node asked to drain, and whether it is idle: each of its live runtimes
        reported ``drained`` after the request, and it holds no live session lease."""

    # Builds (docs/rollouts.md) -------------------------------------------------

    async def register_build(self, build_id: str, auto_promote: bool) -> str:
        """Record a runtime's build as it starts: a build the store has never seen becomes
        current (the current one drains) with ``auto_promote``, else pending; a known one
        keeps its state. Returns the build's state."""

    async def list_builds(self) -> list[BuildInfo]:
        """Every build the store knows, oldest first, with live workers and running
        executions pinned to it."""

    async def set_current_build(self, build_id: str) -> None:
        """Make a known build current (the current one drains); ``UnknownBuildError``."""

    async def drain_build(self, build_id: str) -> None:
        """A current or pending build drains (takes nothing new); ``UnknownBuildError``."""

    async def move_instance(self, instance_id: str, build_id: str) -> None:
        """Re-pin the instance's running execution and its activities not running now to a
        known build, and drop its lock so a turn in flight on the old build cannot commit.
        ``UnknownBuildError``, ``InstanceNotFoundError``, ``ProviderError`` (not running)."""

    async def adopt_unpinned(self, build_id: str) -> int:
        """Register ``build_id`` if unknown (current when no build is, else pending) and pin
        to it every running execution pinned to no build, with its activity rows of no
        build. Returns how many executions it pinned."""

    async def refresh_build_states(self, retire_after_ms: int) -> list[tuple[str, str]]:
        """Retire builds drained for ``retire_after_ms`` with nothing pinned; make retired
        builds something is pinned to again draining. Returns ``(build, new state)``."""

    async def claim_upgrade(
        self, to_build: str, registered: Sequence[tuple[str, str]], lock_timeout_ms: int
    ) -> UpgradeClaim | None:
        """Lock (instance lock) one running execution of a ``registered`` (name, version),
        pinned to a draining or retired build, with no verdict for ``to_build`` yet, not
        locked, no activity running; None when none, or ``to_build`` is not current."""

    async def finish_upgrade(
        self, claim: UpgradeClaim, moved: bool, detail: str | None = None
    ) -> str:
        """Move the claimed execution (``moved``) or record that it diverged, and release
        the lock, in one transaction validating it (``LockLostError`` when expired). Returns
        ``build_rules``' outcome: moved, diverged, busy (an activity started meanwhile:
        nothing recorded), gone (no longer on the old build)."""

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
