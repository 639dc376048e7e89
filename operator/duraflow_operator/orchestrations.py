"""The Orchestration reconcile: spec (desired) + status and instance (current) -> actions.

Level-based and idempotent, so it is safe to run again after a crash at any point:

* start: the instance id is derived from the CR, the instance's existence is read first,
  and the engine ignores a second start of a running instance;
* events: ``spec.events[i]`` is raised with the idempotency key ``<uid>/<i>`` and only then
  counted in ``status.raisedEvents``; a crash in between makes the next run raise it again,
  and the engine records the event once per key (``raise_event(idempotency_key=...)``);
* cancel: ``cancel_instance`` on a cancelled or finished instance changes nothing.

The reconcile writes what it did (start, raised events, cancel, acceptance) through kopf's
patch, together with kopf's own bookkeeping, in ONE status write. Mirroring the instance
(phase, output, custom status, metrics) after the start belongs to the status sync, so the
two never race each other into an older phase.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from duraflow import ProviderError, Status
from duraflow_operator import conditions as cond
from duraflow_operator.spec import SpecError, parse_orchestration
from duraflow_operator.state import OperatorState
from duraflow_operator.status import PENDING, RUNNING, TERMINAL_PHASES, instance_status, phase_of

log = logging.getLogger("duraflow.operator.orchestrations")


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached; kopf retries the reconcile later."""


PURGE_WAIT_MS = 20_000


class NotYet(RuntimeError):
    """A step waits for the engine (e.g. a purge for the cancellation to finish)."""


@dataclass(slots=True)
class Outcome:
    """What one reconcile wants written and announced."""

    status: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    result: str = "ok"


def _conditions(status: Mapping[str, Any], *updates: dict[str, Any]) -> list[dict[str, Any]]:
    return cond.merge_conditions(status.get("conditions"), updates)


def database_down(status: Mapping[str, Any], error: Exception, generation: int | None) -> Outcome:
    message = f"the Duraflow database is unreachable, will retry: {error}"
    down = cond.condition(cond.DATABASE, False, "DatabaseUnavailable", message, generation)
    outcome = Outcome(result="database_unavailable")
    if (cond.find(status.get("conditions"), cond.DATABASE) or {}).get("status") != "False":
        outcome.events.append(("Warning", "DatabaseUnavailable", message))
    outcome.status["conditions"] = _conditions(status, down)
    return outcome


async def reconcile(state: OperatorState, body: Mapping[str, Any]) -> Outcome:
    """One pass over one CR. Raises ``DatabaseUnavailable``; never raises for bad specs."""
    meta = body.get("metadata", {})
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    uid = str(meta.get("uid"))
    generation = meta.get("generation")
    status: Mapping[str, Any] = body.get("status") or {}
    view = state.observe(body)
    started_id = view.started_instance
    outcome = Outcome()
    patch = outcome.status
    patch["observedGeneration"] = generation

    try:
        spec = parse_orchestration(
            body.get("spec"), namespace, name,
            max_input_bytes=state.settings.max_input_bytes, started_instance_id=started_id,
        )
    except SpecError as error:
        return _rejected(outcome, status, error.reason, error.message, generation, started_id)

    db_ok = cond.condition(cond.DATABASE, True, "Connected", "the database answers", generation)
    try:
        if started_id is None and meta.get("deletionTimestamp"):
            # Being deleted before it ever started: starting now would leave an instance
            # behind that no CR follows (the finalizer's deletion policy has nothing to act on).
            return outcome
        if started_id is None:
            known = state.registered(spec.orchestration, spec.version)
            if known is False:
                view.waiting_for_worker = True
                wanted = spec.orchestration + (f" version {spec.version}" if spec.version else "")
                return _rejected(
                    outcome, status, "UnknownOrchestration",
                    f"no live worker registers orchestration {wanted}; the instance starts "
                    "as soon as one does", generation, None, warn_once=True,
                )
            view.waiting_for_worker = False
            current = await state.client.get_status(spec.instance_id)
            if current.status == Status.NOT_FOUND:
                if spec.version:
                    await state.client.start_orchestration_versioned(
                        spec.instance_id, spec.orchestration, spec.input, spec.version)
                else:
                    await state.client.start_orchestration(
                        spec.instance_id, spec.orchestration, spec.input)
                outcome.events.append(("Normal", "Started", (
                    f"started instance {spec.instance_id} of {spec.orchestration}")))
            else:
                outcome.events.append(("Normal", "Adopted", (
                    f"instance {spec.instance_id} already exists ({current.status}); "
                    "following it")))
            patch.update(instance_status(current, started=True, bounds=state.bounds))
            patch.update({"instanceId": spec.instance_id, "startedAt": cond.now_iso(),
                          "raisedEvents": status.get("raisedEvents", 0)})
            phase = patch["phase"]
        else:
            current = await state.client.get_status(spec.instance_id)
            phase = phase_of(current, started=True)

        terminal = phase in TERMINAL_PHASES
        raised = int(status.get("raisedEvents") or 0)
        # Raised even when the instance has ended meanwhile (the engine ignores it then):
        # after a crash the operator cannot know whether an earlier raise got through.
        if raised < len(spec.events):
            for index in range(raised, len(spec.events)):
                event = spec.events[index]
                await state.client.raise_event(
                    spec.instance_id, event.name, event.data, idempotency_key=f"{uid}/{index}")
                outcome.events.append(("Normal", "EventRaised",
                                       f"raised event {event.name!r} (spec.events[{index}])"))
            patch["raisedEvents"] = len(spec.events)
        if spec.cancel and not status.get("cancelRequested") and not terminal:
            await state.client.cancel_instance(spec.instance_id, "spec.cancel is true")
            patch["cancelRequested"] = True
            outcome.events.append(("Normal", "CancelRequested",
                                   f"cancelling instance {spec.instance_id}"))
    except (ProviderError, OSError) as error:
        raise DatabaseUnavailable(str(error)) from error

    previous = cond.find(status.get("conditions"), cond.ACCEPTED) or {}
    if started_id is None:
        reason = "Started"
    elif previous.get("status") == "True":
        reason = str(previous.get("reason") or "Running")  # a resume changes nothing
    else:
        reason = "Running"
    accepted = cond.condition(cond.ACCEPTED, True, reason, f"instance {spec.instance_id}",
                              generation)
    updates = [accepted, db_ok]
    if started_id is None:
        updates.append(_ready(phase, generation))
    patch["conditions"] = _conditions(view.status, *updates)
    # The caller records the outcome with ``state.follow``, which has the status sync read
    # the instance once (after a start, an adoption, a restart or an edit).
    return outcome


