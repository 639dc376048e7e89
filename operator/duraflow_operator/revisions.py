"""WorkerPool revisions: which StatefulSet runs which build, and what a rollout does next
(pure, no I/O: ``workerpools`` reads the cluster and the store and carries the plan out).

A pool's build is ``spec.buildId`` or a hash of its image and app (``WorkerPoolSpec.build``).
Each build the pool runs or still needs is a revision, the StatefulSet ``<pool>-<build>``.
The plan, from what is (the pool's StatefulSets, the store's builds, the worker registry):

1. the revision of the desired build exists, with the spec's pod template and replicas;
2. it becomes current (``set_current_build``) once its pods are ready (``AllAtOnce``) or when
   ``spec.rollout.promote`` names it (``Manual``); the revision that was current drains;
3. a draining revision keeps ``drainingReplicas`` pods while executions are pinned to its
   build, and is deleted once none has been for ``drainGraceSeconds``. Changing the spec
   back to a build whose revision still exists makes it current again (a rollback).

A pool made before revisions (one StatefulSet ``<pool>``, pods without a build id) is adopted
as the revision of the build its pod template defines, without touching its pods. Its pods
pin nothing and take every execution, whatever its build, so before another build may become
current they are told their build (their template gets ``DURAFLOW_BUILD_ID``: they restart
once, on the same code), and the executions they ran are pinned to it
(``AsyncClient.adopt_unpinned``) once none of them is left without a build. Then no
execution old code started can be replayed by new code.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from duraflow import BuildInfo, WorkerInfo
from duraflow_operator import conditions as cond
from duraflow_operator import manifests
from duraflow_operator.spec import WorkerPoolSpec, code_build

CURRENT, PENDING, DRAINING, DRAINED = "Current", "Pending", "Draining", "Drained"
ROLLOUT_COMPLETE = "RolloutComplete"
#: Progressing reasons of the waits that no Kubernetes event ends (pinned executions, the
#: worker registry, the database, the clock): a pool in one of them is looked at every
#: registry tick. A wait for pods ends with a StatefulSet event, a wait for a promotion
#: with a spec edit: those cost nothing while they last.
ADOPTING_PODS, WAITING_FOR_DATABASE, WAITING_FOR_REGISTRATION, DRAINING_REASON = (
    "AdoptingPods", "WaitingForDatabase", "WaitingForRegistration", "Draining")
POLLED = (ADOPTING_PODS, WAITING_FOR_DATABASE, WAITING_FOR_REGISTRATION, DRAINING_REASON)


@dataclass(frozen=True, slots=True)
class Revision:
    """One StatefulSet of a pool, as read from the API server."""

    build: str
    name: str
    #: The StatefulSet ``<pool>`` of a pool made before revisions (no build in its selector).
    adopted: bool
    #: Its pod template sets ``DURAFLOW_BUILD_ID`` (an adopted one: once told its build).
    build_aware: bool
    replicas: int
    ready: int
    #: Every pod runs the current template (the controller has seen it and rolled it out).
    rolled_out: bool
    #: The build annotation is missing: the adoption has not been recorded yet.
    unrecorded: bool


def _container(sts: Mapping[str, Any]) -> Mapping[str, Any]:
    containers = (((sts.get("spec") or {}).get("template") or {}).get("spec") or {}) \
        .get("containers") or [{}]
    first: Mapping[str, Any] = containers[0]
    return first


def _env_value(container: Mapping[str, Any], name: str) -> str | None:
    for item in container.get("env") or []:
        if item.get("name") == name and "value" in item:
            return str(item["value"])
    return None


def revision_of(pool: str, sts: Mapping[str, Any]) -> Revision | None:
    """The revision a StatefulSet of ``pool`` is (None: not one of the pool's)."""
    meta = sts.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(manifests.POOL_LABEL) != pool:
        return None
    annotated = (meta.get("annotations") or {}).get(manifests.BUILD_ANNOTATION)
    container = _container(sts)
    adopted = manifests.BUILD_LABEL not in labels
    if adopted and meta.get("name") != pool:
        return None
    build = labels.get(manifests.BUILD_LABEL) or annotated or code_build(
        str(container.get("image") or ""), _env_value(container, "DURAFLOW_APP") or "")
    status = sts.get("status") or {}
    replicas = int((sts.get("spec") or {}).get("replicas") or 0)
    rolled_out = (status.get("observedGeneration") == meta.get("generation")
                  and int(status.get("updatedReplicas") or 0) >= replicas
                  and int(status.get("replicas") or 0) == replicas)
    return Revision(build=str(build), name=str(meta.get("name")), adopted=adopted,
                    build_aware=_env_value(container, "DURAFLOW_BUILD_ID") is not None,
                    replicas=replicas, ready=int(status.get("readyReplicas") or 0),
                    rolled_out=rolled_out, unrecorded=adopted and annotated is None)


def build_less_pods(pool: str, workers: Sequence[WorkerInfo] | None) -> list[str] | None:
    """Live workers of the adopted StatefulSet's pods (``<pool>-<n>``) that run without a
    build id (None: the registry is unknown)."""
    if workers is None:
        return None
    prefix = f"{pool}-"
    return sorted(w.worker_node_id for w in workers
                  if w.alive and w.build_id is None and w.worker_node_id.startswith(prefix)
                  and w.worker_node_id[len(prefix):].isdigit())


def _iso(now: float) -> str:
    return datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _since(stamp: str | None, now: float) -> float | None:
    if not stamp:
        return None
    try:
        at = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.UTC)
    except ValueError:
        return None
    return now - at.timestamp()


