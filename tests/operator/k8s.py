"""Talking to the emulator like kubectl does (plain HTTP), for the operator tests."""

from __future__ import annotations

from typing import Any

import aiohttp

GROUP_PATH = "/apis/duraflow.io/v1alpha1/namespaces/{ns}/{plural}"
#: Requests of the tests' "kubectl", told apart from the operator's in the emulator's log.
USER_AGENT = "kubectl/test"


def exists(cluster: Any, resource: str, namespace: str | None, name: str) -> bool:
    """Whether the emulator holds the object (deletion pending counts as existing).

    Never ``key in cluster.objects``: kmock 0.8's ``ObjectsArray.__contains__`` compares the
    raw key with its parsed keys, so a string resource is never "in" it (always False).
    """
    try:
        return not cluster.objects[resource, namespace, name].deleted
    except KeyError:
        return False


class Kubectl:
    def __init__(self, cluster: Any, namespace: str = "ns1") -> None:
        self.cluster = cluster
        self.url = str(cluster.url).rstrip("/")
        self.ns = namespace

    async def _call(self, method: str, path: str, body: Any = None,
                    content_type: str = "application/json") -> Any:
        async with aiohttp.ClientSession() as session, session.request(
            method, self.url + path, json=body,
            headers={"Content-Type": content_type, "User-Agent": USER_AGENT},
        ) as response:
            text = await response.text()
            assert response.status < 400, f"{method} {path}: {response.status} {text}"
            return await response.json(content_type=None) if text else None

    def path(self, plural: str, name: str | None = None) -> str:
        base = GROUP_PATH.format(ns=self.ns, plural=plural)
        return base if name is None else f"{base}/{name}"

    async def apply_orchestration(self, name: str, spec: dict[str, Any]) -> Any:
        body = {"apiVersion": "duraflow.io/v1alpha1", "kind": "Orchestration",
                "metadata": {"name": name, "namespace": self.ns}, "spec": spec}
        return await self._call("POST", self.path("orchestrations"), body)

    async def apply_pool(self, name: str, spec: dict[str, Any]) -> Any:
        body = {"apiVersion": "duraflow.io/v1alpha1", "kind": "WorkerPool",
                "metadata": {"name": name, "namespace": self.ns}, "spec": spec}
        return await self._call("POST", self.path("workerpools"), body)

    async def create(self, path: str, body: Any) -> Any:
        return await self._call("POST", path, body)

    async def get(self, path: str) -> Any:
        return await self._call("GET", path)

    async def replace(self, path: str, body: Any) -> Any:
        return await self._call("PUT", path, body)

    async def merge_patch(self, path: str, body: Any) -> Any:
        return await self._call("PATCH", path, body, "application/merge-patch+json")

    async def json_patch(self, path: str, ops: list[dict[str, Any]]) -> Any:
        return await self._call("PATCH", path, ops, "application/json-patch+json")

    async def delete(self, path: str) -> Any:
        return await self._call("DELETE", path)

    def orch(self, name: str) -> Any:
        return self.cluster.objects["duraflow.io/v1alpha1/orchestrations", self.ns, name]

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.orch(name).get("status") or {})

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        for item in self.status(name).get("conditions") or []:
            if item.get("type") == type_:
                return dict(item)
        return {}

    def gone(self, name: str) -> bool:
        return not exists(self.cluster, "duraflow.io/v1alpha1/orchestrations", self.ns, name)

    def events_for(self, name: str) -> list[dict[str, Any]]:
        found = []
        for request in self.cluster:
            data = request.data
            if (request.method == "POST" and isinstance(data, dict)
                    and data.get("kind") == "Event"
                    and (data.get("involvedObject") or {}).get("name") == name):
                found.append(data)
        return found

    def reasons(self, name: str, type_: str | None = None) -> list[str]:
        return [e["reason"] for e in self.events_for(name)
                if type_ is None or e.get("type") == type_]