def _ready(phase: str, generation: int | None) -> dict[str, Any]:
    if phase in TERMINAL_PHASES:
        return cond.condition(cond.READY, True, phase, f"the instance is {phase}", generation)
    return cond.condition(cond.READY, False, phase, f"the instance is {phase}", generation)


def _rejected(
    outcome: Outcome,
    status: Mapping[str, Any],
    reason: str,
    message: str,
    generation: int | None,
    started_id: str | None,
    *,
    warn_once: bool = False,
) -> Outcome:
    """A spec the operator will not act on: a condition and (on a change) a Warning Event."""
    previous = cond.find(status.get("conditions"), cond.ACCEPTED) or {}
    repeated = (previous.get("status") == "False" and previous.get("reason") == reason
                and (warn_once or previous.get("observedGeneration") == generation))
    if not repeated:
        outcome.events.append(("Warning", reason, message))
    outcome.result = "rejected"
    updates = [cond.condition(cond.ACCEPTED, False, reason, message, generation)]
    if started_id is None:
        outcome.status["phase"] = PENDING
        updates.append(cond.condition(cond.READY, False, reason, message, generation))
    outcome.status["conditions"] = _conditions(status, *updates)
    return outcome


async def delete(
    state: OperatorState, body: Mapping[str, Any], *, retry: int = 0
) -> list[tuple[str, str, str]]:
    """Apply ``spec.deletionPolicy``; raises ``DatabaseUnavailable`` (kopf retries, the
    finalizer keeps the CR until the policy is carried out)."""
    meta = body.get("metadata", {})
    view = state.observe(body)
    instance_id = view.started_instance
    spec = body.get("spec") or {}
    policy = spec.get("deletionPolicy", "Cancel") if isinstance(spec, Mapping) else "Cancel"
    if instance_id is None:
        return []
    if policy == "Orphan":
        return [("Normal", "Orphaned", f"instance {instance_id} left running")]
    reason = f"Orchestration {meta.get('namespace')}/{meta.get('name')} was deleted"
    try:
        current = await state.client.get_status(instance_id)
        running = current.status not in Status.TERMINAL and current.status != Status.NOT_FOUND
        if running and retry == 0:  # one cancel message is enough; retries only wait
            await state.client.cancel_instance(instance_id, reason)
        if policy == "Purge" and current.status != Status.NOT_FOUND:
            if running:
                # Delete only once the cancellation has ended the instance: a turn in
                # flight would otherwise write the instance back after the delete.
                try:
                    await state.client.wait_for_orchestration(instance_id, PURGE_WAIT_MS)
                except TimeoutError as error:
                    raise NotYet(f"instance {instance_id} has not ended yet; purging "
                                 "once it has") from error
            await state.client.delete_instance(instance_id, force=True)
            return [("Normal", "Purged", f"instance {instance_id} and its history deleted")]
    except ProviderError as error:
        if error.retryable:
            raise DatabaseUnavailable(str(error)) from error
        log.info("deleting %s: %s", instance_id, error)  # already gone: nothing left to do
    except OSError as error:
        raise DatabaseUnavailable(str(error)) from error
    return [("Normal", "Canceled", f"instance {instance_id} cancelled")]


__all__ = ["RUNNING", "DatabaseUnavailable", "NotYet", "Outcome", "database_down", "delete",
           "reconcile"]