@dataclass(slots=True)
class Plan:
    """What one step of the rollout does, in this order."""

    #: The desired revision's StatefulSet (ensured: created or patched to the spec).
    desired: dict[str, Any]
    autoscaled: bool = False
    #: Adopted StatefulSets whose build is to be recorded (annotation), by name: build.
    record: dict[str, str] = field(default_factory=dict)
    #: Builds whose build-less executions are pinned to them (``adopt_unpinned``).
    adopt: list[str] = field(default_factory=list)
    #: Adopted StatefulSets whose pods are told their build (template patch), name: build.
    tell_build: dict[str, str] = field(default_factory=dict)
    promote: str | None = None
    #: Replicas of the revisions that are not the desired one, by StatefulSet name.
    scale: dict[str, int] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)


def plan(body: Mapping[str, Any], spec: WorkerPoolSpec, revisions: Sequence[Revision],
         builds: Mapping[str, BuildInfo] | None, workers: Sequence[WorkerInfo] | None,
         now: float, autoscaled: bool = False) -> Plan:
    """The next step of the pool's rollout. ``builds`` None: the store is unreadable (nothing
    is promoted or deleted then); ``now``: wall-clock seconds (drain grace stamps);
    ``autoscaled``: the autoscaler, not ``spec.replicas``, sizes the new revision."""
    meta = body["metadata"]
    pool, generation = str(meta["name"]), meta.get("generation")
    status: Mapping[str, Any] = body.get("status") or {}
    previous = {str(r.get("build")): r for r in status.get("revisions") or []
                if isinstance(r, Mapping)}
    desired_build = spec.build
    by_build = {r.build: r for r in revisions}
    adopted = [r for r in revisions if r.adopted]
    current = status.get("currentBuild")
    events: list[tuple[str, str, str]] = []

    # The desired revision: the adopted StatefulSet when it is of the desired build.
    target = by_build.get(desired_build)
    if target is not None and target.adopted:
        desired = manifests.stateful_set(body, spec, desired_build if target.build_aware
                                         else None, adopted=True)
    else:
        desired = manifests.stateful_set(body, spec, desired_build)
    out = Plan(desired=desired, autoscaled=autoscaled)

    for rev in adopted:
        if rev.unrecorded:  # adopted now: its pods are left as they are
            out.record[rev.name] = rev.build
            out.adopt.append(rev.build)
            events.append(("Normal", "RevisionAdopted", (
                f"StatefulSet {rev.name} (made before revisions) is the revision of build "
                f"{rev.build}; its pods keep running. Executions they ran are pinned to "
                f"{rev.build}")))
            if current is None:
                current = rev.build

    # Before another build may become current, adopted pods must know their build: a pod
    # without one takes every execution, whatever its build.
    gate: str | None = None
    for rev in adopted:
        if rev.build == desired_build and current in (None, rev.build):
            continue  # nothing moves: the adopted pods may stay as they are
        if not rev.build_aware:
            out.tell_build[rev.name] = rev.build
            gate = (f"the pods of {rev.name} (made before revisions) restart once with "
                    f"their build {rev.build}")
            continue
        left = build_less_pods(pool, workers)
        if left is None or left or not rev.rolled_out:
            gate = (f"waiting for the pods of {rev.name} to run with their build "
                    f"{rev.build}" + (f" ({', '.join(left)} still without)" if left else ""))
            continue
        out.adopt.append(rev.build)  # what they ran until the last of them restarted

    store_ok = builds is not None
    new = target if target is not None else None
    wanted = (new.replicas if autoscaled else spec.replicas) if new is not None else 0
    ready = new is not None and new.ready >= wanted and (new.rolled_out or new.adopted)
    wants_promotion = desired_build != current
    waiting_for: tuple[str, str] | None = None  # (reason, message)
    if wants_promotion:
        if gate is not None:
            waiting_for = ADOPTING_PODS, gate
        elif spec.rollout.strategy == "Manual" and spec.rollout.promote != desired_build:
            waiting_for = "WaitingForPromotion", (
                f"waiting for spec.rollout.promote: {desired_build} (strategy Manual)")
        elif not ready:
            have = new.ready if new is not None else 0
            waiting_for = "WaitingForPods", (
                f"waiting for the pods of build {desired_build}: {have} of {wanted} ready")
        elif not store_ok:
            waiting_for = WAITING_FOR_DATABASE, "waiting for the database to promote the build"
        elif desired_build not in (builds or {}):
            waiting_for = WAITING_FOR_REGISTRATION, (
                f"waiting for the workers of build {desired_build} to register it")
        else:
            out.promote = desired_build
            events.append(("Normal", "BuildPromoted", (
                f"build {desired_build} is current: new executions start on it"
                + (f"; build {current} drains" if current else ""))))
            if current is not None and current in by_build:
                events.append(("Normal", "RevisionDraining", (
                    f"revision {by_build[current].name} (build {current}) drains: it keeps "
                    f"{spec.rollout.draining_replicas} pod(s) while executions are pinned "
                    "to its build")))
            current = desired_build

    # The other revisions: the one still current keeps its pods until the promotion; the
    # rest drain, and go once nothing has been pinned to them for the grace period.
    entries: list[dict[str, Any]] = []
    draining = 0
    store_current = next((b.build_id for b in (builds or {}).values()
                          if b.state == "current"), None)
    for rev in sorted(revisions, key=lambda r: (r.build != current, r.name)):
        info = (builds or {}).get(rev.build)
        pinned = info.pinned_running if info is not None else 0
        entry: dict[str, Any] = {"build": rev.build, "statefulSet": rev.name,
                                 "replicas": rev.replicas, "readyReplicas": rev.ready,
                                 "pinnedExecutions": pinned}
        if rev.build == current:
            entry["state"] = CURRENT
        elif rev.build == desired_build:
            entry["state"] = PENDING
        else:
            if rev.replicas != spec.rollout.draining_replicas:
                out.scale[rev.name] = spec.rollout.draining_replicas
                entry["replicas"] = spec.rollout.draining_replicas
            was = previous.get(rev.build) or {}
            if not store_ok or pinned > 0 or rev.build == store_current:
                entry["state"] = DRAINING
                draining += 1
                if pinned > 0 and rev.ready == 0 and (was.get("readyReplicas", 1) > 0
                                                      or was.get("state") != DRAINING):
                    events.append(("Warning", "DrainingWithoutWorkers", (
                        f"build {rev.build} has {pinned} pinned execution(s) and revision "
                        f"{rev.name} no ready pod: they wait. Set spec.rollout."
                        "drainingReplicas above 0, or move them (duraflow instances move "
                        "ID --build B)")))
            else:
                entry["state"] = DRAINED
                since = was.get("drainedAt") if was.get("state") == DRAINED else None
                entry["drainedAt"] = since or _iso(now)
                waited = _since(since, now)
                if waited is not None and waited >= spec.rollout.drain_grace_s:
                    out.delete.append(rev.name)
                    events.append(("Normal", "RevisionDeleted", (
                        f"revision {rev.name} deleted: nothing has been pinned to build "
                        f"{rev.build} for {spec.rollout.drain_grace_s}s")))
                    continue
        entries.append(entry)

    complete = (not wants_promotion or out.promote is not None) and all(
        e["state"] == CURRENT for e in entries) and ready
    if complete:
        progressing = cond.condition(cond.PROGRESSING, False, ROLLOUT_COMPLETE,
                                     f"build {current} runs alone", generation)
        done = cond.condition(ROLLOUT_COMPLETE, True, ROLLOUT_COMPLETE,
                              f"every pod runs build {current}", generation)
    else:
        reason, message = _progress(waiting_for, entries, desired_build)
        progressing = cond.condition(cond.PROGRESSING, True, reason, message, generation)
        done = cond.condition(ROLLOUT_COMPLETE, False, reason, message, generation)
    out.status = {"currentBuild": current, "desiredBuild": desired_build,
                  "revisions": entries, "draining": draining, "_conditions": [done, progressing]}
    out.events = events
    return out


