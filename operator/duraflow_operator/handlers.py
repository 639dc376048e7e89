"""The kopf handlers, registered on a registry of their own (one per operator run, so tests
can start and stop operators in one process), bound to one ``OperatorState``.

Thin: each handler times itself, serialises with the status sync on the CR's lock, calls
the reconcile of its concern, and hands kopf the status to write, so kopf writes that status
and its own bookkeeping (stored in ``status.operator``) in ONE request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NoReturn

import kopf

from duraflow_operator import autoscaler, orchestrations, schedules, workerpools
from duraflow_operator import conditions as cond
from duraflow_operator.connection import connect
from duraflow_operator.kube import API_ERRORS, ApiError
from duraflow_operator.manifests import POOL_LABEL
from duraflow_operator.revisions import in_rollout, revision_of
from duraflow_operator.settings import GROUP, MANAGED_BY, VERSION, OperatorSettings
from duraflow_operator.spec import SpecError, parse_worker_pool
from duraflow_operator.state import OperatorState, pool_lock
from duraflow_operator.status import changed, differs
from duraflow_operator.status_sync import overwritten

log = logging.getLogger("duraflow.operator.handlers")
RETRY_DELAY_S = 5.0


def _key(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata", {})
    return str(meta.get("namespace")), str(meta.get("name"))


def _status_patch(patch: kopf.Patch, current: Mapping[str, Any] | None,
                  fields: Mapping[str, Any]) -> None:
    """Hand kopf the fields that change the status, and nothing when none does."""
    update = changed(current or {}, {k: v for k, v in fields.items() if not k.startswith("_")})
    if update:
        patch.setdefault("status", {}).update(update)


def retry_delay(settings: OperatorSettings, retry: int) -> float:
    """The pause before retry number ``retry`` (0 = the first) of a pool's reconcile."""
    delay = settings.child_retry_min_s * 2.0 ** min(retry, 30)
    return float(min(settings.child_retry_max_s, delay))


