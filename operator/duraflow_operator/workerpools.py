"""WorkerPool reconcile: keep the StatefulSet, headless Service and PDB as the spec says,
and report the pool's readiness and what the worker registry says of its pods.

Level-based: each child is read, created when missing and merge-patched when it drifted from
the desired manifest, so re-running after a crash (or someone's ``kubectl edit``) converges.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from duraflow import WorkerInfo
from duraflow_operator import conditions as cond
from duraflow_operator import manifests
from duraflow_operator.kube import ApiError, KubeApi
from duraflow_operator.spec import SpecError, WorkerPoolSpec, check_pool_name, parse_worker_pool

log = logging.getLogger("duraflow.operator.workerpools")


def child_paths(namespace: str, name: str) -> dict[str, str]:
    return {
        "StatefulSet": f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{name}",
        "Service": f"/api/v1/namespaces/{namespace}/services/{name}",
        "PodDisruptionBudget":
            f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{name}",
    }


async def ensure(kube: KubeApi, path: str, desired: Mapping[str, Any]) -> tuple[str, Any]:
    """Create or patch one child; returns (what was done, the object as the server has it)."""
    try:
        actual = await kube.request("GET", path)
    except ApiError as error:
        if error.status != 404:
            raise
        collection = path.rsplit("/", 1)[0]
        created = await kube.request("POST", collection, desired)
        return "created", created
    if manifests.drifted(actual, desired) or manifests.owned_drift(actual, desired):
        patched = await kube.patch(path, manifests.child_patch(actual, desired))
        return "updated", patched
    return "unchanged", actual


def readiness(spec: WorkerPoolSpec | None, sts: Mapping[str, Any] | None,
              generation: int | None, tags: Sequence[str]) -> dict[str, Any]:
    """Status fields that follow the StatefulSet."""
    desired = spec.replicas if spec is not None else 0
    sts_status = (sts or {}).get("status") or {}
    ready = int(sts_status.get("readyReplicas") or 0)
    all_ready = ready >= desired
    reason = "AllReplicasReady" if all_ready else "ReplicasNotReady"
    return {
        "replicas": desired,
        "readyReplicas": ready,
        "ready": f"{ready}/{desired}",
        "tags": ",".join(tags) if tags else "(untagged)",
        "observedGeneration": generation,
        "_ready": cond.condition(cond.READY, all_ready, reason,
                                 f"{ready} of {desired} worker pods ready", generation),
    }


Events = list[tuple[str, str, str]]  # (type, reason, message)


async def reconcile(kube: KubeApi, body: Mapping[str, Any]) -> tuple[dict[str, Any], Events]:
    """Returns the status patch and the Events to post."""
    meta = body["metadata"]
    generation = meta.get("generation")
    status: Mapping[str, Any] = body.get("status") or {}
    try:
        check_pool_name(str(meta["name"]))
        spec = parse_worker_pool(body.get("spec"))
    except SpecError as error:
        previous = cond.find(status.get("conditions"), cond.ACCEPTED) or {}
        rejected: Events = [] if (previous.get("reason") == error.reason
                                  and previous.get("observedGeneration") == generation) else [
            ("Warning", error.reason, error.message)]
        accepted = cond.condition(cond.ACCEPTED, False, error.reason, error.message, generation)
        return {"observedGeneration": generation,
                "conditions": cond.merge_conditions(status.get("conditions"), [accepted])}, rejected
    paths = child_paths(meta["namespace"], meta["name"])
    events: Events = []
    children = {
        "StatefulSet": manifests.stateful_set(body, spec),
        "Service": manifests.service(body),
        "PodDisruptionBudget": manifests.disruption_budget(body, spec),
    }
    sts: Any = None
    for kind, desired in children.items():
        done, obj = await ensure(kube, paths[kind], desired)
        if kind == "StatefulSet":
            sts = obj
        if done != "unchanged":
            events.append(("Normal", f"{kind}{done.capitalize()}", f"{kind} {meta['name']} {done}"))
    fields = readiness(spec, sts, generation, spec.tags)
    ready = fields.pop("_ready")
    accepted = cond.condition(cond.ACCEPTED, True, "Reconciled",
                              "StatefulSet, Service and PodDisruptionBudget are in sync",
                              generation)
    fields["conditions"] = cond.merge_conditions(status.get("conditions"), [accepted, ready])
    return fields, events


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
