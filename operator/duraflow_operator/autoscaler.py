"""ONE loop that sizes every autoscaled WorkerPool from the database's demand.

It reads the demand of all pools in one query (``AsyncClient.get_work_demand``), at most once
a second however many pools exist, and sleeps in between on the store's change feed
(``AsyncClient.watch_work``: PostgreSQL LISTEN/NOTIFY), so a pool at zero hears of new work
for its tags at once instead of by a poll per pool. Without pools it reads nothing.

For each pool with ``spec.autoscaling`` it asks ``autoscaling.decide`` for the replicas of
the pool's current StatefulSet and applies them:

- **up**: the ordinals about to be created are undrained first (a pod name drained by an
  earlier scale-down must take work again), then ``replicas`` is raised;
- **down**: exactly the ordinals a StatefulSet removes (the highest) are drained through the
  store; ``replicas`` is lowered only once the store says each of them is idle (its runtime
  took nothing new, finished what ran and released its sessions). If demand returns
  meanwhile they are undrained and stay.

``spec.replicas`` is taken over when autoscaling starts (``status.autoscaledFromReplicas``);
another value written there later means another scaler (an HPA, KEDA, ``kubectl scale``)
drives the pool too, and the autoscaler stands back with ``ScalingActive=False``.

The demand and the replicas of every pool, autoscaled or not, are exported as gauges, for an
HPA or KEDA to scale on when the operator does not (docs/autoscaling.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from duraflow import ProviderError, WorkDemand
from duraflow_operator import autoscaling as rules
from duraflow_operator import conditions as cond
from duraflow_operator.kube import API_ERRORS, ApiError
from duraflow_operator.settings import GROUP, VERSION
from duraflow_operator.spec import SpecError
from duraflow_operator.state import Key, OperatorState
from duraflow_operator.status import differs

log = logging.getLogger("duraflow.operator.autoscaler")

SCALING = "ScalingActive"
#: At most one demand read per this many seconds.
MIN_INTERVAL_S = 1.0
#: Without announcements, the demand is read again after this long (work ending is not
#: announced; a pending scale-down or drain needs a fresh reading).
IDLE_POLL_S = 5.0
ACTIVE_POLL_S = 1.0
#: After an announcement, the pause that lets the rest of its burst arrive.
GATHER_S = 0.1


def current_statefulset(pool: Mapping[str, Any]) -> str:
    """The StatefulSet the autoscaler sizes: the pool's current revision (before the first
    promotion, the revision the spec defines; docs/rollouts.md)."""
    status = pool.get("status") or {}
    current = status.get("currentBuild") or status.get("desiredBuild")
    for revision in status.get("revisions") or []:
        if isinstance(revision, Mapping) and revision.get("build") == current:
            return str(revision.get("statefulSet"))
    name = str(pool["metadata"]["name"])
    return f"{name}-{current}" if current else name


def pod_names(statefulset: str, start: int, stop: int) -> list[str]:
    return [f"{statefulset}-{ordinal}" for ordinal in range(start, stop)]


class Autoscaler:
    def __init__(self, state: OperatorState) -> None:
        self.state = state
        self.memory: dict[Key, rules.ScalerMemory] = {}
        #: The pods of each pool being drained for a scale-down.
        self.draining: dict[Key, list[str]] = {}
        #: Demand reads made (what a test or the benchmark counts).
        self.reads = 0
        self.ticks = 0
        self._busy = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        with self.state.client.watch_work() as feed:
            self.state.pool_changed = feed.push  # a changed spec is looked at at once too
            while True:
                started = loop.time()
                try:
                    await self.tick()
                except API_ERRORS as error:
                    log.warning("autoscaler: %s", error)
                self.ticks += 1
                if await feed.next(ACTIVE_POLL_S if self._busy else IDLE_POLL_S):
                    # A start is announced, then its first turn's activities: read once both
                    # are in rather than once too early and then a second later.
                    await asyncio.sleep(GATHER_S)
                rest = MIN_INTERVAL_S - (loop.time() - started)
                if rest > 0:
                    await asyncio.sleep(rest)

    async def tick(self) -> None:
        state = self.state
        pools = list(state.pools.items())
        if not pools:
            self.memory.clear()
            return
        client = state.client
        try:
            demand = await client.get_work_demand()
            idle = await client.get_drained_workers() if self.draining else {}
        except (ProviderError, OSError) as error:
            log.debug("autoscaler: demand unreadable: %s", error)
            return
        self.reads += 1
        now = asyncio.get_running_loop().time()
        busy = False
        for key, body in pools:
            busy = await self._pool(key, body, demand, idle, now) or busy
        for key in [k for k in self.memory if k not in state.pools]:
            self.memory.pop(key, None)
            self.draining.pop(key, None)
        self._busy = busy

    async def _pool(self, key: Key, body: dict[str, Any], demand: WorkDemand,
                    idle: Mapping[str, bool], now: float) -> bool:
        """Size one pool; whether it waits for something (a delay, a drain)."""
        state = self.state
        spec: Mapping[str, Any] = body.get("spec") or {}
        statefulset = current_statefulset(body)
        current = state.sts_replicas.get((key[0], statefulset))
        work = rules.PoolWork.of(spec)
        pool_demand = work.demand(demand, pod_names(statefulset, 0, current or 0))
        metrics = state.metrics
        metrics.pool_demand.labels(*key).set(pool_demand)
        ready = (state.sts_status.get(key) or {}).get("readyReplicas") or 0
        metrics.pool_replicas.labels(*key, "ready").set(int(ready))
        try:
            scaling = rules.parse_autoscaling(spec)
        except SpecError:
            scaling = None  # the reconcile reports it (Accepted=False)
        status: Mapping[str, Any] = body.get("status") or {}
        generation = body["metadata"].get("generation")
        if scaling is None or current is None:
            if current is not None:
                metrics.pool_replicas.labels(*key, "desired").set(current)
            self.memory.pop(key, None)
            if scaling is None and (status.get("autoscaledFromReplicas") is not None
                                    or cond.find(status.get("conditions"), SCALING)):
                await self._stand_down(key, body, generation)
            return False
        fields: dict[str, Any] = {"demand": pool_demand}
        baseline = status.get("autoscaledFromReplicas")
        if baseline is None:
            baseline = fields["autoscaledFromReplicas"] = spec.get("replicas")
        if spec.get("replicas") != baseline:
            message = (f"spec.replicas changed from {baseline} to {spec.get('replicas')} while "
                       "spec.autoscaling is on: another scaler (an HPA, KEDA, kubectl scale) "
                       "drives this pool too. Remove it and set spec.replicas back to "
                       f"{baseline}, or remove spec.autoscaling")
            previous = cond.find(status.get("conditions"), SCALING) or {}
            repeated = previous.get("reason") == "ExternalScaler"
            fields["conditions"] = cond.merge_conditions(status.get("conditions"), [
                cond.condition(SCALING, False, "ExternalScaler", message, generation)])
            await self._write(key, body, fields,
                              [] if repeated else [("Warning", "ExternalScaler", message)])
            self.memory.pop(key, None)
            return False
        memory = self.memory.get(key)
        if memory is None:  # new, or the operator restarted: no drain of ours is pending
            memory = self.memory[key] = rules.ScalerMemory(now)
            await state.client.undrain_workers(pod_names(statefulset, 0, current))
        decision = rules.decide(scaling, current, pool_demand, memory, now)
        metrics.pool_replicas.labels(*key, "desired").set(decision.desired)
        fields["desiredReplicas"] = decision.desired
        reason, message = decision.reason, decision.message
        events: list[tuple[str, str, str]] = []
        target = decision.replicas
        waiting = decision.replicas != decision.desired
        if target < current:
            going = pod_names(statefulset, target, current)
            if self.draining.get(key) != going:
                stale = [p for p in self.draining.get(key, []) if p not in going]
                if stale:
                    await state.client.undrain_workers(stale)
                await state.client.drain_workers(going)
                self.draining[key] = going
            busy = [p for p in going if not idle.get(p)]
            if busy:
                reason, waiting = "DrainingPods", True
                message = (f"{message}; waiting for {', '.join(busy)} to finish their work "
                           "before removing them")
            else:
                await self._set_replicas(key, statefulset, target)
                self.draining.pop(key, None)
                events.append(("Normal", "ScaledDown",
                               f"{current} -> {target} pods: {decision.message}"))
                fields["lastScaleTime"] = cond.now_iso()
        else:
            pending = self.draining.pop(key, None)
            if pending:
                await state.client.undrain_workers(pending)
            if target > current:
                await state.client.undrain_workers(pod_names(statefulset, current, target))
                await self._set_replicas(key, statefulset, target)
                memory.record_up(now, target - current)
                events.append(("Normal", "ScaledUp",
                               f"{current} -> {target} pods: {decision.message}"))
                fields["lastScaleTime"] = cond.now_iso()
        fields["conditions"] = cond.merge_conditions(status.get("conditions"), [
            cond.condition(SCALING, True, reason, message, generation)])
        await self._write(key, body, fields, events)
        return waiting or bool(self.draining.get(key))

    async def _stand_down(self, key: Key, body: dict[str, Any], generation: Any) -> None:
        """``spec.autoscaling`` was removed: say so, and forget the ``spec.replicas`` it had
        taken over (a later ``autoscaling`` takes over the value of then)."""
        status = body.get("status") or {}
        off = cond.condition(SCALING, False, "AutoscalingOff",
                             "spec.autoscaling is not set: spec.replicas (kubectl scale, an HPA, "
                             "KEDA) sizes the pool", generation)
        self.draining.pop(key, None)
        await self._write(key, body, {
            "conditions": cond.merge_conditions(status.get("conditions"), [off]),
            "desiredReplicas": None, "demand": None, "autoscaledFromReplicas": None}, [])

    async def _set_replicas(self, key: Key, statefulset: str, replicas: int) -> None:
        path = f"/apis/apps/v1/namespaces/{key[0]}/statefulsets/{statefulset}"
        await self.state.kube.patch(path, {"spec": {"replicas": replicas}})
        self.state.sts_replicas[(key[0], statefulset)] = replicas

    async def _write(self, key: Key, body: dict[str, Any], fields: dict[str, Any],
                     events: list[tuple[str, str, str]]) -> None:
        state = self.state
        status = body.get("status") or {}
        if "conditions" in fields and cond.same_ignoring_time(status.get("conditions"),
                                                              fields["conditions"]):
            fields.pop("conditions")
        if differs(status, fields):
            path = f"/apis/{GROUP}/{VERSION}/namespaces/{key[0]}/workerpools/{key[1]}"
            try:
                await state.kube.patch_status(path, fields)
                kept = body.setdefault("status", {})
                for name, value in fields.items():  # as the merge patch did: None removes
                    if value is None:
                        kept.pop(name, None)
                    else:
                        kept[name] = value
            except ApiError as error:
                if error.status == 404:
                    state.forget_pool(key)
                    return
                raise
        for type_, reason, message in events:
            await state.kube.post_event(body, type_, reason, message)