def build_registry(state: OperatorState) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    async def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.AiohttpSession | None:
        """kopf gets a session of ours: the token re-read as it rotates, the operator's
        User-Agent and field manager on every request (connection.py)."""
        connection = connect(state.settings, settings)
        if connection is None:
            return None
        state.kube.configure(connection)
        return kopf.AiohttpSession(server=connection.server,
                                   aiohttp_session=connection.session(limit=0),
                                   default_namespace=connection.default_namespace)

    # ─── Orchestration ──────────────────────────────────────────────────────

    @kopf.on.resume(GROUP, VERSION, "orchestrations", registry=registry)
    @kopf.on.create(GROUP, VERSION, "orchestrations", registry=registry)
    @kopf.on.update(GROUP, VERSION, "orchestrations", field="spec", registry=registry)
    async def orchestration(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        raw = dict(body)
        with state.metrics.reconcile("Orchestration") as result:
            async with state.lock(_key(raw)):
                try:
                    outcome = await orchestrations.reconcile(state, raw)
                except orchestrations.DatabaseUnavailable as error:
                    await _database_down(state, raw, patch, result, error)
                _status_patch(patch, raw.get("status"), outcome.status)
                state.follow(raw, outcome.status)
            result["result"] = outcome.result
        await _post(state, raw, outcome.events)

    @kopf.on.delete(GROUP, VERSION, "orchestrations", registry=registry)
    async def orchestration_deleted(body: kopf.Body, retry: int, **_: Any) -> None:
        raw = dict(body)
        with state.metrics.reconcile("Orchestration"):
            try:
                async with state.lock(_key(raw)):  # never beside a reconcile of the same CR
                    events = await orchestrations.delete(state, raw, retry=retry)
            except orchestrations.DatabaseUnavailable as error:
                await state.kube.post_event(raw, "Warning", "DatabaseUnavailable",
                                            f"deletion waits for the database: {error}")
                raise kopf.TemporaryError(str(error), delay=RETRY_DELAY_S) from error
            except orchestrations.NotYet as waiting:
                raise kopf.TemporaryError(str(waiting), delay=0.5) from waiting
        state.forget(_key(raw))
        await _post(state, raw, events)

    @kopf.on.event(GROUP, VERSION, "orchestrations", registry=registry)
    async def orchestration_seen(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        if event.get("type") == "DELETED":
            state.forget(_key(body))
            return
        view = state.observe(dict(body))
        instance = view.started_instance
        if instance is not None and overwritten(view):
            state.mark_dirty(instance)

    # ─── OrchestrationSchedule ──────────────────────────────────────────────

    @kopf.on.resume(GROUP, VERSION, "orchestrationschedules", registry=registry)
    @kopf.on.create(GROUP, VERSION, "orchestrationschedules", registry=registry)
    @kopf.on.update(GROUP, VERSION, "orchestrationschedules", field="spec", registry=registry)
    async def orchestration_schedule(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        raw = dict(body)
        state.observe_schedule(raw)
        with state.metrics.reconcile("OrchestrationSchedule") as result:
            try:
                outcome = await schedules.reconcile(state, raw)
            except orchestrations.DatabaseUnavailable as error:
                await _database_down(state, raw, patch, result, error)
            _status_patch(patch, raw.get("status"), outcome.status)
            result["result"] = outcome.result
        await _post(state, raw, outcome.events)

    @kopf.on.delete(GROUP, VERSION, "orchestrationschedules", registry=registry)
    async def orchestration_schedule_deleted(body: kopf.Body, **_: Any) -> None:
        raw = dict(body)
        with state.metrics.reconcile("OrchestrationSchedule"):
            try:
                events = await schedules.delete(state, raw)
            except orchestrations.DatabaseUnavailable as error:
                await state.kube.post_event(raw, "Warning", "DatabaseUnavailable",
                                            f"deletion waits for the database: {error}")
                raise kopf.TemporaryError(str(error), delay=RETRY_DELAY_S) from error
        state.forget_schedule(_key(raw))
        await _post(state, raw, events)

    @kopf.on.event(GROUP, VERSION, "orchestrationschedules", registry=registry)
    async def orchestration_schedule_seen(event: Mapping[str, Any], body: kopf.Body,
                                          **_: Any) -> None:
        if event.get("type") == "DELETED":
            state.forget_schedule(_key(body))
        else:
            state.observe_schedule(dict(body))

    # ─── WorkerPool ─────────────────────────────────────────────────────────

    @kopf.on.resume(GROUP, VERSION, "workerpools", registry=registry)
    @kopf.on.create(GROUP, VERSION, "workerpools", registry=registry)
    @kopf.on.update(GROUP, VERSION, "workerpools", field="spec", registry=registry)
    async def workerpool(body: kopf.Body, patch: kopf.Patch, retry: int, **_: Any) -> None:
        raw = dict(body)
        key = _key(raw)
        delay = retry_delay(state.settings, retry)
        with state.metrics.reconcile("WorkerPool") as result:
            async with state.lock(pool_lock(key)):
                current = state.with_rollout(raw)
                try:
                    outcome = await workerpools.reconcile(state, current)
                except ApiError as error:  # a conflict or an outage: it may pass by itself
                    raise kopf.TemporaryError(str(error), delay=delay) from error
                fields = outcome.status
                if state.workers is not None:
                    fields.update(workerpools.registry_status(
                        key[1], raw.get("spec") or {}, state.workers, state.backlog))
                _status_patch(patch, current.get("status"), fields)
                state.remember(key, fields)
                state.pools[key] = {**raw, "status": {**(current.get("status") or {}),
                                                      **fields}}
            if outcome.retry is not None:
                result["result"] = "rejected"
        await _post(state, raw, outcome.events)
        if outcome.retry is not None:
            # Retried with backoff: a fixed spec starts a new reconcile at once, a fixed
            # RBAC rule or a removed conflicting object is found by the next retry.
            raise kopf.TemporaryError(outcome.retry, delay=delay)

    async def pool_step(key: tuple[str, str]) -> None:
        """A rollout step outside kopf's handlers (a StatefulSet's status changed, the
        registry tick): reconcile the pool and write what changed of its status."""
        if key not in state.pools:
            return
        async with state.lock(pool_lock(key)):
            known = state.pools.get(key)
            if known is None:
                return
            current = state.with_rollout(known)
            with state.metrics.reconcile("WorkerPool"):
                try:
                    outcome = await workerpools.reconcile(state, current)
                except API_ERRORS as error:  # the next step tries again
                    log.warning("WorkerPool %s/%s: rollout step failed: %s", *key, error)
                    return
            fields = outcome.status
            if state.workers is not None:
                fields.update(workerpools.registry_status(
                    key[1], known.get("spec") or {}, state.workers, state.backlog))
            state.remember(key, fields)
            update = changed(known.get("status") or {}, fields)
            if update:
                path = f"/apis/{GROUP}/{VERSION}/namespaces/{key[0]}/workerpools/{key[1]}"
                try:
                    await state.kube.patch_status(path, update)
                except API_ERRORS as error:
                    if isinstance(error, ApiError) and error.status == 404:
                        state.forget_pool(key)
                        return
                    log.warning("could not update WorkerPool %s/%s status: %s", *key, error)
                    return
                known.setdefault("status", {}).update(update)
        await _post(state, known, outcome.events)

    state.pool_step = pool_step

    @kopf.on.event(GROUP, VERSION, "workerpools", registry=registry)
    async def workerpool_seen(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        key = _key(body)
        if event.get("type") == "DELETED":
            state.forget_pool(key)
            return
        state.pools[key] = dict(body)
        state.pool_changed()
        await follow_statefulset(key)  # a late status write may have undone the last follow

    @kopf.on.event("apps", "v1", "statefulsets",
                   labels={"app.kubernetes.io/managed-by": MANAGED_BY}, registry=registry)
    async def statefulset_seen(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        """The pool's readyReplicas follows the StatefulSet of its current revision; a
        change of any of its StatefulSets moves a rollout in progress on."""
        sts = dict(body)
        pool_name = (sts["metadata"].get("labels") or {}).get(POOL_LABEL)
        key = (str(sts["metadata"].get("namespace")), str(pool_name))
        sts_key = (key[0], str(sts["metadata"].get("name")))
        if event.get("type") == "DELETED":
            state.sts_replicas.pop(sts_key, None)
        else:
            replicas = (sts.get("spec") or {}).get("replicas")
            if isinstance(replicas, int) and state.sts_replicas.get(sts_key) != replicas:
                state.sts_replicas[sts_key] = replicas
                state.pool_changed()
        pool = state.with_rollout(state.pools.get(key) or {})
        revision = revision_of(str(pool_name), sts)
        if revision is not None and in_rollout(pool.get("status") or {}):
            await pool_step(key)
            return
        status = pool.get("status") or {}
        if revision is None or revision.build != status.get("currentBuild"):
            return
        if event.get("type") == "DELETED":
            state.sts_status.pop(key, None)
            return
        state.sts_status[key] = {**(sts.get("status") or {}), "_adopted": revision.adopted}
        await follow_statefulset(key)

    async def follow_statefulset(key: tuple[str, str]) -> None:
        """Level-based: write the pool's readiness whenever it differs from the last known
        status of its current revision's StatefulSet (whichever of the two changed last)."""
        pool = state.pools.get(key)
        sts_status = state.sts_status.get(key)
        if pool is None or sts_status is None:
            return
        spec = pool.get("spec") or {}
        try:
            parsed = parse_worker_pool(spec)
        except SpecError:
            return
        status = state.with_rollout(pool).get("status") or {}
        generation = pool["metadata"].get("generation")
        replicas = state.sts_replicas.get(
            (key[0], autoscaler.current_statefulset(state.with_rollout(pool))))
        full = workerpools.readiness(key[1], parsed,
                                     {"spec": {"replicas": replicas}, "status": sts_status},
                                     generation, parsed.tags,
                                     spec.get("autoscaling") is not None,
                                     status.get("currentBuild"),
                                     bool(sts_status.get("_adopted")))
        ready_condition = full.pop("_ready")
        if not differs(pool.get("status") or {}, {
                k: full[k] for k in ("readyReplicas", "ready", "replicas", "selector")}):
            return
        full["conditions"] = cond.merge_conditions(status.get("conditions"), [ready_condition])
        meta = pool["metadata"]
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{meta['namespace']}/workerpools/{meta['name']}"
        try:
            await state.kube.patch_status(path, full)
            pool.setdefault("status", {}).update(full)
            state.remember(key, full)
        except ApiError as error:
            if error.status == 404:
                state.forget_pool(key)  # deleted while no watch told us
                return
            log.warning("could not update WorkerPool %s status: %s", meta["name"], error)

    return registry


async def _database_down(state: OperatorState, raw: Mapping[str, Any], patch: kopf.Patch,
                         result: dict[str, str], error: Exception) -> NoReturn:
    """A reconcile that could not reach the database: the condition and Event, then kopf
    retries it."""
    outcome = orchestrations.database_down(raw.get("status") or {}, error,
                                           raw["metadata"].get("generation"))
    _status_patch(patch, raw.get("status"), outcome.status)
    await _post(state, raw, outcome.events)
    result["result"] = outcome.result
    raise kopf.TemporaryError(str(error), delay=RETRY_DELAY_S) from error


async def _post(state: OperatorState, body: Mapping[str, Any],
                events: list[tuple[str, str, str]]) -> None:
    for type_, reason, message in events:
        await state.kube.post_event(body, type_, reason, message)
