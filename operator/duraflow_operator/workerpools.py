"""WorkerPool reconcile: keep the StatefulSet, headless Service and PDB as the spec says,
and report the pool's readiness and what the worker registry says of its pods.

Level-based: each child is read, created when missing and merge-patched when it drifted from
the desired manifest, so re-running after a crash (or someone's ``kubectl edit``) converges.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from duraflow import AsyncClient, BuildInfo, ProviderError, WorkerInfo
from duraflow_operator import conditions as cond
from duraflow_operator import manifests, revisions
from duraflow_operator.autoscaling import parse_autoscaling
from duraflow_operator.kube import ApiError, KubeApi
from duraflow_operator.settings import GROUP
from duraflow_operator.spec import SpecError, WorkerPoolSpec, check_pool_name, parse_worker_pool
from duraflow_operator.state import OperatorState

log = logging.getLogger("duraflow.operator.workerpools")


def child_paths(namespace: str, name: str) -> dict[str, str]:
    return {
        "StatefulSet": f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}",
        "Service": f"/api/v1/namespaces/{namespace}/services/{name}",
        "PodDisruptionBudget":
            f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{name}",
    }


class ChildRefused(Exception):
    """A child the pool cannot have as it is: the API server refused a request for it (a
    4xx such as 422 Invalid or 403 Forbidden), or another controller owns an object of its
    name. Sending the same again cannot succeed; a changed spec or RBAC can."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _controller(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller"):
            return ref
    return None


