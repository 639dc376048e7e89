"""ONE loop that reads the worker registry and acts on what it says.

Every ``registry_interval_s`` it reads the live workers (``AsyncClient.list_workers``) and
the activity backlog per tag (``get_activity_backlog``): two queries for the whole
operator, whatever the number of CRs. When the set of registered orchestrations changes,
the CRs held ``Pending`` with ``UnknownOrchestration`` are reconciled again, so they start as
soon as a worker that registers them comes up. WorkerPool statuses get the registry's
figures for their pods; a pool the API server no longer has (a 404, or missing from the
list of pools taken every ``pool_resync_s``) is forgotten. A database error marks the
registry unknown (the reconcile then retries rather than rejecting) and is retried on the
next tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from duraflow import ProviderError
from duraflow_operator import conditions as cond
from duraflow_operator import orchestrations, workerpools
from duraflow_operator.kube import API_ERRORS, ApiError
from duraflow_operator.revisions import in_rollout, needs_polling
from duraflow_operator.settings import GROUP, VERSION
from duraflow_operator.state import OperatorState
from duraflow_operator.status import differs

log = logging.getLogger("duraflow.operator.registry")
#: A pool's condition: whether every pool of the store runs the store's current build.
BUILD_SERVED = "BuildServed"
NO_WORKER_FOR_BUILD = "NoWorkerForBuild"
#: The builds (pinned counts, which build is current) are read every this many ticks: what
#: they feed (pinned counts of pools with no rollout in progress, NoWorkerForBuild, whether
#: the status sync looks for pins) may lag by that much; rollouts read them themselves.
BUILDS_EVERY_TICKS = 5


class RegistryWatch:
    def __init__(self, state: OperatorState) -> None:
        self.state = state
        self._known: frozenset[tuple[str, str]] | None = None
        self._resynced: float | None = None
        self.first_read = asyncio.Event()
        #: Ticks completed (what a test waits for instead of guessing a duration).
        self.ticks = 0

    async def run(self) -> None:
        while True:
            await self.tick()
            self.ticks += 1
            await asyncio.sleep(self.state.settings.registry_interval_s)

    async def tick(self) -> None:
        state = self.state
        try:
            workers = await state.client.list_workers()
            backlog = await state.client.get_activity_backlog()
        except (ProviderError, OSError) as error:
            if state.database_error is None:
                log.warning("worker registry unreadable (database unreachable?): %s", error)
            state.database_error = str(error)
            state.workers = None
            self.first_read.set()
            return
        state.database_error = None
        state.workers, state.backlog = workers, backlog
        self.first_read.set()
        known = frozenset((name, version) for w in workers if w.alive
                          for name, versions in w.orchestrations.items()
                          for version in (*versions, ""))
        if known != self._known:
            self._known = known
            await self._retry_waiting()
        now = asyncio.get_running_loop().time()
        if self._resynced is None:
            self._resynced = now  # kopf has just listed them all: the first list is due later
        elif state.pools and now - self._resynced >= state.settings.pool_resync_s:
            self._resynced = now
            await self._resync_pools()
        await self._pool_statuses()
        await self._rollouts()

    async def _retry_waiting(self) -> None:
        state = self.state
        for key, view in list(state.crs.items()):
            if not view.waiting_for_worker:
                continue
            try:
                with state.metrics.reconcile("Orchestration") as result:
                    async with state.lock(key):
                        if state.crs.get(key) is not view:
                            continue  # deleted (or replaced) while earlier CRs were retried
                        outcome = await orchestrations.reconcile(state, view.body)
                        result["result"] = outcome.result
                        path = (f"/apis/duraflow.io/v1alpha1/namespaces/{key[0]}"
                                f"/orchestrations/{key[1]}")
                        await state.kube.patch_status(path, outcome.status)
                        state.follow(view.body, outcome.status)
                for type_, reason, message in outcome.events:
                    await state.kube.post_event(view.body, type_, reason, message)
            except (orchestrations.DatabaseUnavailable, *API_ERRORS) as error:
                log.warning("retrying %s/%s later: %s", key[0], key[1], error)
                self._known = None  # try again on the next tick

    async def _pool_statuses(self) -> None:
        state = self.state
        if state.workers is None:
            return
        for (namespace, name), body in list(state.pools.items()):
            fields = workerpools.registry_status(name, body.get("spec") or {}, state.workers,
                                                 state.backlog)
            if not differs(body.get("status") or {}, fields):
                continue
            path = f"/apis/duraflow.io/v1alpha1/namespaces/{namespace}/workerpools/{name}"
            try:
                await state.kube.patch_status(path, fields)
                body.setdefault("status", {}).update(fields)
            except API_ERRORS as error:
                if isinstance(error, ApiError) and error.status == 404:
                    state.forget_pool((namespace, name))  # deleted while no watch told us
                    continue
                log.warning("could not update WorkerPool %s/%s status: %s", namespace, name, error)

    async def _rollouts(self) -> None:
        """Move on the pools whose rollout waits for what no Kubernetes event announces
        (``revisions.needs_polling``); every ``BUILDS_EVERY_TICKS`` ticks, with one
        ``list_builds`` for all pools, show the pinned executions of pools with no rollout
        in progress and tell every pool whether it runs the store's current build."""
        state = self.state
        if state.pool_step is not None:
            for key, body in list(state.pools.items()):
                if needs_polling(state.with_rollout(body).get("status") or {}):
                    await state.pool_step(key)
        if self.ticks % BUILDS_EVERY_TICKS:
            return
        try:
            builds = await state.client.list_builds()
        except (ProviderError, OSError):
            return  # the registry read has just reported the database
        state.note_builds(bool(builds))
        pinned = {b.build_id: b.pinned_running for b in builds}
        for key, body in list(state.pools.items()):
            status = state.with_rollout(body).get("status") or {}
            if not in_rollout(status):
                await self._pinned_counts(key, body, status, pinned)
        current = next((b.build_id for b in builds if b.state == "current"), None)
        if current is None:
            return
        await self._build_coverage(current)

    async def _pinned_counts(self, key: tuple[str, str], body: dict[str, Any],
                             status: Mapping[str, Any], pinned: Mapping[str, int]) -> None:
        """A pool with no rollout in progress still shows how many executions are pinned
        to its build (from the one ``list_builds`` of the tick: no request per pool)."""
        entries = [dict(r, pinnedExecutions=pinned.get(str(r.get("build")), 0))
                   for r in status.get("revisions") or [] if isinstance(r, Mapping)]
        if entries == status.get("revisions"):
            return
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{key[0]}/workerpools/{key[1]}"
        try:
            await self.state.kube.patch_status(path, {"revisions": entries})
        except API_ERRORS as error:
            log.warning("could not update WorkerPool %s/%s status: %s", *key, error)
            return
        body.setdefault("status", {})["revisions"] = entries
        self.state.remember(key, {"revisions": entries})

    async def _build_coverage(self, current: str) -> None:
        """``NoWorkerForBuild``: pools of one store must all run its current build (a
        pinned execution's activities run on its build only): a pool without a revision of
        it leaves that build's work for its tags waiting. Both sides are told."""
        state = self.state
        have: dict[tuple[str, str], bool] = {}
        for key, body in state.pools.items():
            status = state.with_rollout(body).get("status") or {}
            builds = [r.get("build") for r in status.get("revisions") or []
                      if isinstance(r, dict)]
            if builds:
                have[key] = current in builds
        lacking = sorted(k for k, ok in have.items() if not ok)
        for key, ok in have.items():
            pool = state.pools.get(key)
            if pool is None:
                continue
            body = pool
            generation = body["metadata"].get("generation")
            if not lacking:
                update = cond.condition(BUILD_SERVED, True, "AllPoolsRunBuild",
                                        f"every pool runs the current build {current}",
                                        generation)
            elif not ok:
                tags = ",".join((body.get("spec") or {}).get("tags") or []) or "untagged"
                update = cond.condition(BUILD_SERVED, False, NO_WORKER_FOR_BUILD, (
                    f"build {current} is current but this pool runs no revision of it: "
                    f"work of build {current} for its tags ({tags}) waits. Give it the "
                    "image and app of the pools that run it (or the same spec.buildId)"),
                    generation)
            else:
                names = ", ".join(k[1] for k in lacking)
                update = cond.condition(BUILD_SERVED, False, NO_WORKER_FOR_BUILD, (
                    f"pool(s) {names} run no revision of this pool's current build "
                    f"{current}: its work that needs their tags waits until they do"),
                    generation)
            await self._set_condition(key, body, update)

    async def _set_condition(self, key: tuple[str, str], body: dict[str, Any],
                             update: dict[str, Any]) -> None:
        state = self.state
        status = state.with_rollout(body).get("status") or {}
        before = cond.find(status.get("conditions"), update["type"]) or {}
        if all(before.get(k) == update.get(k) for k in ("status", "reason", "message")):
            return
        conditions = cond.merge_conditions(status.get("conditions"), [update])
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{key[0]}/workerpools/{key[1]}"
        try:
            await state.kube.patch_status(path, {"conditions": conditions})
        except API_ERRORS as error:
            log.warning("could not update WorkerPool %s/%s status: %s", *key, error)
            return
        body.setdefault("status", {})["conditions"] = conditions
        state.remember(key, {"conditions": conditions})
        if update["status"] == "False" and before.get("status") != "False":
            await state.kube.post_event(body, "Warning", update["reason"], update["message"])

    async def _resync_pools(self) -> None:
        """Forget the pools the API server no longer has. kopf re-lists after a watch was
        down but tells no handler which objects vanished meanwhile (no DELETED event
        comes for them); a list of the pools, now and then, does."""
        state = self.state
        seen = dict(state.pools)  # a pool the watch updates meanwhile gets a new body
        base = f"/apis/{GROUP}/{VERSION}"
        paths = ([f"{base}/namespaces/{ns}/workerpools" for ns in state.settings.namespaces]
                 or [f"{base}/workerpools"])
        listed: set[tuple[str, str]] = set()
        try:
            for path in paths:
                answer = await state.kube.request("GET", path)
                for item in (answer or {}).get("items") or []:
                    meta = item.get("metadata") or {}
                    listed.add((str(meta.get("namespace")), str(meta.get("name"))))
        except API_ERRORS as error:
            log.warning("could not list WorkerPools: %s", error)
            return
        for key, body in seen.items():
            if key not in listed and state.pools.get(key) is body:
                log.info("WorkerPool %s/%s is gone; forgetting it", *key)
                state.forget_pool(key)

