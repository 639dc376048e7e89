"""A kmock 0.8 emulator that kopf can drive (test support; pin kmock==0.8).

Stock kmock assigns no resourceVersion, so kopf's finalizer JSON-patch (which tests the
resourceVersion) fails forever. This subclass, from the team's k8s-testing research,
stamps resourceVersion/uid/generation/creationTimestamp, honours optimistic concurrency
(409 on a stale version), answers 201 on create, serves lists with kind/apiVersion, and
maps PUT (replace, used for Leases) onto a full-object update with a version check, and
stores a StatefulSet's container resources in canonical form and keeps its pod template's
deprecated ``serviceAccount`` equal to ``serviceAccountName``, as kube-apiserver does. It
overrides kmock private hooks, hence the exact version pin.
"""

from __future__ import annotations

import datetime
import itertools
import json
import uuid
from typing import Any

import attrs
import kmock
from duraflow_operator.quantity import canonical


def register_crd(emulator: Any, crd: dict[str, Any]) -> None:
    """Discovery for a CRD (kmock does not derive it)."""
    spec, names = crd["spec"], crd["spec"]["names"]
    for version in spec["versions"]:
        if version.get("served", True):
            emulator.resources[f"{spec['group']}/{version['name']}/{names['plural']}"] = (
                kmock.ResourceInfo(
                    kind=names["kind"], singular=names.get("singular") or names["kind"].lower(),
                    shortnames=names.get("shortNames", []),
                    namespaced=spec["scope"] == "Namespaced",
                    subresources=set(version.get("subresources") or {}),
                    verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
                ))


@attrs.define
class Refusal:
    """An answer the API server gives instead of serving a request (and storing nothing)."""

    method: str
    plural: str
    status: int
    reason: str
    message: str
    times: int
    subresource: str | None = None
    content_type: str | None = None


