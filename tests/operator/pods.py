"""A kubelet (and StatefulSet controller) stand-in for the operator tests: real worker
processes for the pods of the StatefulSets in the test API server.

The strict test API server stores StatefulSets and nothing runs them. ``Kubelet`` does what
the StatefulSet controller and the kubelet would, enough for tests that need the workers a
pool's pods would be:

- it watches the StatefulSets of one namespace (the server's own watch queue, plus a resync
  every ``resync_s``: level-based, so a dropped event or an interrupted watch costs nothing);
- for each replica ordinal it runs a real ``duraflow worker`` process with the pod template's
  arguments and environment (``DURAFLOW_BUILD_ID``, tags, app, ``--no-auto-promote``...),
  the pod name as worker node id (the downward API's ``metadata.name``), and the test's
  database URL and schema in place of the Secret and the pool's schema;
- it creates the Pod objects (owned by their StatefulSet, labelled as the controller labels
  them) with a Ready status once the worker logs that it is ready, and keeps the
  StatefulSet's status (``replicas``, ``readyReplicas``, ``updatedReplicas``,
  ``observedGeneration``) as the controller does;
- on scale-down it stops the highest ordinals first with SIGTERM (the worker's graceful
  hand-over: running work is released, sessions are given up) and deletes their Pods; a
  changed pod template restarts the pods one at a time, highest ordinal first (the
  RollingUpdate strategy); a deleted StatefulSet stops all its pods; a worker process that
  exits by itself is started again (the kubelet's restart).

Writes go through the admin client, so they are validated and watched like any other.
``starts`` records every process start by pod name: a test can tell a pod that kept running
from one that was restarted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.kubeapi.fixtures import StrictCluster
from tests.kubeapi.store import Watcher

from .conftest import NS, spawn_duraflow, stop_worker

log = logging.getLogger("tests.operator.pods")
STATEFULSETS = "apps/v1/statefulsets"


def template_hash(sts: Mapping[str, Any]) -> str:
    """The pod template's revision (the controller's ``controller-revision-hash`` suffix)."""
    template = json.dumps((sts.get("spec") or {}).get("template") or {}, sort_keys=True)
    return hashlib.sha256(template.encode()).hexdigest()[:10]


@dataclass
class Pod:
    name: str
    statefulset: str
    revision: str
    process: subprocess.Popen[str]


class Kubelet:
    """Runs the pods of ``namespace``'s StatefulSets as worker processes (see the module)."""

    def __init__(self, cluster: StrictCluster, database_url: str, schema: str,
                 namespace: str = NS, resync_s: float = 0.5,
                 extra_env: Mapping[str, str] | None = None) -> None:
        self.cluster = cluster
        self.server = cluster.server
        self.database_url = database_url
        self.schema = schema
        self.namespace = namespace
        self.resync_s = resync_s
        #: Environment every worker gets last (e.g. a short heartbeat interval).
        self.extra_env = dict(extra_env or {})
        self.pods: dict[str, Pod] = {}
        #: Worker processes being stopped (popped from ``pods`` already).
        self._stopping: set[subprocess.Popen[str]] = set()
        #: Every process start, by pod name, in order.
        self.starts: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._watcher: Watcher | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Kubelet:
        self._watcher = Watcher(STATEFULSETS, lambda obj: (obj.get("metadata") or {})
                                .get("namespace") == self.namespace)
        self.server.store.subscribe(self._watcher)
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        task = self._task
        # Python 3.11's wait_for can swallow a cancel that lands as its inner wait completes
        # (the loop in _run then goes on): cancel until the task is done.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        if self._watcher is not None:
            self.server.store.unsubscribe(self._watcher)
        # Pods whose stop was cut short by the cancel are stopped too: a worker left running
        # would take the next test's work.
        processes = [p.process for p in self.pods.values()] + list(self._stopping)
        await asyncio.gather(*(asyncio.to_thread(stop_worker, p) for p in processes))
        self.pods.clear()
        self._stopping.clear()

    def pid(self, pod: str) -> int | None:
        running = self.pods.get(pod)
        return running.process.pid if running is not None else None

    def running(self, statefulset: str) -> list[str]:
        """The pods of ``statefulset`` whose worker runs, by ordinal."""
        return sorted((p.name for p in self.pods.values()
                       if p.statefulset == statefulset and p.process.poll() is None),
                      key=lambda n: int(n.rsplit("-", 1)[1]))

    async def _run(self) -> None:
        assert self._watcher is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._watcher.queue.get(), self.resync_s)
            while not self._watcher.queue.empty():  # one sync for a burst of events
                self._watcher.queue.get_nowait()
            try:
                await self.sync()
            except Exception:  # a test's kubelet must not die silently: log and go on
                log.exception("kubelet sync failed")

    # -- the controller's and the kubelet's work ---------------------------------------

    async def sync(self) -> None:
        sets = {s["metadata"]["name"]: s for s in self.server.store.items(STATEFULSETS,
                                                                          self.namespace)}
        gone = [p for p in self.pods.values() if p.statefulset not in sets]
        await asyncio.gather(*(self._stop(p) for p in gone))
        for sts in sets.values():
            if (sts["metadata"].get("deletionTimestamp")) is None:
                await self._sync_set(sts)

    async def _sync_set(self, sts: dict[str, Any]) -> None:
        name = sts["metadata"]["name"]
        replicas = int((sts.get("spec") or {}).get("replicas") or 0)
        revision = template_hash(sts)
        mine = {p.name: p for p in self.pods.values() if p.statefulset == name}
        # Scale down: the highest ordinals first, gracefully, all at once.
        extra = [p for n, p in mine.items() if int(n.rsplit("-", 1)[1]) >= replicas]
        await asyncio.gather(*(self._stop(p) for p in extra))
        # Missing or exited pods start together (podManagementPolicy: Parallel).
        wanted = [f"{name}-{i}" for i in range(replicas)]
        absent = [n for n in wanted if n not in mine or mine[n].process.poll() is not None]
        await asyncio.gather(*(self._start(sts, n, revision) for n in absent))
        await self._report(sts, revision)
        # A changed template: one pod at a time, highest ordinal first (RollingUpdate).
        for pod_name in reversed(wanted):
            pod = self.pods.get(pod_name)
            if pod is not None and pod.revision != revision:
                await self._stop(pod)
                await self._start(sts, pod_name, revision)
                await self._report(sts, revision)
                return  # the next sync goes on with the next one

    def _env(self, sts: Mapping[str, Any], pod_name: str) -> dict[str, str]:
        container = sts["spec"]["template"]["spec"]["containers"][0]
        env: dict[str, str] = {}
        for item in container.get("env") or []:
            value = self._value(item, pod_name)
            if value is not None:
                env[item["name"]] = value
        env.update({"DURAFLOW_DATABASE_URL": self.database_url, "DURAFLOW_SCHEMA": self.schema,
                    "DURAFLOW_METRICS_PORT": "0"})
        env.setdefault("DURAFLOW_GRACE_MS", "2000")
        env.update(self.extra_env)
        return env

    def _value(self, item: Mapping[str, Any], pod_name: str) -> str | None:
        if "value" in item:
            return str(item["value"])
        source = item.get("valueFrom") or {}
        field = (source.get("fieldRef") or {}).get("fieldPath")
        if field == "metadata.name":
            return pod_name
        if field == "metadata.namespace":
            return self.namespace
        ref = source.get("secretKeyRef")
        if ref:
            secret = self.server.store.get("v1/secrets", self.namespace, ref["name"]) or {}
            data = (secret.get("data") or {}).get(ref["key"])
            return base64.b64decode(data).decode() if data else None
        return None

    async def _start(self, sts: Mapping[str, Any], pod_name: str, revision: str) -> None:
        args = sts["spec"]["template"]["spec"]["containers"][0].get("args") or ["worker"]
        env = self._env(sts, pod_name)
        process = await asyncio.to_thread(spawn_duraflow, list(args), env, pod_name)
        name = sts["metadata"]["name"]
        self.pods[pod_name] = Pod(pod_name, name, revision, process)
        self.starts.append(pod_name)
        template = sts["spec"]["template"]
        labels = {**(template.get("metadata") or {}).get("labels", {}),
                  "controller-revision-hash": f"{name}-{revision}",
                  "statefulset.kubernetes.io/pod-name": pod_name}
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": pod_name, "namespace": self.namespace, "labels": labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": name,
                                 "uid": sts["metadata"]["uid"], "controller": True,
                                 "blockOwnerDeletion": True}]},
            "spec": {**template["spec"], "hostname": pod_name,
                     "subdomain": sts["spec"].get("serviceName")}}
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        admin = self.cluster.admin
        await admin.delete(f"{path}/{pod_name}")  # a restarted pod is a new Pod object
        created = await admin.create(path, body)
        assert created.status == 201, f"creating Pod {pod_name}: {created.status} {created.body}"
        await admin.patch(f"{path}/{pod_name}/status", {"status": {
            "phase": "Running", "conditions": [{"type": "Ready", "status": "True"},
                                               {"type": "ContainersReady", "status": "True"}]}})

    async def _stop(self, pod: Pod) -> None:
        self.pods.pop(pod.name, None)
        self._stopping.add(pod.process)
        await asyncio.to_thread(stop_worker, pod.process)
        self._stopping.discard(pod.process)
        await self.cluster.admin.delete(f"/api/v1/namespaces/{self.namespace}/pods/{pod.name}")

    async def _report(self, sts: Mapping[str, Any], revision: str) -> None:
        """The StatefulSet's status as its controller keeps it."""
        name = sts["metadata"]["name"]
        pods = [p for p in self.pods.values() if p.statefulset == name]
        ready = [p for p in pods if p.process.poll() is None]
        status = {"observedGeneration": sts["metadata"].get("generation"),
                  "replicas": len(pods), "readyReplicas": len(ready),
                  "availableReplicas": len(ready), "currentReplicas": len(pods),
                  "updatedReplicas": sum(1 for p in pods if p.revision == revision),
                  "updateRevision": f"{name}-{revision}"}
        if all(((sts.get("status") or {}).get(k) == v) for k, v in status.items()):
            return
        answer = await self.cluster.admin.patch(
            f"/apis/apps/v1/namespaces/{self.namespace}/statefulsets/{name}/status",
            {"status": status})
        if answer.status not in (200, 404):  # 404: deleted meanwhile
            raise AssertionError(f"StatefulSet {name} status: {answer.status} {answer.body}")
