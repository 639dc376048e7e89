"""The strict test API server: a kmock handler that serves resources the way kube-apiserver
does, for tests that must fail where a real cluster would.

Request path (``_serve``): authenticate (bearer token -> user; no token = the test's admin,
allowed everything) -> authorise (RBAC, 403) -> decode the body (400) -> the kind's pipeline
(custom resources: prune, default, status isolation, schema, CEL; built-ins: OpenAPI
decoding, defaults, validation; 422) -> admission (namespace exists, 404;
OwnerReferencesPermissionEnforcement, 403) -> optimistic concurrency (409) -> storage, watch
event, garbage collection. Every request is recorded (``records``) with its user, User-Agent
and ``fieldManager``; successful writes are counted per object (``writes``), a write
that changes nothing included (it is still a request the client should not have made).

It stays a kmock ``KubernetesScaffold``: it runs under ``kmock.Server`` (or the kmock pytest
plugin), discovery is kmock's (corrected for Go clients), requests are kept for kmock's
assertion DSL, and a kmock reaction set by a test (``server['patch', kmock.name('x')][:1] <<
500``) answers *instead of* the server, without the write reaching storage.
"""

from __future__ import annotations

import base64
import collections
import copy
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal import rendering

from tests.kubeapi import builtins, errors, rbac, schema
from tests.kubeapi.admission import Admission
from tests.kubeapi.errors import APIError
from tests.kubeapi.gc import GarbageCollector
from tests.kubeapi.resources import BUILTINS, ResourceType, from_crd
from tests.kubeapi.scale import ScaleSubresource
from tests.kubeapi.selectors import field_matcher, label_matcher, name_from_field_selector
from tests.kubeapi.store import Store
from tests.kubeapi.watch import Watching
from tests.kubeapi.wire import (
    Ctx,
    Record,
    error_response,
    escape,
    json_response,
    list_item,
    parse_route,
    public,
    verb_of,
)
from tests.kubeapi.writes import Writes

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
KUBE_VERSION = {"major": "1", "minor": "37", "gitVersion": "v1.37.0-kubeapi-test",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.25.0", "compiler": "gc", "platform": "linux/amd64"}


@attrs.define(kw_only=True)
class KubeAPIServer(Writes, Admission, ScaleSubresource, Watching, kmock.KubernetesScaffold):
    """See the module docstring. Configure with ``crds``, ``rbac_objects`` and ``tokens``
    (token -> user name), or later with ``install_crd``/``load_rbac``/``add_token``."""

    crds: list[dict[str, Any]] = attrs.field(factory=list)
    rbac_objects: list[dict[str, Any]] | None = None
    tokens: dict[str, str] = attrs.field(factory=dict)
    namespaces: tuple[str, ...] = ()
    watch_window: int = 100_000
    owner_references_enforcement: bool = True
    field_validation: str = "Warn"  # when a request does not say (kube-apiserver: Warn)
    gc_delay: float = 0.0
    keep_requests: bool = True  # kmock's own history (its DSL); False for benchmarks

    store: Store = attrs.field(init=False)
    types: dict[tuple[str, str, str], ResourceType] = attrs.field(init=False, factory=dict)
    authorizer: rbac.Authorizer | None = attrs.field(init=False, default=None)
    records: list[Record] = attrs.field(init=False, factory=list)
    #: Every authorisation decision for a token-bearing request, the admission plugin's
    #: included (what the user needed, whether it was granted).
    authorizations: list[tuple[rbac.Attributes, bool]] = attrs.field(init=False,
                                                                     factory=list)
    writes: collections.Counter[tuple[str, str | None, str]] = attrs.field(
        init=False, factory=collections.Counter)
    gc: GarbageCollector = attrs.field(init=False)
    _uids: dict[str, tuple[str, str | None, str]] = attrs.field(init=False, factory=dict)
    _by_key: dict[str, ResourceType] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.store = Store(self.watch_window)
        self.gc = GarbageCollector(self, self.gc_delay)
        for rtype in BUILTINS:
            self._serve_type(copy.copy(rtype))
        for crd in self.crds:
            self.install_crd(crd)
        if self.rbac_objects is not None:
            self.load_rbac(self.rbac_objects)
        for namespace in DEFAULT_NAMESPACES + tuple(self.namespaces):
            self.ensure_namespace(namespace)

    # -- configuration -------------------------------------------------------------------

    def _serve_type(self, rtype: ResourceType) -> None:
        self.types[(rtype.group, rtype.version, rtype.plural)] = rtype
        self._by_key[rtype.key] = rtype
        subresources = {s for s, on in (("status", rtype.status), ("scale", rtype.scale)) if on}
        self.resources[rtype.key] = kmock.ResourceInfo(
            kind=rtype.kind, singular=rtype.singular, shortnames=set(rtype.short_names),
            categories=set(rtype.categories), namespaced=rtype.namespaced,
            verbs=set(rtype.verbs), subresources=subresources)

    def install_crd(self, crd: dict[str, Any] | str) -> None:
        """Serve a CRD (a dict or YAML text); replacing one re-defaults stored objects on
        read, as kube-apiserver defaults what it reads from etcd."""
        if isinstance(crd, str):
            crd = yaml.safe_load(crd)
        assert isinstance(crd, dict)
        for rtype in from_crd(crd):
            old = self.types.get((rtype.group, rtype.version, rtype.plural))
            rtype.epoch = old.epoch + 1 if old is not None else 0
            self._serve_type(rtype)

    def load_rbac(self, objects: Iterable[dict[str, Any]]) -> None:
        """Authorise token-bearing requests against these RBAC objects (others ignored)."""
        self.authorizer = rbac.Authorizer(
            o for o in objects if isinstance(o, dict) and o.get("kind") in
            {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})

    def add_token(self, token: str, user: str) -> None:
        self.tokens[token] = user

    def ensure_namespace(self, name: str) -> None:
        rtype = self._by_key["v1/namespaces"]
        if self.store.get(rtype.key, None, name) is None:
            obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace",
                                   "metadata": {"name": name}}
            self._stamp_new(obj, rtype, None)
            builtins.apply_defaults("Namespace", obj)
            self._put(rtype, obj, "ADDED")

    # -- assertions ----------------------------------------------------------------------

    @property
    def objects(self) -> ObjectsView:
        """``objects['duraflow.io/v1alpha1/orchestrations', 'ns1', 'x']`` (as kmock's)."""
        return ObjectsView(self)

    def requests_of(self, user: str | None = None, **match: Any) -> list[Record]:
        """Records by user name (``"admin"`` for no token) and any other Record field."""
        out = []
        for record in self.records:
            if user is not None and (record.user or "admin") != user:
                continue
            if all(getattr(record, k) == v for k, v in match.items()):
                out.append(record)
        return out

    def writes_to(self, resource: str, namespace: str | None, name: str) -> int:
        rtype = self._resolve_key(resource)
        return self.writes[(rtype.key, namespace, name)]

    def compact(self) -> None:
        """Forget all watch history: a watch from an older version gets 410 Gone."""
        self.store.compact()

    def interrupt_watches(self) -> None:
        """End every open watch stream now, as a restarting API server or a proxy's idle
        timeout does; clients reconnect from the last version they saw."""
        self.store.close_watches()

    def _resolve_key(self, resource: Any) -> ResourceType:
        if isinstance(resource, ResourceType):
            return resource
        if isinstance(resource, str) and resource in self._by_key:
            return self._by_key[resource]
        parsed = kmock.resource(resource) if isinstance(resource, str) else resource
        for rtype in self.types.values():
            if parsed.plural == rtype.plural and (parsed.group in (None, rtype.group)) and \
                    (parsed.version in (None, rtype.version)):
                return rtype
        raise KeyError(resource)

    # -- HTTP entry ----------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        await raw_request.read()
        try:
            request = await rendering.Request._parse(raw_request, id=len(self._requests))
        except Exception:  # kmock cannot parse e.g. /api/v1/namespaces: keep the HTTP facts
            request = rendering.Request(
                id=len(self._requests), raw_request=raw_request, url=raw_request.url,
                method=raw_request.method, params=dict(raw_request.query),
                headers=dict(raw_request.headers), body=await raw_request.read())
        self._requests.append(request)  # kmock's matching looks requests up in its history
        try:
            return await self._handle(request)
        except Exception as exc:  # a bug here: answer 500 and let a strict kmock fail the test
            if self._errors:
                self._errors[-1].append(exc)
            return await self._render_error(exc)
        finally:
            if not self.keep_requests:  # forget it once served (bounded memory, O(1) matching)
                for index in range(len(self._requests) - 1, -1, -1):
                    if self._requests[index] is request:
                        del self._requests[index]
                        break

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        route = parse_route(request.url.path)
        try:
            user = self._authenticate(request)
        except APIError as exc:
            refused = error_response(exc)
            if route is not None and route.plural is not None:  # a 401 is recorded too
                self._finish(self._record(request, route, None), refused, [])
            return refused
        if route is None or route.plural is None:
            return await super()._handle(request)
        rtype = self.types.get((route.group, route.version, route.plural))
        record = self._record(request, route, user)
        verb = record.verb
        reaction = await self._user_reaction(request)
        if reaction is not None:
            record.code = reaction.status
            return reaction
        if rtype is None:
            return self._finish(record, error_response(APIError(
                404, "NotFound", "the server could not find the requested resource",
                {})), [])
        ctx = Ctx(request, rtype, route, verb, user, record)
        try:
            response = await self._serve(ctx)
        except APIError as exc:
            response = error_response(exc)
        return self._finish(record, response, ctx.warnings)

    def _record(self, request: Any, route: Any, user: rbac.User | None) -> Record:
        record = Record(
            method=str(request.method.value if hasattr(request.method, "value")
                       else request.method),
            verb=verb_of(request.method, route, request.params), path=request.url.path,
            group=route.group, resource=route.plural, subresource=route.subresource,
            namespace=route.namespace, name=route.name,
            user=user.name if user is not None else None,
            user_agent=request.headers.get("User-Agent", ""),
            field_manager=request.params.get("fieldManager"),
            content_type=request.headers.get("Content-Type", "").split(";")[0].strip(),
            params=dict(request.params), token=_bearer(request))
        self.records.append(record)
        return record

    def _finish(self, record: Record, response: aiohttp.web.StreamResponse,
                warnings: list[str]) -> aiohttp.web.StreamResponse:
        record.code = response.status
        record.warnings = warnings
        if not response.prepared:
            for warning in warnings:
                response.headers.add("Warning", f'299 - "{escape(warning)}"')
        return response

    async def _user_reaction(self, request: Any) -> aiohttp.web.StreamResponse | None:
        """A kmock reaction a test set up (not kmock's own fallbacks) answers first."""
        for payload in self._payloads:
            if any(p == -math.inf for p in payload.priorities):
                continue
            if payload._disabled.is_set() or request not in payload._source:
                continue
            try:
                return await payload(request)
            except rendering.ReactionMismatchError:
                payload._disabled.set()
            except NotImplementedError:
                pass
        return None

    def _authenticate(self, request: Any) -> rbac.User | None:
        if not request.headers.get("Authorization", ""):
            return None
        token = _bearer(request)
        if token is None or token not in self.tokens:
            raise errors.unauthorized()
        return rbac.User.parse(self.tokens[token])

    def revoke_token(self, token: str) -> None:
        """The token is no longer accepted (it expired): a request with it is a 401."""
        self.tokens.pop(token, None)

    def _authorize(self, ctx: Ctx, verb: str | None = None, name: str | None = None) -> None:
        if ctx.user is None or self.authorizer is None:
            return
        attrs_ = rbac.Attributes(ctx.user, verb or ctx.verb, ctx.rtype.group, ctx.rtype.plural,
                                 ctx.route.subresource, ctx.route.namespace or "",
                                 name if name is not None else (ctx.route.name or ""))
        if not self.allowed(attrs_):
            raise errors.forbidden_error(ctx.rtype.group, ctx.rtype.plural, attrs_.name,
                                         attrs_.denial())

    def allowed(self, attributes: rbac.Attributes) -> bool:
        """RBAC's decision, recorded in ``authorizations``."""
        assert self.authorizer is not None
        decision = self.authorizer.allowed(attributes)
        self.authorizations.append((attributes, decision))
        return decision

    # -- discovery -----------------------------------------------------------------------

    async def _serve_server_version(self, request: Any) -> Any:
        return dict(KUBE_VERSION)

    async def _serve_version(self, request: Any) -> Any:
        route = parse_route(request.url.path)
        assert route is not None
        served = [t for t in self.types.values()
                  if t.group == route.group and t.version == route.version]
        if not served:
            raise kmock.KubernetesResourceNotFoundError()
        resources: list[dict[str, Any]] = []
        for t in sorted(served, key=lambda t: t.plural):
            resources.append({"name": t.plural, "singularName": t.singular,
                              "namespaced": t.namespaced, "kind": t.kind,
                              "verbs": sorted(t.verbs), "shortNames": list(t.short_names),
                              "categories": list(t.categories)})
            if t.status:
                resources.append({"name": f"{t.plural}/status", "singularName": "",
                                  "namespaced": t.namespaced, "kind": t.kind,
                                  "verbs": ["get", "patch", "update"]})
            if t.scale:
                resources.append({"name": f"{t.plural}/scale", "singularName": "",
                                  "namespaced": t.namespaced, "group": "autoscaling",
                                  "version": "v1", "kind": "Scale",
                                  "verbs": ["get", "patch", "update"]})
        group_version = f"{route.group}/{route.version}" if route.group else route.version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                "resources": resources}

    # -- dispatch ------------------------------------------------------------------------

    async def _serve(self, ctx: Ctx) -> aiohttp.web.StreamResponse:
        rtype, route = ctx.rtype, ctx.route
        if rtype.namespaced is False and route.namespace is not None:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        sub = route.subresource
        if sub and not ((sub == "status" and rtype.status) or (sub == "scale" and rtype.scale)):
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        if ctx.verb not in rtype.verbs and ctx.verb not in ("watch", "deletecollection"):
            raise errors.method_not_allowed("the server does not allow this method on the "
                                            "requested resource")
        if ctx.verb == "watch":
            return await self._watch(ctx)
        if ctx.verb == "list":
            return json_response(self._list(ctx))
        if ctx.verb == "create":
            if rtype.namespaced and not route.namespace:
                raise APIError(404, "NotFound",
                               "the server could not find the requested resource")
            return json_response(self._create(ctx), 201)
        if ctx.verb == "get":
            return json_response(self._get(ctx))
        if ctx.verb == "update":
            return json_response(self._update(ctx))
        if ctx.verb == "patch":
            return json_response(self._patch(ctx))
        if ctx.verb == "delete":
            return json_response(self._delete(ctx))
        if ctx.verb == "deletecollection":
            return json_response(self._delete_collection(ctx))
        raise errors.method_not_allowed("the server does not allow this method on the "
                                        "requested resource")

    # -- reads ---------------------------------------------------------------------------

    def _current(self, ctx: Ctx, name: str | None = None) -> dict[str, Any]:
        name = name or ctx.route.name or ""
        obj = self.store.get(ctx.rtype.key, ctx.namespace, name)
        if obj is None:
            raise errors.not_found(ctx.rtype.group, ctx.rtype.plural, name)
        return self._read_defaulted(ctx.rtype, obj)

    def _read_defaulted(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Objects stored under an older CRD get the current defaults when read."""
        if rtype.schema is None or not rtype.defaults or \
                obj.get("__epoch__", 0) == rtype.epoch:
            return obj
        fresh = copy.deepcopy(obj)
        schema.apply_defaults(fresh, rtype.schema)
        return fresh

    def _get(self, ctx: Ctx) -> dict[str, Any]:
        self._authorize(ctx)
        obj = self._current(ctx)
        if ctx.route.subresource == "scale":
            return self._scale_of(ctx.rtype, obj)
        return public(obj)

    def _matchers(self, ctx: Ctx) -> Any:
        label = ctx.params.get("labelSelector")
        fields = ctx.params.get("fieldSelector")
        by_label = label_matcher(label) if label else None
        by_field = field_matcher(fields, ctx.rtype.field_selectors) if fields else None

        def accepts(obj: Mapping[str, Any]) -> bool:
            if ctx.namespace is not None and obj["metadata"].get("namespace") != ctx.namespace:
                return False
            return (by_label is None or by_label(obj)) and (by_field is None or by_field(obj))

        return accepts

    def _list(self, ctx: Ctx) -> dict[str, Any]:
        self._authorize(ctx, name=name_from_field_selector(ctx.params.get("fieldSelector")))
        accepts = self._matchers(ctx)
        items = [self._read_defaulted(ctx.rtype, o)
                 for o in self.store.items(ctx.rtype.key, ctx.namespace) if accepts(o)]
        meta: dict[str, Any] = {"resourceVersion": str(self.store.revision)}
        limit = int(ctx.params.get("limit") or 0)
        start = 0
        token = ctx.params.get("continue")
        if token:
            try:
                start = int(json.loads(base64.b64decode(token))["start"])
            except (ValueError, KeyError, TypeError):
                raise errors.bad_request("continue key is not valid") from None
        if limit > 0:
            page = items[start:start + limit]
            if start + limit < len(items):
                meta["continue"] = base64.b64encode(
                    json.dumps({"start": start + limit}).encode()).decode()
                meta["remainingItemCount"] = len(items) - start - limit
            items = page
        return {"apiVersion": ctx.rtype.api_version, "kind": f"{ctx.rtype.kind}List",
                "metadata": meta, "items": [list_item(ctx.rtype, o) for o in items]}


    async def __aexit__(self, *args: Any) -> None:
        self.gc.close()
        self.store.close_watches()
        await super().__aexit__(*args)


# -- helpers -------------------------------------------------------------------------------


def _bearer(request: Any) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


class StoredObject(dict[str, Any]):
    """A stored object as kmock's ``objects`` hands it out (``.deleted``, ``.raw``), so
    tests written for kmock read it unchanged. Deleted objects are simply gone."""

    deleted = False

    @property
    def raw(self) -> dict[str, Any]:
        return dict(self)


class ObjectsView(Mapping[Any, dict[str, Any]]):
    """Read access to stored objects keyed as kmock's ``objects`` (resource, ns, name)."""

    def __init__(self, server: KubeAPIServer) -> None:
        self._server = server

    def _key(self, key: Any) -> tuple[str, str | None, str]:
        resource, namespace, name = key
        rtype = self._server._resolve_key(resource)
        return rtype.key, namespace if rtype.namespaced else None, name

    def __getitem__(self, key: Any) -> dict[str, Any]:
        resource, namespace, name = self._key(key)
        obj = self._server.store.get(resource, namespace, name)
        if obj is None:
            raise KeyError(key)
        return StoredObject(public(obj))

    def __contains__(self, key: object) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[tuple[str, str | None, str]]:
        for resource, obj in self._server.store.all_items():
            yield resource, obj["metadata"].get("namespace"), obj["metadata"]["name"]

    def __len__(self) -> int:
        return sum(1 for _ in self)
