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

from duraflow import ProviderError
from duraflow_operator import orchestrations, workerpools
from duraflow_operator.kube import API_ERRORS, ApiError
from duraflow_operator.settings import GROUP, VERSION
from duraflow_operator.state import OperatorState
from duraflow_operator.status import differs

log = logging.getLogger("duraflow.operator.registry")


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