@attrs.define(kw_only=True)
class RVEmulator(kmock.KubernetesEmulator):  # type: ignore[misc]
    _rv: Any = attrs.field(factory=lambda: itertools.count(1), init=False)
    _refusals: list[Refusal] = attrs.field(factory=list, init=False)

    def refuse(self, method: str, plural: str, status: int, reason: str, message: str,
               times: int = 1, *, subresource: str | None = None,
               content_type: str | None = None) -> None:
        """Refuse the next ``times`` requests ``method`` on ``plural`` (and ``subresource``,
        and with that Content-Type if given) as kube-apiserver does (a Status body with
        reason and message), without storing anything. (kmock's own reactions answer, but
        still store the object.)"""
        self._refusals.append(Refusal(method.upper(), plural, status, reason, message, times,
                                      subresource, content_type))

    def _swap(self, old: Any, new: Any) -> Any:
        self._requests[next(i for i, r in enumerate(self._requests) if r is old)] = new
        return new

    async def _handle(self, request: Any) -> Any:
        for refusal in self._refusals:
            if (refusal.times > 0 and request.resource is not None
                    and request.method.value == refusal.method
                    and request.subresource == refusal.subresource
                    and request.resource.plural == refusal.plural
                    and (refusal.content_type is None or request.headers.get(
                        "Content-Type", "").startswith(refusal.content_type))):
                refusal.times -= 1
                raise kmock.KubernetesError(status=refusal.status, reason=refusal.reason,
                                            message=refusal.message)
        key = (request.resource, request.namespace, request.name)
        if request.method == kmock.method.PUT and request.name and request.resource is not None:
            return await self._replace(request, key)
        data = request.data
        if (request.resource is not None and request.resource.plural == "statefulsets"
                and isinstance(data, dict)):
            _canonical_resources(data)
        if (request.action == kmock.action.CREATE and isinstance(data, dict)
                and request.resource is not None):
            meta = data.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("generation", 1)
            meta.setdefault("creationTimestamp", _now())
            meta["resourceVersion"] = str(next(self._rv))
            if request.namespace:
                meta.setdefault("namespace", request.namespace)
        elif (request.action == kmock.action.UPDATE and request.name
              and request.resource is not None):
            cur = self.objects[key] if key in self.objects else None  # noqa: SIM401
            cur_rv = (cur.get("metadata", {}).get("resourceVersion")
                      if cur is not None and not cur.deleted else None)
            new_rv = str(next(self._rv))
            if isinstance(data, list):
                if any(op.get("op") == "test" and op.get("path") == "/metadata/resourceVersion"
                       and op.get("value") != cur_rv for op in data):
                    raise kmock.KubernetesError(status=409, reason="Conflict",
                                                message="resourceVersion mismatch")
                data.append({"op": "add", "path": "/metadata/resourceVersion", "value": new_rv})
            elif isinstance(data, dict):
                want = (data.get("metadata") or {}).get("resourceVersion")
                if want is not None and want != cur_rv:
                    raise kmock.KubernetesError(status=409, reason="Conflict",
                                                message="resourceVersion mismatch")
                if request.subresource is None and "spec" in data and cur is not None:
                    data.setdefault("metadata", {})["generation"] = (
                        cur.get("metadata", {}).get("generation", 1) + 1)
                data.setdefault("metadata", {})["resourceVersion"] = new_rv
        response = await super()._handle(request)
        if (request.resource is not None and request.resource.plural == "statefulsets"
                and request.action in (kmock.action.CREATE, kmock.action.UPDATE)):
            self._service_account_alias(request, data)
        if (request.action == kmock.action.CREATE and response.status == 200
                and not response.prepared):
            response.set_status(201)
        return response

    def _service_account_alias(self, request: Any, data: Any) -> None:
        """The v1 PodSpec conversion: ``serviceAccount`` (deprecated) mirrors
        ``serviceAccountName``, and fills it in when it is empty."""
        name = request.name or ((data or {}).get("metadata") or {}).get("name")
        key = (request.resource, request.namespace, name)
        try:
            obj = self.objects[key]
        except KeyError:
            return
        if obj.deleted:
            return
        pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        account = pod.get("serviceAccountName") or pod.get("serviceAccount")
        if (pod.get("serviceAccountName"), pod.get("serviceAccount")) != (account, account):
            obj.patch({"spec": {"template": {"spec": {"serviceAccountName": account,
                                                      "serviceAccount": account}}}})

    async def _replace(self, request: Any, key: Any) -> Any:
        """PUT: replace an existing object if the body names its current resourceVersion."""
        from aiohttp import web

        if key not in self.objects or self.objects[key].deleted:
            return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"},
                                     status=404)
        cur = self.objects[key]
        body = request.data if isinstance(request.data, dict) else {}
        want = (body.get("metadata") or {}).get("resourceVersion")
        if want != cur.get("metadata", {}).get("resourceVersion"):
            return web.json_response({"kind": "Status", "code": 409, "reason": "Conflict"},
                                     status=409)
        body.setdefault("metadata", {})["resourceVersion"] = str(next(self._rv))
        cur.patch(body)
        return web.json_response(cur.raw)

    async def _serve_list(self, request: Any) -> Any:
        payload, res = await super()._serve_list(request), request.resource
        info = self.resources[res] if res in self.resources else None  # noqa: SIM401
        kind = info.kind if info is not None and info.kind else res.plural.capitalize()
        api_version = f"{res.group}/{res.version}" if res.group else res.version
        return {"apiVersion": api_version, "kind": f"{kind}List", **payload}

    async def _render_error(self, exc: Any) -> Any:
        response = await super()._render_error(exc)
        if response.status in (404, 409):
            body = json.loads(response.body)
            body["reason"] = {404: "NotFound", 409: "Conflict"}[response.status]
            body.pop("details", None)
            response.body = json.dumps(body).encode()
        return response


def _canonical_resources(sts: dict[str, Any]) -> None:
    """Quantities come back from the API server in canonical form (resource.Quantity)."""
    template = (sts.get("spec") or {}).get("template") or {}
    for container in (template.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") if isinstance(container, dict) else None
        for kind in ("requests", "limits"):
            values = resources.get(kind) if isinstance(resources, dict) else None
            if isinstance(values, dict):
                for name, value in values.items():
                    values[name] = canonical(value)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
