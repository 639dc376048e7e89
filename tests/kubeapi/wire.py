"""The request and response model of the test API server: routes parsed from URLs, the
per-request context, the record kept for assertions, and the JSON shapes kube-apiserver
answers with (objects without server bookkeeping, typed lists, ``Status`` bodies)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp.web

from tests.kubeapi import errors, rbac
from tests.kubeapi.errors import APIError
from tests.kubeapi.resources import ResourceType


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Record:
    """One request as the server saw it (for assertions)."""

    method: str
    verb: str
    path: str
    group: str
    resource: str
    subresource: str
    namespace: str | None
    name: str | None
    user: str | None  # None: no token (the test's admin client)
    user_agent: str
    field_manager: str | None
    content_type: str = ""  # of the body, parameters cut ("application/json-patch+json")
    params: dict[str, str] = field(default_factory=dict)  # the query (labelSelector, ...)
    token: str | None = None  # the bearer token presented (which one, when several work)
    code: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def manager(self) -> str:
        """The managedFields manager kube-apiserver would record: ``fieldManager``, else
        the User-Agent up to its first ``/``."""
        return self.field_manager or self.user_agent.split("/", 1)[0]

    @property
    def is_write(self) -> bool:
        return self.verb in {"create", "update", "patch", "delete", "deletecollection"}


@dataclass
class Route:
    group: str
    version: str
    plural: str | None
    namespace: str | None
    name: str | None
    subresource: str
    legacy_watch: bool = False  # /api/v1/watch/...: the deprecated watch paths


def parse_route(path: str) -> Route | None:
    """``/api/v1/namespaces/ns/services/x/status`` -> its parts (None for non-resources)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    legacy_watch = rest[:1] == ["watch"]
    if legacy_watch:
        rest = rest[1:]
    namespace = None
    if len(rest) == 3 and rest[0] == "namespaces" and rest[2] in ("status", "finalize"):
        return Route(group, version, "namespaces", None, rest[1], rest[2])
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    elif 2 <= len(rest) <= 3 and rest[0] == "namespaces":
        return Route(group, version, "namespaces", None, rest[1], "/".join(rest[2:]))
    if not rest:
        return Route(group, version, None, namespace, None, "")
    return Route(group, version, rest[0], namespace, rest[1] if len(rest) > 1 else None,
                 "/".join(rest[2:]), legacy_watch)


@dataclass
class Ctx:
    """One resource request being served."""

    request: Any
    rtype: ResourceType
    route: Route
    verb: str
    user: rbac.User | None
    record: Record
    warnings: list[str] = field(default_factory=list)

    @property
    def params(self) -> Mapping[str, str]:
        return self.request.params  # type: ignore[no-any-return]

    @property
    def namespace(self) -> str | None:
        return self.route.namespace if self.rtype.namespaced else None

    @property
    def dry_run(self) -> bool:
        return bool(self.params.get("dryRun"))


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def verb_of(raw_method: Any, route: Route, params: Mapping[str, str]) -> str:
    method = str(getattr(raw_method, "value", raw_method)).upper()
    if method == "GET":
        if params.get("watch") in ("true", "1") or route.legacy_watch:
            return "watch"
        return "get" if route.name else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if route.name else "deletecollection"
    return method.lower()


def int_rv(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f"invalid resource version: {value}") from None


def public(obj: dict[str, Any]) -> dict[str, Any]:
    """What a client sees (without the server's bookkeeping)."""
    return {k: v for k, v in obj.items() if k != "__epoch__"}


def list_item(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """Typed lists of built-ins carry no apiVersion/kind per item; custom resources do."""
    out = public(obj)
    if not rtype.is_custom:
        out.pop("apiVersion", None)
        out.pop("kind", None)
    return out


def success(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {"name": obj["metadata"]["name"]}
    if rtype.group:
        details["group"] = rtype.group
    details["kind"] = rtype.plural
    details["uid"] = obj["metadata"]["uid"]
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": details}


def json_response(body: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.Response(text=json.dumps(body), status=status,
                                content_type="application/json")


def error_response(exc: APIError) -> aiohttp.web.Response:
    return json_response(exc.status(), exc.code)


class GoText:
    """A bad value printed verbatim in a field error (Go's ``%#v`` of a Go type)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def go_repr(self) -> str:
        return self.text
