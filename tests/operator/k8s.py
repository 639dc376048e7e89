"""The tests' kubectl: the strict test API server's admin client (no token, so allowed
everything and recorded as user ``admin``), and reads of what the server stores and of the
requests the operator made (``tests.kubeapi`` records them with their user)."""

from __future__ import annotations

import copy
from typing import Any

from tests.kubeapi.fixtures import KubeClient, StrictCluster, project_crds
from tests.kubeapi.wire import Record

GROUP_PATH = "/apis/duraflow.io/v1alpha1/namespaces/{ns}/{plural}"
ORCHESTRATIONS = "duraflow.io/v1alpha1/orchestrations"
WORKERPOOLS = "duraflow.io/v1alpha1/workerpools"
WRITES = frozenset({"create", "update", "patch", "delete", "deletecollection"})


def lax_crd(kind: str) -> dict[str, Any]:
    """The CRD of ``kind`` validating nothing: what an older CRD (Helm never upgrades CRDs)
    or an API server without its rules lets through, so what only the operator's own
    checks stand against."""
    crd = copy.deepcopy(next(c for c in project_crds() if c["spec"]["names"]["kind"] == kind))
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["metadata"] = {"type": "object"}
    schema["properties"]["spec"] = {"type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True}
    schema.pop("x-kubernetes-validations", None)
    return crd


class Kubectl:
    def __init__(self, cluster: StrictCluster, namespace: str = "ns1") -> None:
        self.cluster = cluster
        self.server = cluster.server
        self.client: KubeClient = cluster.admin
        self.ns = namespace

    # -- requests as the tests' user ------------------------------------------------------

    async def _ok(self, method: str, path: str, body: Any = None,
                  content_type: str = "application/json") -> Any:
        answer = await self.client.request(method, path, body, content_type=content_type)
        assert answer.status < 400, f"{method} {path}: {answer.status} {answer.body}"
        return answer.body

    def path(self, plural: str, name: str | None = None) -> str:
        base = GROUP_PATH.format(ns=self.ns, plural=plural)
        return base if name is None else f"{base}/{name}"

    async def apply_orchestration(self, name: str, spec: dict[str, Any]) -> Any:
        body = {"apiVersion": "duraflow.io/v1alpha1", "kind": "Orchestration",
                "metadata": {"name": name, "namespace": self.ns}, "spec": spec}
        return await self._ok("POST", self.path("orchestrations"), body)

    async def apply_pool(self, name: str, spec: dict[str, Any]) -> Any:
        body = {"apiVersion": "duraflow.io/v1alpha1", "kind": "WorkerPool",
                "metadata": {"name": name, "namespace": self.ns}, "spec": spec}
        return await self._ok("POST", self.path("workerpools"), body)

    async def create(self, path: str, body: Any) -> Any:
        return await self._ok("POST", path, body)

    async def get(self, path: str) -> Any:
        return await self._ok("GET", path)

    async def replace(self, path: str, body: Any) -> Any:
        return await self._ok("PUT", path, body)

    async def merge_patch(self, path: str, body: Any) -> Any:
        return await self._ok("PATCH", path, body, "application/merge-patch+json")

    async def json_patch(self, path: str, ops: list[dict[str, Any]]) -> Any:
        return await self._ok("PATCH", path, ops, "application/json-patch+json")

    async def delete(self, path: str) -> Any:
        return await self._ok("DELETE", path)

    # -- what the server stores -----------------------------------------------------------

    def obj(self, resource: str, name: str) -> dict[str, Any]:
        """The stored object (``KeyError`` while there is none)."""
        return dict(self.server.objects[resource, self.ns, name])

    def exists(self, resource: str, name: str) -> bool:
        """Stored (a deletion held by a finalizer counts as existing)."""
        return (resource, self.ns, name) in self.server.objects

    def orch(self, name: str) -> dict[str, Any]:
        return self.obj(ORCHESTRATIONS, name)

    def pool(self, name: str) -> dict[str, Any]:
        return self.obj(WORKERPOOLS, name)

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.orch(name).get("status") or {})

    def condition(self, name: str, type_: str, resource: str = ORCHESTRATIONS) -> \
            dict[str, Any]:
        for item in (self.obj(resource, name).get("status") or {}).get("conditions") or []:
            if item.get("type") == type_:
                return dict(item)
        return {}

    def gone(self, name: str) -> bool:
        return not self.exists(ORCHESTRATIONS, name)

    def events_for(self, name: str) -> list[dict[str, Any]]:
        """The Events the server stored about ``name`` (refused ones never are), oldest
        first."""
        events = [e for e in self.server.store.items("v1/events", self.ns)
                  if (e.get("involvedObject") or {}).get("name") == name]
        return sorted(events, key=lambda e: int(e["metadata"]["resourceVersion"]))

    def reasons(self, name: str, type_: str | None = None) -> list[str]:
        return [e["reason"] for e in self.events_for(name)
                if type_ is None or e.get("type") == type_]

    # -- what the operator asked ----------------------------------------------------------

    def mark(self) -> int:
        """A point in the request records to look from."""
        return len(self.server.records)

    def operator_requests(self, since: int = 0) -> list[Record]:
        user = self.cluster.operator_user
        return [r for r in self.server.records[since:] if r.user == user]

    def operator_writes(self, since: int = 0) -> list[Record]:
        return [r for r in self.operator_requests(since) if r.verb in WRITES]
