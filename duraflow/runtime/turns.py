"""Decide what one fetched orchestration batch becomes: a commit, or an abandon.

This is the glue between a provider's ``OrchestrationItem`` and the pure ``Replay``: it
handles new instances (version resolution, duplicate starts), continue-as-new, finished
instances, orphan messages, unregistered code and poison, and converts the replay's output
into a ``TurnCommit``. It does no I/O; the dispatcher does the fetching and acking.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from duraflow.core import errors as er
from duraflow.core import workitems as wi
from duraflow.core.events import HistoryEvent
from duraflow.core.models import CONTINUED_AS_NEW, FAILED, RUNNING
from duraflow.core.output import TurnOutput
from duraflow.core.replay import Replay
from duraflow.core.status import Status
from duraflow.providers.items import (
    ActivityRef,
    KvMutation,
    OrchestrationItem,
    OutboundMessage,
    TurnCommit,
    WorkerItem,
)
from duraflow.runtime.metrics import Metrics
from duraflow.runtime.registry import OrchestrationRegistry

log = logging.getLogger("duraflow.orchestration")
UNREGISTERED_BASE_BACKOFF_MS = 1_000
UNREGISTERED_MAX_BACKOFF_MS = 60_000


def unregistered_backoff_ms(attempt: int) -> int:
    exponent: int = min(max(attempt - 1, 0), 6)
    return int(min(UNREGISTERED_BASE_BACKOFF_MS * 2**exponent, UNREGISTERED_MAX_BACKOFF_MS))


class ReplayCache(Mapping[str, tuple[int, int]]):
    """Live replays kept between turns (LRU). As a Mapping it shows each instance's
    ``(execution_id, history_len)``, which is what providers compare against."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._replays: OrderedDict[str, Replay] = OrderedDict()

    def __getitem__(self, instance_id: str) -> tuple[int, int]:
        replay = self._replays[instance_id]
        return replay.execution_id, replay.history_len

    def __iter__(self) -> Iterator[str]:
        return iter(self._replays)

    def __len__(self) -> int:
        return len(self._replays)

    def checkout(self, instance_id: str) -> Replay | None:
        """Take a replay out while a turn runs, so no other turn can touch it."""
        return self._replays.pop(instance_id, None)

    def put(self, replay: Replay) -> None:
        if self.capacity <= 0 or replay.finished:
            return
        self._replays[replay.instance_id] = replay
        self._replays.move_to_end(replay.instance_id)
        while len(self._replays) > self.capacity:
            self._replays.popitem(last=False)

    def discard(self, instance_id: str) -> None:
        self._replays.pop(instance_id, None)


@dataclass(slots=True)
class Abandon:
    delay_ms: int | None
    reason: str
    ignore_attempt: bool = False


@dataclass(slots=True)
class Turn:
    commit: TurnCommit
    replay: Replay | None  # to put back in the cache after a successful ack
    output: TurnOutput
    begins_execution: bool = False  # counted as a start once committed

    @property
    def leaves_running(self) -> bool:
        """Whether the instance is running once this turn is stored."""
        return self.replay is not None and not self.replay.finished


