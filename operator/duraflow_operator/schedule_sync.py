"""ONE loop that gives every OrchestrationSchedule's runs their CRs and keeps its status.

It never polls per schedule per second. It reads a schedule's engine state
(``describe_schedule``: its newest runs, next ticks, missed count) only when

* the database announced a change of one of its tick instances (the status sync's change
  feed hands the ids over: ``OperatorState.instances_changed``), which is how a fired run is
  learnt of, within the status sync's batching of a notification;
* its next tick has passed by ``READ_GRACE_MS`` while one of its runs is active (a tick the
  concurrency policy skips starts no instance, so only the count of missed runs tells of
  it): one read per such tick;
* the CR was (re)reconciled.

Between reads, a change of a run CR (it ended, it was deleted) is handled from memory: the
runs' CRs are followed by the Orchestration watch (``OperatorState.runs``). For each run the
engine started after the newest that already has a CR (``status.runsCreatedThroughMs``), the
loop creates an Orchestration CR owned by the schedule that adopts the run's instance
(``spec.instanceId``: the reconcile finds the instance and follows it, starting nothing);
it deletes the oldest finished runs' CRs beyond the history limits, and writes the status
fields of the runs (never the conditions, which are the reconcile's) when they change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from duraflow import ProviderError, ScheduleInfo, ScheduleNotFoundError, ScheduleRun
from duraflow_operator.conditions import ms_to_iso
from duraflow_operator.kube import API_ERRORS, ApiError
from duraflow_operator.schedule_spec import (
    SCHEDULE_LABEL,
    ScheduleSpec,
    parse_schedule,
    run_name,
)
from duraflow_operator.settings import GROUP, VERSION
from duraflow_operator.spec import SpecError
from duraflow_operator.state import CrView, Key, OperatorState, ScheduleView
from duraflow_operator.status import COMPLETED, changed

log = logging.getLogger("duraflow.operator.schedule_sync")

#: How long after a tick its schedule is read (ticks are at most ~1 s late).
READ_GRACE_MS = 1_000
#: A read that failed is retried this much later.
RETRY_MS = 2_000
BATCH_WINDOW_S = 0.05
#: The longest sleep: a wake-up lost to a bug still heals.
MAX_SLEEP_S = 30.0
ORCHESTRATIONS = f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}/orchestrations"
SCHEDULES = f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}/orchestrationschedules/{{name}}"


def _now_ms() -> int:
    return int(time.time() * 1000)


class ScheduleSync:
    def __init__(self, state: OperatorState) -> None:
        self.state = state
        self._semaphore = asyncio.Semaphore(max(state.settings.sync_concurrency, 1))
        self.reads = 0
        self.writes = 0

    async def run(self) -> None:
        state = self.state
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.schedules_changed.wait(), self._timeout())
            if state.schedules_changed.is_set():
                await asyncio.sleep(BATCH_WINDOW_S)  # gather the rest of a burst
                state.schedules_changed.clear()
            now = _now_ms()
            reads = set(state.schedules_to_read)
            reads |= {k for k, v in state.schedules.items()
                      if v.read_due_ms is not None and v.read_due_ms <= now}
            keys = reads | state.schedules_touched
            state.schedules_to_read.clear()
            state.schedules_touched.clear()
            if keys:
                await asyncio.gather(*(self._sync_one(k, k in reads) for k in keys))

    def _timeout(self) -> float:
        dues = [v.read_due_ms for v in self.state.schedules.values() if v.read_due_ms]
        if not dues:
            return MAX_SLEEP_S
        return min(max((min(dues) - _now_ms()) / 1000, 0.0), MAX_SLEEP_S)

    async def _sync_one(self, key: Key, read: bool) -> None:
        async with self._semaphore:
            view = self.state.schedules.get(key)
            if view is None or view.body["metadata"].get("deletionTimestamp"):
                return
            try:
                if read or view.info is None:
                    await self._read(view)
                await self._follow(key, view)
            except (ProviderError, OSError) as error:
                log.warning("schedule sync: database error for %s (retrying): %s",
                            view.schedule_id, error)
                view.read_due_ms = _now_ms() + RETRY_MS
            except API_ERRORS as error:
                if isinstance(error, ApiError) and error.status == 404:
                    return  # the schedule's CR is gone: its DELETED event follows
                log.warning("schedule sync: API error for %s/%s (retrying): %s",
                            key[0], key[1], error)
                view.read_due_ms = _now_ms() + RETRY_MS
            except Exception:  # one bad schedule must not stop the loop for all others
                log.exception("schedule sync failed for %s/%s", key[0], key[1])
                view.read_due_ms = _now_ms() + 5 * RETRY_MS

    async def _read(self, view: ScheduleView) -> None:
        self.reads += 1
        try:
            info = await self.state.client.describe_schedule(view.schedule_id)
        except ScheduleNotFoundError:
            info = None  # not created yet (or the spec is invalid): the reconcile's business
        view.info = info
        upcoming = info.next_run_times_ms if info is not None else []
        # A tick while a run is active may start nothing (Forbid) or wait (BufferOne): only a
        # read tells. Otherwise the tick starts an instance, and the change feed tells.
        blocked = info is not None and bool(info.running or info.buffered)
        view.read_due_ms = upcoming[0] + READ_GRACE_MS if upcoming and blocked else None

    async def _follow(self, key: Key, view: ScheduleView) -> None:
        try:
            spec: ScheduleSpec | None = parse_schedule(
                view.body.get("spec"), max_input_bytes=self.state.settings.max_input_bytes)
        except SpecError:
            spec = None
        info = view.info
        status = view.body.setdefault("status", {})
        through = max(int(status.get("runsCreatedThroughMs") or 0), view.created_through)
        if info is not None and spec is not None:
            through = await self._create_runs(key, view, info, spec, through)
            view.created_through = through
        runs = self._runs(key, view)
        if spec is not None:
            runs = await self._prune(runs, spec)
        fields = self._status(view, info, runs, through)
        update = changed(status, fields)
        if update:
            path = SCHEDULES.format(ns=key[0], name=key[1])
            await self.state.kube.patch_status(path, update)
            self.writes += 1
            for name, value in update.items():
                if value is None:
                    status.pop(name, None)
                else:
                    status[name] = value

    async def _create_runs(self, key: Key, view: ScheduleView, info: ScheduleInfo,
                           spec: ScheduleSpec, through: int) -> int:
        """A CR for every run started after ``through``, oldest first; the new mark."""
        have = self.state.runs.get(key, set())
        for run in sorted(info.last_runs, key=lambda r: (r.started_at_ms, r.instance_id)):
            if run.started_at_ms <= through:
                continue
            name = run_name(key[1], view.schedule_id, run.instance_id)
            if name is not None and name not in have:
                try:
                    await self.state.kube.request("POST", ORCHESTRATIONS.format(ns=key[0]),
                                                  self._run_body(key, view, info, spec, run,
                                                                 name))
                except ApiError as error:
                    if error.status != 409:  # 409: it exists (created before a restart)
                        raise
                have.add(name)
            through = run.started_at_ms
        return through

    def _run_body(self, key: Key, view: ScheduleView, info: ScheduleInfo, spec: ScheduleSpec,
                  run: ScheduleRun, name: str) -> dict[str, Any]:
        meta = view.body["metadata"]
        run_spec: dict[str, Any] = {"orchestration": info.orchestration,
                                    "instanceId": run.instance_id}
        if info.version:
            run_spec["version"] = info.version
        if info.input is not None:
            run_spec["input"] = info.input
        if spec.run_deletion_policy:
            run_spec["deletionPolicy"] = spec.run_deletion_policy
        if spec.run_ttl_s is not None:
            run_spec["ttlSecondsAfterFinished"] = spec.run_ttl_s
        annotations = {**spec.run_annotations,
                       "duraflow.io/scheduled-at": ms_to_iso(run.scheduled_at_ms) or ""}
        return {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Orchestration",
            "metadata": {
                "name": name, "namespace": key[0],
                "labels": {**spec.run_labels, SCHEDULE_LABEL: key[1]},
                "annotations": annotations,
                "ownerReferences": [{
                    "apiVersion": f"{GROUP}/{VERSION}", "kind": "OrchestrationSchedule",
                    "name": key[1], "uid": meta.get("uid"), "controller": True,
                    "blockOwnerDeletion": True}],
            },
            "spec": run_spec,
        }

    def _runs(self, key: Key, view: ScheduleView) -> list[CrView]:
        """The schedule's run CRs not being deleted, oldest tick first. Owned by this CR: a
        CR someone else labelled is never counted, let alone deleted."""
        uid = view.body["metadata"].get("uid")
        found = []
        for name in sorted(self.state.runs.get(key, ())):
            run = self.state.crs.get((key[0], name))
            if (run is not None and run.owned_by(uid)
                    and not run.body["metadata"].get("deletionTimestamp")):
                found.append(run)
        return found

    async def _prune(self, runs: list[CrView], spec: ScheduleSpec) -> list[CrView]:
        """Delete the oldest finished runs beyond the history limits; the runs kept."""
        succeeded = [r for r in runs if r.status.get("phase") == COMPLETED]
        failed = [r for r in runs if r.finished and r.status.get("phase") != COMPLETED]
        doomed = (succeeded[:max(len(succeeded) - spec.successful_limit, 0)]
                  + failed[:max(len(failed) - spec.failed_limit, 0)])
        for run in doomed:
            meta = run.body["metadata"]
            path = f"{ORCHESTRATIONS.format(ns=meta['namespace'])}/{meta['name']}"
            try:
                await self.state.kube.request("DELETE", path)
            except ApiError as error:
                if error.status != 404:
                    raise
            meta["deletionTimestamp"] = meta.get("deletionTimestamp") or "deleting"
        gone = {id(r) for r in doomed}
        return [r for r in runs if id(r) not in gone]

    @staticmethod
    def _status(view: ScheduleView, info: ScheduleInfo | None, runs: list[CrView],
                through: int) -> dict[str, Any]:
        status: Mapping[str, Any] = view.body.get("status") or {}
        active = [{"apiVersion": f"{GROUP}/{VERSION}", "kind": "Orchestration",
                   "name": r.body["metadata"]["name"], "namespace": r.body["metadata"][
                       "namespace"], "uid": r.body["metadata"].get("uid")}
                  for r in runs if not r.finished]
        completed = [str(r.status["completedAt"]) for r in runs
                     if r.status.get("phase") == COMPLETED and r.status.get("completedAt")]
        last_success = max([*completed, str(status.get("lastSuccessfulTime") or "")]) or None
        fields: dict[str, Any] = {"active": active or None, "activeCount": len(active),
                                  "lastSuccessfulTime": last_success,
                                  "runsCreatedThroughMs": through or None}
        if info is not None:
            newest = max((r.scheduled_at_ms for r in info.last_runs), default=None)
            fields["lastScheduleTime"] = ms_to_iso(newest) or status.get("lastScheduleTime")
            fields["nextScheduleTime"] = ms_to_iso(
                info.next_run_times_ms[0] if info.next_run_times_ms else None)
            fields["missedRuns"] = info.missed
        return fields
