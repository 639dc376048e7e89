"""ONE loop that keeps every Orchestration CR's status current, driven by the database.

It never polls per CR. It follows ``AsyncClient.watch_instance_changes()``: the engine
announces each instance whose status or custom status changed (in-process, and across
processes through PostgreSQL LISTEN/NOTIFY), the loop reads only those instances, and
writes a CR's status only when it differs from what the CR shows. Writes are coalesced: at
most one per CR per ``status_min_interval_s`` (default 2 s); a change inside that window is
written when it ends, with whatever is current then, and a terminal phase is written at
once. So the load follows the rate of change, not the number of CRs.

When notifications may have been lost (the LISTEN connection was re-established after the
database went away) the feed says "everything" and every followed instance is re-read.
Database errors leave the instances dirty and the loop retries them with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from duraflow import InstanceChanges, ProviderError
from duraflow_operator import conditions as cond
from duraflow_operator.kube import ApiError
from duraflow_operator.state import CrView, OperatorState
from duraflow_operator.status import (
    FAILED,
    TERMINAL_PHASES,
    changed,
    instance_status,
    metrics,
    status_ops,
)

log = logging.getLogger("duraflow.operator.status_sync")

MIRRORED = ("phase", "output", "outputTruncated", "error", "customStatus",
            "customStatusVersion", "executionId", "completedAt")
BATCH_WINDOW_S = 0.05  # let a burst of notifications gather before reading
TICK_S = 0.5


class StatusSync:
    def __init__(self, state: OperatorState) -> None:
        self.state = state
        self._deferred: dict[str, float] = {}  # instance id -> monotonic due time
        self._semaphore = asyncio.Semaphore(max(state.settings.sync_concurrency, 1))
        self.writes = 0
        self.reads = 0

    async def run(self) -> None:
        state = self.state
        with state.client.watch_instance_changes() as feed:
            while True:
                changes = await feed.next(0.0 if state.dirty else self._timeout())
                if changes:
                    await asyncio.sleep(BATCH_WINDOW_S)  # gather the rest of a burst
                    more = await feed.next(0.0)
                    changes = InstanceChanges(changes.instance_ids | more.instance_ids,
                                              changes.everything or more.everything)
                if changes:
                    state.instances_changed(changes.instance_ids, changes.everything)
                ids = set(state.dirty)
                state.dirty.clear()
                if changes.everything:
                    ids |= set(state.by_instance)
                ids |= {i for i in changes.instance_ids if i in state.by_instance}
                now = time.monotonic()
                ids |= {i for i, due in self._deferred.items() if due <= now}
                for instance_id in ids:
                    self._deferred.pop(instance_id, None)
                if ids:
                    await asyncio.gather(*(self._sync_one(i) for i in ids))

    def _timeout(self) -> float:
        """Until the next deferred write is due, at most ``TICK_S``: marks from the
        reconcile (``state.dirty``) are picked up within one tick."""
        if not self._deferred:
            return TICK_S
        return min(max(min(self._deferred.values()) - time.monotonic(), 0.0), TICK_S)

    async def _sync_one(self, instance_id: str) -> None:
        state = self.state
        key = state.by_instance.get(instance_id)
        view = state.crs.get(key) if key is not None else None
        if key is None or view is None:
            return  # the CR is gone
        if view.started_instance is None and view.status.get("instanceId") in (None,
                                                                               instance_id):
            # The reconcile's status write has not landed (kopf is retrying it, or a re-read
            # showed it missing): wait for it, without dropping the instance.
            self._defer(instance_id, 0.2)
            return
        if view.started_instance != instance_id:
            return  # the CR follows another instance now
        async with self._semaphore:
            try:
                await self._refresh(key, view, instance_id)
            except (ProviderError, OSError) as error:
                log.warning("status sync: database error for %s (retrying): %s",
                            instance_id, error)
                state.database_error = str(error)
                self._defer(instance_id, 2.0)
            except ApiError as error:
                if error.status == 404:  # the CR is gone (its DELETED event may never come)
                    if state.crs.get(key) is view:
                        state.forget(key)
                    return
                if error.status == 422:  # a remove of a field the CR no longer has: re-read
                    await self._reload(key, view)
                log.warning("status sync: API error for %s (retrying): %s", instance_id, error)
                self._defer(instance_id, 2.0)
            except Exception:  # one bad CR must not stop the loop for all others
                log.exception("status sync failed for %s", instance_id)
                self._defer(instance_id, 5.0)

    async def _reload(self, key: tuple[str, str], view: CrView) -> None:
        """Read the CR again: the in-memory copy missed a change of its status."""
        path = f"/apis/duraflow.io/v1alpha1/namespaces/{key[0]}/orchestrations/{key[1]}"
        try:
            body = await self.state.kube.request("GET", path)
        except ApiError as error:
            log.warning("status sync: could not re-read %s/%s: %s", key[0], key[1], error)
            return
        if self.state.crs.get(key) is view:
            self.state.observe(body)

    def _defer(self, instance_id: str, delay_s: float) -> None:
        due = time.monotonic() + delay_s
        self._deferred[instance_id] = min(self._deferred.get(instance_id, due), due)

    async def _refresh(self, key: tuple[str, str], view: CrView, instance_id: str) -> None:
        state = self.state
        if not view.status.get("startedAt"):
            self._defer(instance_id, 0.2)  # the reconcile's own write has not landed yet
            return
        self.reads += 1
        result = await state.client.get_status(instance_id)
        patch = instance_status(result, started=True, bounds=state.bounds)
        current = view.status
        phase = patch["phase"]
        previous_phase = current.get("phase")
        terminal = phase in TERMINAL_PHASES
        # Exact: {"a": null} differs from {}. An ended instance the CR shows without
        # completedAt (adopted after it ended) still needs the sync's own fields.
        if not changed(current, patch) and not (terminal and not current.get("completedAt")) \
                and not await self._newly_pinned(instance_id, current, terminal):
            view.mirror = {k: patch.get(k) for k in MIRRORED}
            return
        wait = view.last_write + state.settings.status_min_interval_s - time.monotonic()
        if wait > 0 and not terminal:
            self._defer(instance_id, wait)
            return
        async with state.lock(key):
            await self._enrich(patch, instance_id, terminal)
            generation = view.body.get("metadata", {}).get("generation")
            ready = cond.condition(cond.READY, terminal, phase, _ready_message(phase, patch),
                                   generation)
            db_ok = cond.condition(cond.DATABASE, True, "Connected", "the database answers",
                                   generation)
            patch["conditions"] = cond.merge_conditions(current.get("conditions"), [ready, db_ok])
            if terminal and not current.get("completedAt"):
                patch["completedAt"] = cond.now_iso()
            name, namespace = key[1], key[0]
            path = (f"/apis/duraflow.io/v1alpha1/namespaces/{namespace}/orchestrations/{name}")
            await state.kube.json_patch_status(path, status_ops(current, patch))
            self.writes += 1
            state.metrics.status_writes.inc()
            view.last_write = time.monotonic()
            view.mirror = {k: patch.get(k) for k in MIRRORED}
            status = view.body.setdefault("status", {})
            for field, value in patch.items():
                if value is None:
                    status.pop(field, None)
                else:
                    status[field] = value
        if phase != previous_phase and terminal:
            kind = "Warning" if phase == FAILED else "Normal"
            await state.kube.post_event(view.body, kind, phase, _ready_message(phase, patch))

    async def _newly_pinned(self, instance_id: str, current: Mapping[str, Any],
                            terminal: bool) -> bool:
        """Whether the CR lacks the build its running execution got pinned to since (its
        first turn changes nothing else the CR shows). Read only while the store has
        builds: without them nothing is ever pinned, and this costs nothing."""
        if terminal or current.get("buildId") or not self.state.builds_in_use:
            return False
        try:
            info = await self.state.client.get_instance_info(instance_id)
        except ProviderError as error:
            if error.retryable:
                raise
            return False
        return info.build_id is not None

    async def _enrich(self, patch: dict[str, Any], instance_id: str, terminal: bool) -> None:
        """Add the instance's metrics (read only when a write happens anyway)."""
        client = self.state.client
        try:
            info = await client.get_instance_info(instance_id)
        except ProviderError as error:
            if error.retryable:
                raise
            return  # not created yet: no figures
        patch["executionId"] = info.current_execution_id
        if info.build_id:
            patch["buildId"] = info.build_id
        if info.orchestration_version:
            patch["orchestrationVersion"] = info.orchestration_version
        history = await client.read_execution_history(instance_id, info.current_execution_id)
        now_ms = int(time.time() * 1000)
        patch["metrics"] = metrics(info, history, now_ms)


def _ready_message(phase: str, patch: dict[str, Any]) -> str:
    if phase == FAILED:
        return f"the instance failed: {str(patch.get('error'))[:200]}"
    return f"the instance is {phase}"


def overwritten(view: CrView, fields: Iterable[str] = MIRRORED) -> bool:
    """Whether the CR no longer shows what the sync last wrote (another writer raced it)."""
    if not view.mirror:
        return False
    status = view.status
    return any(status.get(k) != view.mirror.get(k) for k in fields)