class TurnBuilder:
    def __init__(
        self, registry: OrchestrationRegistry, metrics: Metrics, max_attempts: int,
        build_id: str | None = None,
    ) -> None:
        self.registry = registry
        self.metrics = metrics
        self.max_attempts = max_attempts
        #: Stamped on every commit: the store pins new executions and activity rows to it.
        self.build_id = build_id

    def build(
        self, item: OrchestrationItem, cached: Replay | None, history: list[HistoryEvent] | None,
        now_ms: int,
    ) -> Turn | Abandon:
        if item.orchestration_name is None:
            return self._new_instance(item, now_ms)
        status = item.execution_status
        if status in Status.TERMINAL:
            return self._drop_all(item, f"instance is {status}")
        if status == CONTINUED_AS_NEW:
            return self._next_execution(item, now_ms)
        resolved = self.registry.resolve(item.orchestration_name, item.orchestration_version)
        if resolved is None:
            return self._unregistered(item, item.orchestration_name, item.orchestration_version,
                                      now_ms, replay=cached)
        replay = cached
        if replay is None:
            replay = self._new_replay(item.instance_id, item.execution_id)
            loaded = replay.load(history or [])
            if replay.finished:
                return self._finish(item, replay, loaded, item.execution_id)
        if item.attempt_count > self.max_attempts:
            return self._poisoned(item, replay, now_ms)
        output = replay.run_turn(item.messages, now_ms)
        return self._finish(item, replay, output, item.execution_id)

    # ─── Paths ──────────────────────────────────────────────────────────────

    def _new_instance(self, item: OrchestrationItem, now_ms: int) -> Turn | Abandon:
        start_index = next(
            (i for i, m in enumerate(item.messages) if m.get("type") == wi.START_ORCHESTRATION),
            None,
        )
        if start_index is None:
            kinds = sorted({str(m.get("type")) for m in item.messages})
            log.warning("dropping %s for instance %r, which does not exist",
                        ", ".join(kinds), item.instance_id)
            return self._drop_all(item, "instance does not exist")
        start = item.messages[start_index]
        rest = item.messages[start_index + 1:]
        parent = None
        if start.get("parent_instance"):
            parent = (str(start["parent_instance"]), int(start.get("parent_execution_id") or 1),
                      int(start["parent_id"]))
        return self._begin_execution(item, 1, start, rest, parent, None, None, now_ms)

    def _next_execution(self, item: OrchestrationItem, now_ms: int) -> Turn | Abandon:
        index = next(
            (i for i, m in enumerate(item.messages) if m.get("type") == wi.CONTINUE_AS_NEW), None
        )
        if index is None:
            return self._drop_all(item, "execution continued as new")
        message = item.messages[index]
        parent = None
        if message.get("parent_instance"):
            parent = (str(message["parent_instance"]), int(message["parent_execution_id"]),
                      int(message["parent_id"]))
        # Everything else goes to the new execution in arrival order: first the messages the
        # old execution's last turn forwarded inside the ContinueAsNew item (they are the
        # oldest), then those sent while it was finishing (they sort before the item), then
        # the rest.
        forwarded = list(message.get("forwarded") or [])
        others = forwarded + item.messages[:index] + item.messages[index + 1:]
        return self._begin_execution(
            item, item.execution_id + 1, message, others, parent,
            message.get("carry_forward_events"), message.get("initial_custom_status"), now_ms,
            message.get("initial_kv"),
        )

    def _begin_execution(
        self, item: OrchestrationItem, execution_id: int, start: wi.WorkItem,
        rest: list[wi.WorkItem], parent: tuple[str, int, int] | None,
        carry_forward: list[list[str]] | None, initial_custom_status: str | None, now_ms: int,
        initial_kv: dict[str, list[Any]] | None = None,
    ) -> Turn | Abandon:
        name = str(start["orchestration"])
        resolved = self.registry.resolve(name, start.get("version"))
        if resolved is None:
            return self._unregistered(item, name, start.get("version"), now_ms,
                                      execution_id=execution_id, start=start, parent=parent)
        version, _ = resolved
        replay = self._new_replay(item.instance_id, execution_id)
        output = replay.start(name, version, str(start.get("input", "null")), now_ms, parent,
                              carry_forward, initial_custom_status, initial_kv)
        if rest and not replay.finished:
            output = merge(output, replay.run_turn(rest, now_ms))
        turn = self._finish(item, replay, output, execution_id)
        turn.commit.orchestration_name = name
        turn.commit.orchestration_version = version
        turn.commit.parent_instance_id = parent[0] if parent else None
        turn.begins_execution = True
        if turn.commit.status is None:
            turn.commit.status = RUNNING
        return turn

    def _unregistered(
        self, item: OrchestrationItem, name: str, version: str | None, now_ms: int,
        replay: Replay | None = None, execution_id: int | None = None,
        start: wi.WorkItem | None = None, parent: tuple[str, int, int] | None = None,
    ) -> Turn | Abandon:
        label = f"'{name}'" + (f" version {version}" if version else "")
        if item.attempt_count <= self.max_attempts:
            delay = unregistered_backoff_ms(item.attempt_count)
            log.warning("orchestration %s is not registered on this runtime (instance %r, "
                        "attempt %d); retrying in %d ms", label, item.instance_id,
                        item.attempt_count, delay)
            return Abandon(delay, f"orchestration {label} not registered")
        self.metrics.add("orch_poison")
        details = er.poison(
            f"orchestration {item.instance_id} exceeded {item.attempt_count} attempts "
            f"(max {self.max_attempts}): orchestration {label} is not registered"
        )
        exec_id = execution_id or item.execution_id
        if replay is None:
            replay = self._new_replay(item.instance_id, exec_id)
            if start is not None:
                replay.name, replay.version, replay.parent = name, version or "", parent
        output = replay.fail_infrastructure(details, now_ms)
        turn = self._finish(item, replay, output, exec_id, count=False)
        if item.orchestration_name is None:
            turn.commit.orchestration_name = name
            turn.commit.orchestration_version = version
            turn.commit.parent_instance_id = parent[0] if parent else None
        return turn

    def _poisoned(self, item: OrchestrationItem, replay: Replay, now_ms: int) -> Turn:
        self.metrics.add("orch_poison")
        details = er.poison(
            f"orchestration {item.instance_id} exceeded {item.attempt_count} attempts "
            f"(max {self.max_attempts})"
        )
        return self._finish(item, replay, replay.fail_infrastructure(details, now_ms),
                            item.execution_id, count=False)

    def history_error(self, item: OrchestrationItem, now_ms: int) -> Turn | Abandon:
        if item.attempt_count <= self.max_attempts:
            return Abandon(1_000, f"history could not be decoded: {item.history_error}")
        self.metrics.add("orch_poison")
        replay = self._new_replay(item.instance_id, item.execution_id)
        replay.next_event_id = item.history_len + 1
        details = er.poison(
            f"orchestration {item.instance_id} history deserialization failed after "
            f"{item.attempt_count} attempts: {item.history_error}"
        )
        return self._finish(item, replay, replay.fail_infrastructure(details, now_ms),
                            item.execution_id, count=False)

    def _drop_all(self, item: OrchestrationItem, reason: str) -> Turn:
        kinds = ", ".join(str(m.get("type")) for m in item.messages)
        log.debug("acking %s for %r without effect: %s", kinds, item.instance_id, reason)
        return Turn(TurnCommit(execution_id=item.execution_id), None, TurnOutput())

    def _finish(
        self, item: OrchestrationItem, replay: Replay, output: TurnOutput, execution_id: int,
        count: bool = True,
    ) -> Turn:
        for warning in output.warnings:
            log.warning("instance %r: %s", item.instance_id, warning)
        commit = TurnCommit(
            execution_id=execution_id,
            history_delta=output.new_events,
            worker_items=[
                WorkerItem(item.instance_id, execution_id, a.activity_id, a.item, a.session_id,
                           a.tag)
                for a in output.activities
            ],
            orchestrator_items=[
                OutboundMessage(m.instance_id, m.item, m.visible_at_ms) for m in output.messages
            ],
            cancelled_activities=[
                ActivityRef(item.instance_id, execution_id, activity_id)
                for activity_id in output.cancelled_activity_ids
            ],
            status=output.status,
            output=output.output,
            custom_status_set=output.custom_status_changed,
            custom_status=output.custom_status,
            kv_mutations=[KvMutation(*m) for m in output.kv_mutations],
            build_id=self.build_id,
        )
        if count:
            self._count(output, commit)
        return Turn(commit, replay, output)

    def _count(self, output: TurnOutput, commit: TurnCommit) -> None:
        m = self.metrics
        m.add("suborchestration_calls", sum(
            1 for o in commit.orchestrator_items
            if o.item.get("type") == wi.START_ORCHESTRATION and o.item.get("parent_instance")
        ))
        if output.status in Status.EXECUTION_ENDED:
            m.add("orch_completions")
        if output.status == CONTINUED_AS_NEW:
            m.add("orch_continue_as_new")
        if output.status == FAILED and output.new_events:
            details = er.ErrorDetails.from_dict(output.new_events[-1].data.get("details", {}))
            m.add("orch_failures")
            if details.category == er.APPLICATION:
                m.add("orch_application_errors")
            elif details.category == er.CONFIGURATION:
                m.add("orch_configuration_errors")
            elif details.category == er.INFRASTRUCTURE:
                m.add("orch_infrastructure_errors")

    def _new_replay(self, instance_id: str, execution_id: int) -> Replay:
        return Replay(instance_id, execution_id, self.registry.lookup, _guid)


def _guid() -> str:
    return str(uuid.uuid4())


def merge(first: TurnOutput, second: TurnOutput) -> TurnOutput:
    first.new_events.extend(second.new_events)
    first.activities.extend(second.activities)
    first.messages.extend(second.messages)
    first.cancelled_activity_ids.extend(second.cancelled_activity_ids)
    first.kv_mutations.extend(second.kv_mutations)
    first.traces.extend(second.traces)
    first.warnings.extend(second.warnings)
    if second.status is not None:
        first.status, first.output = second.status, second.output
    if second.custom_status_changed:
        first.custom_status_changed, first.custom_status = True, second.custom_status
    return first
