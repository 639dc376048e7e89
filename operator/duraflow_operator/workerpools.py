"""WorkerPool reconcile: keep the StatefulSet, headless Service and PDB as the spec says,
and report the pool's readiness and what the worker registry says of its pods.

Level-based: each child is read, created when missing and merge-patched when it drifted from
the desired manifest, so re-running after a crash (or someone's ``kubectl edit``) converges.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from duraflow import WorkerInfo
from duraflow_operator import conditions as cond
from duraflow_operator import manifests
from duraflow_operator.autoscaling import parse_autoscaling
from duraflow_operator.kube import ApiError, KubeApi
from duraflow_operator.settings import GROUP
from duraflow_operator.spec import SpecError, WorkerPoolSpec, check_pool_name, parse_worker_pool

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
              autoscaled: bool = False) -> dict[str, Any]:
    """Status fields that follow the StatefulSet (whose replicas an autoscaled pool wants)."""
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
        "selector": manifests.pod_selector(pool),
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


async def reconcile(kube: KubeApi, body: Mapping[str, Any]) -> PoolOutcome:
    """The status patch and the Events to post; ``ApiError`` for what may pass by itself
    (a conflict, a 5xx after the client's retries)."""
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
        "StatefulSet": manifests.stateful_set(body, spec),
        "Service": manifests.service(body),
        "PodDisruptionBudget": manifests.disruption_budget(body, spec),
    }
    sts: Any = None
    if scaling is not None:  # created at the minimum; the autoscaler owns replicas after
        children["StatefulSet"]["spec"]["replicas"] = scaling.min_replicas
    for kind, desired in children.items():
        try:
            done, obj = await ensure(kube, paths[kind], desired,
                                     keep_replicas=scaling is not None)
        except ChildRefused as refused:
            fields, warnings = _not_accepted(status, generation, refused.reason,
                                             refused.message)
            return PoolOutcome(fields, events + warnings, retry=refused.message)
        if kind == "StatefulSet":
            sts = obj
        if done != "unchanged":
            events.append(("Normal", f"{kind}{done.capitalize()}", f"{kind} {meta['name']} {done}"))
    fields = readiness(str(meta["name"]), spec, sts, generation, spec.tags,
                       autoscaled=scaling is not None)
    ready = fields.pop("_ready")
    accepted = cond.condition(cond.ACCEPTED, True, "Reconciled",
                              "StatefulSet, Service and PodDisruptionBudget are in sync",
                              generation)
    fields["conditions"] = cond.merge_conditions(status.get("conditions"), [accepted, ready])
    return PoolOutcome(fields, events)


_ORDINAL = re.compile(r"^(?P<pool>.+)-(?P<ordinal>\d+)$")


def registry_status(
    pool: str, spec: Mapping[str, Any], workers: Sequence[WorkerInfo],
    backlog: Mapping[str | None, int],
) -> dict[str, Any]:
    """What the worker registry says of the pool's pods (pod name = worker_node_id)."""
    mine = [w for w in workers if w.alive and (m := _ORDINAL.match(w.worker_node_id))
            and m.group("pool") == pool]
    tags = [t for t in spec.get("tags") or [] if isinstance(t, str)]
    untagged = not tags or bool(spec.get("includeUntagged"))
    waiting = sum(backlog.get(tag, 0) for tag in tags) + (backlog.get(None, 0) if untagged else 0)
    return {
        "liveWorkers": len(mine),
        "orchestrations": sorted({name for w in mine for name in w.orchestrations}),
        "sessionsHeld": sum(w.sessions_held for w in mine),
        "backlog": waiting,
    }
