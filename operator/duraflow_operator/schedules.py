"""The OrchestrationSchedule reconcile: keep the engine schedule in step with the CR.

Level-based, like the Orchestration reconcile: read the engine schedule, then create it,
change the fields that differ (a change of timing restarts its clock, others keep the next
tick), and pause or resume it to match ``spec.suspend``. Running it twice changes nothing.

The cron expression and time zone are checked by the engine (``InvalidScheduleError``): a bad
one gets ``Ready=False InvalidSchedule`` and a Warning Event, and the engine schedule keeps
its previous, valid definition (a typo must not stop a nightly job that ran fine).

The runs themselves (run CRs, history limits, the status of ticks) belong to the schedule
sync loop (``schedule_sync``); this module writes only ``scheduleId``, ``observedGeneration``
and the ``Ready`` / ``Suspended`` conditions, through kopf's patch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from duraflow import (
    InvalidScheduleError,
    ProviderError,
    ScheduleExistsError,
    ScheduleInfo,
    ScheduleNotFoundError,
)
from duraflow_operator import conditions as cond
from duraflow_operator.orchestrations import DatabaseUnavailable, Outcome
from duraflow_operator.schedule_spec import ScheduleSpec, parse_schedule, schedule_id
from duraflow_operator.spec import SpecError
from duraflow_operator.state import OperatorState

SUSPENDED = "Suspended"


def _differences(info: ScheduleInfo, spec: ScheduleSpec) -> dict[str, Any]:
    """The engine fields the spec changes (the engine stores cron with single spaces)."""
    wanted = spec.engine_fields()
    wanted["cron"] = " ".join(spec.schedule.split())
    have = {"orchestration": info.orchestration, "input": info.input, "cron": info.cron,
            "timezone": info.timezone, "overlap": info.overlap,
            "catchup_window_ms": info.catchup_window_ms, "version": info.version}
    return {k: v for k, v in wanted.items() if have[k] != v}


async def reconcile(state: OperatorState, body: Mapping[str, Any]) -> Outcome:
    """One pass over one CR. Raises ``DatabaseUnavailable``; never raises for bad specs."""
    meta = body.get("metadata", {})
    generation = meta.get("generation")
    status: Mapping[str, Any] = body.get("status") or {}
    sid = schedule_id(str(meta.get("namespace")), str(meta.get("name")))
    outcome = Outcome()
    outcome.status.update({"observedGeneration": generation, "scheduleId": sid})
    try:
        spec = parse_schedule(body.get("spec"), max_input_bytes=state.settings.max_input_bytes)
    except SpecError as error:
        return _invalid(outcome, status, error.reason, error.message, generation)
    client = state.client
    info: ScheduleInfo | None = None
    try:
        try:
            info = await client.describe_schedule(sid)
        except ScheduleNotFoundError:
            info = None
        if info is None:
            await client.create_schedule(sid, paused=spec.suspend, **spec.engine_fields())
            outcome.events.append(("Normal", "Created", (
                f"engine schedule {sid} created: {spec.orchestration} at {spec.schedule!r} "
                f"({spec.time_zone})")))
        else:
            changed = _differences(info, spec)
            if changed:
                await client.update_schedule(sid, **changed)
                outcome.events.append(("Normal", "Updated", (
                    f"engine schedule {sid}: changed {', '.join(sorted(changed))}")))
            if spec.suspend and not info.paused:
                await client.pause_schedule(sid, "spec.suspend is true")
                outcome.events.append(("Normal", SUSPENDED, "no new runs until spec.suspend "
                                                            "is false"))
            elif not spec.suspend and info.paused:
                await client.resume_schedule(sid)
                outcome.events.append(("Normal", "Resumed", "runs start again from the next "
                                                            "tick"))
    except ScheduleExistsError:  # created by someone else meanwhile: update it instead
        return await reconcile(state, body)
    except InvalidScheduleError as error:
        message = (f"{error}; fix spec.{'timeZone' if error.field == 'timezone' else 'schedule'}"
                   + ("" if info is None else " (the schedule keeps its previous definition)"))
        return _invalid(outcome, status, "InvalidSchedule", message, generation)
    except (ProviderError, OSError) as error:
        if isinstance(error, ProviderError) and not error.retryable:
            return _invalid(outcome, status, "EngineRefused", str(error), generation)
        raise DatabaseUnavailable(str(error)) from error
    except (TypeError, ValueError) as error:  # a value the engine refuses (a size limit)
        return _invalid(outcome, status, "InvalidSpec", str(error), generation)
    ready = cond.condition(cond.READY, True, "Scheduled",
                           f"engine schedule {sid}: {spec.schedule} ({spec.time_zone})",
                           generation)
    suspended = cond.condition(
        SUSPENDED, spec.suspend, "SuspendRequested" if spec.suspend else "Running",
        "spec.suspend is true: no new runs" if spec.suspend else "runs start at every tick",
        generation)
    outcome.status["conditions"] = cond.merge_conditions(status.get("conditions"),
                                                         [ready, suspended])
    state.read_schedule((str(meta.get("namespace")), str(meta.get("name"))))
    return outcome


def _invalid(outcome: Outcome, status: Mapping[str, Any], reason: str, message: str,
             generation: int | None) -> Outcome:
    """Ready=False with a Warning Event, once per generation."""
    previous = cond.find(status.get("conditions"), cond.READY) or {}
    if not (previous.get("status") == "False" and previous.get("reason") == reason
            and previous.get("observedGeneration") == generation):
        outcome.events.append(("Warning", reason, message))
    outcome.result = "rejected"
    outcome.status["conditions"] = cond.merge_conditions(
        status.get("conditions"), [cond.condition(cond.READY, False, reason, message,
                                                  generation)])
    return outcome


async def delete(state: OperatorState, body: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Delete the engine schedule (its runs' CRs go with the CR: they are owned by it)."""
    meta = body.get("metadata", {})
    sid = schedule_id(str(meta.get("namespace")), str(meta.get("name")))
    try:
        await state.client.delete_schedule(sid)
    except ScheduleNotFoundError:
        return []
    except (ProviderError, OSError) as error:
        raise DatabaseUnavailable(str(error)) from error
    return [("Normal", "Deleted", f"engine schedule {sid} deleted")]
