"""Paths and sample bodies for the strict server's tests."""

from __future__ import annotations

import copy
from typing import Any

GROUP = "duraflow.io/v1alpha1"


def cr_path(plural: str, namespace: str = "ns1", name: str | None = None, sub: str = "") -> str:
    path = f"/apis/{GROUP}/namespaces/{namespace}/{plural}"
    if name:
        path += f"/{name}"
    return f"{path}/{sub}" if sub else path


def core_path(plural: str, namespace: str = "ns1", name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


def apps_path(plural: str, namespace: str = "ns1", name: str | None = None,
              sub: str = "") -> str:
    path = f"/apis/apps/v1/namespaces/{namespace}/{plural}"
    if name:
        path += f"/{name}"
    return f"{path}/{sub}" if sub else path


def orchestration(name: str = "o1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": GROUP, "kind": "Orchestration", "metadata": {"name": name},
            "spec": {"orchestration": "Hello", **spec}}


POOL_SPEC: dict[str, Any] = {"image": "duraflow/duraflow:0.1.0", "app": "app:register",
                             "databaseSecretRef": {"name": "db", "key": "url"}}


def pool(name: str = "workers", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": GROUP, "kind": "WorkerPool", "metadata": {"name": name},
            "spec": {**copy.deepcopy(POOL_SPEC), **spec}}


def statefulset(name: str = "web", **container: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
            "spec": {"replicas": 1, "serviceName": name, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "main", "image": "busybox:1.36", **container}]}}}}
