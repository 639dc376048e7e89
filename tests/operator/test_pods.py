"""The kubelet stand-in (``tests/operator/pods.py``): a StatefulSet's replicas become real
worker processes with the pod template's environment, Ready Pods and the controller's status;
scale-down stops the highest ordinal, a deleted StatefulSet stops them all."""

from __future__ import annotations

from typing import Any

import pytest

from duraflow import AsyncClient, PostgresProvider
from tests.kubeapi.fixtures import StrictCluster

from .conftest import NS, eventually
from .k8s import Kubectl
from .pods import Kubelet

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
STS = f"/apis/apps/v1/namespaces/{NS}/statefulsets"


def _statefulset(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    env = [{"name": "DURAFLOW_WORKER_NODE_ID",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
           {"name": "DURAFLOW_DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
           {"name": "DURAFLOW_APP", "value": "tests.operator.app:register"},
           {"name": "DURAFLOW_BUILD_ID", "value": "b1"},
           {"name": "DURAFLOW_TAGS", "value": "gpu"}]
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": name,
                     "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "worker", "image": "duraflow:test",
                          "args": ["worker", "--no-auto-promote"], "env": env}]}}}}


async def test_statefulset_replicas_run_as_worker_processes(
    cluster: StrictCluster, postgres_url: str, schema: str
) -> None:
    kubectl = Kubectl(cluster)
    provider = await PostgresProvider.connect_async(postgres_url, schema)
    client = AsyncClient(provider)

    async def live() -> dict[str, tuple[str | None, tuple[str, ...]]]:
        return {w.worker_node_id: (w.build_id, w.tags)
                for w in await client.list_workers() if w.alive}

    try:
        async with Kubelet(cluster, postgres_url, schema) as kubelet:
            await kubectl.create(STS, _statefulset("pods", 2))
            sts = lambda: kubectl.obj("apps/v1/statefulsets", "pods")  # noqa: E731
            await eventually(lambda: sts()["status"]["readyReplicas"] == 2, timeout=60)
            assert sts()["status"]["replicas"] == 2
            assert sts()["status"]["observedGeneration"] == sts()["metadata"]["generation"]
            for ordinal in (0, 1):
                pod = kubectl.obj("v1/pods", f"pods-{ordinal}")
                assert {"type": "Ready", "status": "True"} in pod["status"]["conditions"]
                owner = pod["metadata"]["ownerReferences"][0]
                assert (owner["kind"], owner["name"]) == ("StatefulSet", "pods")
            workers = await live()
            assert workers == {"pods-0": ("b1", ("gpu",)), "pods-1": ("b1", ("gpu",))}
            builds = {b.build_id: b.state for b in await client.list_builds()}
            assert builds == {"b1": "pending"}  # the template's --no-auto-promote

            first = kubelet.pid("pods-0")
            await kubectl.merge_patch(f"{STS}/pods", {"spec": {"replicas": 1}})
            await eventually(lambda: sts()["status"]["replicas"] == 1, timeout=30)
            assert not kubectl.exists("v1/pods", "pods-1")
            assert kubelet.running("pods") == ["pods-0"] and kubelet.pid("pods-0") == first
            # SIGTERM: the worker left the registry itself (no heartbeat timeout).
            assert set(await live()) == {"pods-0"}

            await kubectl.delete(f"{STS}/pods")
            await eventually(lambda: not kubelet.running("pods"), timeout=30)
            assert sorted(kubelet.starts) == ["pods-0", "pods-1"]  # (Parallel) nothing restarted
    finally:
        await provider.close()