def _progress(waiting_for: tuple[str, str] | None, entries: Sequence[Mapping[str, Any]],
              desired: str) -> tuple[str, str]:
    if waiting_for is not None:
        return waiting_for
    others = [e for e in entries if e["state"] in (DRAINING, DRAINED)]
    if others:
        pinned = sum(int(e["pinnedExecutions"]) for e in others)
        names = ", ".join(f"{e['build']} ({e['pinnedExecutions']} pinned)" for e in others)
        return DRAINING_REASON, (f"build {desired} is current; draining: {names}"
                            + ("" if pinned else " (waiting out the drain grace period)"))
    return "WaitingForPods", f"waiting for the pods of build {desired} to be ready"


def in_rollout(status: Mapping[str, Any]) -> bool:
    """Whether a pool's status shows a rollout not finished (or none recorded yet). Not for
    a pool the operator does not accept (its spec, or a refused child): kopf retries that
    one with backoff."""
    accepted = cond.find(status.get("conditions"), cond.ACCEPTED) or {}
    if accepted.get("status") == "False":
        return False
    revisions = status.get("revisions")
    if not isinstance(revisions, list) or len(revisions) != 1:
        return True
    if status.get("currentBuild") != status.get("desiredBuild"):
        return True
    done = cond.find(status.get("conditions"), ROLLOUT_COMPLETE) or {}
    return done.get("status") != "True"


def needs_polling(status: Mapping[str, Any]) -> bool:
    """Whether a pool's rollout waits for something only a poll can see (``POLLED``)."""
    if not in_rollout(status):
        return False
    progressing = cond.find(status.get("conditions"), cond.PROGRESSING) or {}
    return progressing.get("reason") in POLLED or any(
        isinstance(r, Mapping) and r.get("state") in (DRAINING, DRAINED)
        for r in status.get("revisions") or [])