def _adoptable(actual: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """A child is taken over only when no controller owns it, or when its controller is a
    WorkerPool of the same name (the pool was deleted with its children orphaned, or
    re-created before the garbage collector got to them)."""
    owner = _controller(actual)
    if owner is None:
        return True
    mine = desired["metadata"]["ownerReferences"][0]
    return bool(owner.get("uid") == mine["uid"]
                or (owner.get("kind") == mine["kind"] and owner.get("name") == mine["name"]
                    and str(owner.get("apiVersion", "")).startswith(f"{GROUP}/")))


async def ensure(kube: KubeApi, path: str, desired: Mapping[str, Any],
                 keep_replicas: bool = False) -> tuple[str, Any]:
    """Create or patch one child; returns (what was done, the object as the server has it).
    Raises ``ChildRefused`` for what retrying unchanged cannot fix, ``ApiError`` else.
    ``keep_replicas``: an existing child keeps its ``spec.replicas`` (the autoscaler's)."""
    kind, name = desired["kind"], f"{desired['metadata']['namespace']}/{path.rsplit('/', 1)[1]}"
    step = "reading"
    try:
        try:
            actual = await kube.request("GET", path)
        except ApiError as error:
            if error.status != 404:
                raise
            step = "creating"
            created = await kube.request("POST", path.rsplit("/", 1)[0], desired)
            return "created", created
        if keep_replicas and isinstance((actual.get("spec") or {}).get("replicas"), int):
            desired = {**desired, "spec": {**desired["spec"],
                                           "replicas": actual["spec"]["replicas"]}}
        if not _adoptable(actual, desired):
            owner = _controller(actual) or {}
            raise ChildRefused("ChildConflict", (
                f"{kind} {name} exists and is controlled by {owner.get('kind')} "
                f"{owner.get('name')}; the WorkerPool does not take it over (rename the pool, "
                f"or delete the {kind})"))
        if manifests.drifted(actual, desired) or manifests.owned_drift(actual, desired):
            step = "updating"
            patched = await kube.patch(path, manifests.child_patch(actual, desired))
            return "updated", patched
        return "unchanged", actual
    except ApiError as error:
        if not error.rejected:
            raise
        raise ChildRefused(error.reason, f"{step} {kind} {name}: HTTP {error.status} "
                                         f"{error.reason}: {error.message}") from error


def readiness(pool: str, spec: WorkerPoolSpec | None, sts: Mapping[str, Any] | None,
              generation: int | None, tags: Sequence[str],
              autoscaled: bool = False, build: str | None = None,
              adopted: bool = False) -> dict[str, Any]:
    """Status fields that follow the StatefulSet of the pool's current revision (``build``;
    ``adopted``: the StatefulSet ``<pool>`` of a pool made before revisions), whose replicas
    an autoscaled pool wants."""
    desired = spec.replicas if spec is not None else 0
    sts_replicas = ((sts or {}).get("spec") or {}).get("replicas")
    if autoscaled and isinstance(sts_replicas, int):
        desired = sts_replicas
    sts_status = (sts or {}).get("status") or {}
    ready = int(sts_status.get("readyReplicas") or 0)
    all_ready = ready >= desired
    reason = "AllReplicasReady" if all_ready else "ReplicasNotReady"
    return {
        # The scale subresource's status: the pods that exist (a HorizontalPodAutoscaler
        # and `kubectl get --subresource=scale` read it), and the selector of those pods.
        "replicas": int(sts_status.get("replicas") or 0),
        "selector": manifests.pod_selector(pool, None if adopted else build),
        "readyReplicas": ready,
        "ready": f"{ready}/{desired}",
        "tags": ",".join(tags) if tags else "(untagged)",
        "observedGeneration": generation,
        "_ready": cond.condition(cond.READY, all_ready, reason,
                                 f"{ready} of {desired} worker pods ready", generation),
    }


Events = list[tuple[str, str, str]]  # (type, reason, message)


@dataclass(slots=True)
class PoolOutcome:
    """What one reconcile wants written and announced."""

    status: dict[str, Any]
    events: Events = field(default_factory=list)
    #: Why the reconcile must run again (a child was refused), None when it need not.
    retry: str | None = None


def _not_accepted(status: Mapping[str, Any], generation: int | None, reason: str,
                  message: str) -> tuple[dict[str, Any], Events]:
    """Accepted=False, and a Warning Event unless the same reason was already reported for
    this generation (retries must not flood the namespace with Events)."""
    previous = cond.find(status.get("conditions"), cond.ACCEPTED) or {}
    repeated = (previous.get("status") == "False" and previous.get("reason") == reason
                and previous.get("observedGeneration") == generation)
    accepted = cond.condition(cond.ACCEPTED, False, reason, message, generation)
    fields = {"observedGeneration": generation,
              "conditions": cond.merge_conditions(status.get("conditions"), [accepted])}
    return fields, [] if repeated else [("Warning", reason, message)]


async def list_statefulsets(kube: KubeApi, namespace: str, pool: str) -> list[Any]:
    answer = await kube.request(
        "GET", f"/apis/apps/v1/namespaces/{namespace}/statefulsets",
        params={"labelSelector": f"{manifests.POOL_LABEL}={pool}"})
    return list((answer or {}).get("items") or [])


async def _builds(client: AsyncClient) -> dict[str, BuildInfo] | None:
    try:
        return {b.build_id: b for b in await client.list_builds()}
    except (ProviderError, OSError) as error:
        log.warning("builds unreadable (database unreachable?): %s", error)
        return None


def _told_build(sts: Mapping[str, Any], build: str) -> dict[str, Any]:
    """The patch that gives an adopted StatefulSet's pods their build (they restart once,
    on the same image and app): ``DURAFLOW_BUILD_ID``, ``--no-auto-promote``, the label."""
    template = sts["spec"]["template"]
    containers = [dict(c) for c in template["spec"]["containers"]]
    worker = containers[0]
    env = [e for e in worker.get("env") or [] if e.get("name") != "DURAFLOW_BUILD_ID"]
    worker["env"] = [*env, {"name": "DURAFLOW_BUILD_ID", "value": build}]
    args = list(worker.get("args") or ["worker"])
    if manifests.NO_AUTO_PROMOTE not in args:
        args.append(manifests.NO_AUTO_PROMOTE)
    worker["args"] = args
    return {"spec": {"template": {"metadata": {"labels": {manifests.BUILD_LABEL: build}},
                                  "spec": {"containers": containers}}}}


async def rollout(state: OperatorState, body: Mapping[str, Any], spec: WorkerPoolSpec,
                  events: Events, autoscaled_from: int | None = None,
                  ) -> tuple[dict[str, Any], Any]:
    """One step of the pool's rollout (``revisions.plan``, carried out in order); returns the
    status fields and the StatefulSet of the current revision. ``autoscaled_from``: the pool
    is autoscaled, a new revision starts with that many replicas and the autoscaler sizes
    it afterwards. Raises ``ChildRefused`` and ``ApiError`` as ``ensure`` does."""
    meta = body["metadata"]
    namespace, pool = str(meta["namespace"]), str(meta["name"])
    kube, client = state.kube, state.client
    sets = {s["metadata"]["name"]: s for s in await list_statefulsets(kube, namespace, pool)}
    found = [r for s in sets.values() if (r := revisions.revision_of(pool, s)) is not None]
    builds = await _builds(client)
    if builds:
        state.note_builds(True)
    plan = revisions.plan(body, spec, found, builds, state.workers, time.time(),
                          autoscaled=autoscaled_from is not None)
    base = f"/apis/apps/v1/namespaces/{namespace}/statefulsets"
    try:
        for build in plan.adopt:
            pinned = await client.adopt_unpinned(build)
            if pinned:
                log.info("pool %s/%s: %d executions of build-less workers pinned to build %s",
                         namespace, pool, pinned, build)
    except (ProviderError, OSError) as error:  # the pins come first: the next step retries
        log.warning("pool %s/%s: could not pin executions to build %s: %s", namespace, pool,
                    plan.adopt, error)
        return await _unpromoted(plan, body, spec, found, builds, sets, state, events)
    # Recorded once pinned: an adoption whose pins failed is an adoption again next time.
    for name, build in plan.record.items():
        await kube.patch(f"{base}/{name}", {"metadata": {"annotations": {
            manifests.BUILD_ANNOTATION: build}}})
    for name, build in plan.tell_build.items():
        sets[name] = await kube.patch(f"{base}/{name}", _told_build(sets[name], build))
    desired = plan.desired
    name = desired["metadata"]["name"]
    if autoscaled_from is not None:  # created at the minimum; the autoscaler owns replicas
        desired["spec"]["replicas"] = autoscaled_from
    done, sets[name] = await ensure(kube, f"{base}/{name}", desired,
                                    keep_replicas=autoscaled_from is not None)
    if done != "unchanged":
        events.append(("Normal", f"StatefulSet{done.capitalize()}", f"StatefulSet {name} {done}"))
    if plan.promote is not None:
        try:
            await client.set_current_build(plan.promote)
        except (ProviderError, OSError) as error:  # the next step promotes it
            log.warning("pool %s/%s: could not promote build %s: %s", namespace, pool,
                        plan.promote, error)
            return await _unpromoted(plan, body, spec, found, builds, sets, state, events)
    for name, replicas in plan.scale.items():
        sets[name] = await kube.patch(f"{base}/{name}", {"spec": {"replicas": replicas}})
    for name in plan.delete:
        try:
            await kube.request("DELETE", f"{base}/{name}")
        except ApiError as error:
            if error.status != 404:
                raise
        sets.pop(name, None)
    events.extend(plan.events)
    return plan.status, _current_sts(plan, found, sets)


def _current_sts(plan: revisions.Plan, found: Sequence[revisions.Revision],
                 sets: Mapping[str, Any]) -> Any:
    current = plan.status["currentBuild"]
    return next((sets[r.name] for r in found if r.build == current and r.name in sets),
                sets.get(plan.desired["metadata"]["name"]))


async def _unpromoted(plan: revisions.Plan, body: Mapping[str, Any], spec: WorkerPoolSpec,
                      found: Sequence[revisions.Revision], builds: Any, sets: Mapping[str, Any],
                      state: OperatorState, events: Events) -> tuple[dict[str, Any], Any]:
    """The status of a step whose promotion failed: as if the store had been unreadable
    (nothing promoted, nothing deleted), so the next step tries again."""
    again = revisions.plan(body, spec, found, None, state.workers, time.time(),
                           autoscaled=plan.autoscaled)
    events.extend(e for e in again.events if e[1] == "RevisionAdopted")
    return again.status, _current_sts(again, found, sets)


async def reconcile(state: OperatorState, body: Mapping[str, Any]) -> PoolOutcome:
    """The status patch and the Events to post; ``ApiError`` for what may pass by itself
    (a conflict, a 5xx after the client's retries)."""
    kube = state.kube
    meta = body["metadata"]
    generation = meta.get("generation")
    status: Mapping[str, Any] = body.get("status") or {}
    try:
        check_pool_name(str(meta["name"]))
        spec = parse_worker_pool(body.get("spec"))
        scaling = parse_autoscaling(body.get("spec"))
    except SpecError as error:
        return PoolOutcome(*_not_accepted(status, generation, error.reason, error.message))
    paths = child_paths(meta["namespace"], meta["name"])
    events: Events = []
    children = {
        "Service": manifests.service(body),
        "PodDisruptionBudget": manifests.disruption_budget(body, spec),
    }
    scaling_replicas = None if scaling is None else scaling.min_replicas
    try:
        fields, sts = await rollout(state, body, spec, events, scaling_replicas)
        for kind, desired in children.items():
            done, _ = await ensure(kube, paths[kind], desired)
            if done != "unchanged":
                events.append(("Normal", f"{kind}{done.capitalize()}",
                               f"{kind} {meta['name']} {done}"))
    except ChildRefused as refused:
        fields, warnings = _not_accepted(status, generation, refused.reason, refused.message)
        return PoolOutcome(fields, events + warnings, retry=refused.message)
    rollout_conditions = fields.pop("_conditions")
    current = fields["currentBuild"]
    adopted = bool(sts) and sts["metadata"]["name"] == meta["name"]
    fields.update(readiness(str(meta["name"]), spec, sts, generation, spec.tags,
                            scaling is not None, current or spec.build, adopted))
    ready = fields.pop("_ready")
    accepted = cond.condition(cond.ACCEPTED, True, "Reconciled",
                              "StatefulSets, Service and PodDisruptionBudget are in sync",
                              generation)
    fields["conditions"] = cond.merge_conditions(status.get("conditions"),
                                                 [accepted, ready, *rollout_conditions])
    return PoolOutcome(fields, events)


def pool_worker(pool: str, worker: WorkerInfo) -> bool:
    """Whether a worker is a pod of the pool: ``<pool>-<build>-<n>`` of a revision (its
    build is the worker's), or ``<pool>-<n>`` of a pool made before revisions."""
    rest = worker.worker_node_id.removeprefix(f"{pool}-")
    if rest == worker.worker_node_id:
        return False
    if worker.build_id is not None and rest.startswith(f"{worker.build_id}-"):
        rest = rest[len(worker.build_id) + 1:]
    return rest.isdigit()


def registry_status(
    pool: str, spec: Mapping[str, Any], workers: Sequence[WorkerInfo],
    backlog: Mapping[str | None, int],
) -> dict[str, Any]:
    """What the worker registry says of the pool's pods (pod name = worker_node_id)."""
    mine = [w for w in workers if w.alive and pool_worker(pool, w)]
    tags = [t for t in spec.get("tags") or [] if isinstance(t, str)]
    untagged = not tags or bool(spec.get("includeUntagged"))
    waiting = sum(backlog.get(tag, 0) for tag in tags) + (backlog.get(None, 0) if untagged else 0)
    return {
        "liveWorkers": len(mine),
        "orchestrations": sorted({name for w in mine for name in w.orchestrations}),
        "sessionsHeld": sum(w.sessions_held for w in mine),
        "backlog": waiting,
    }
