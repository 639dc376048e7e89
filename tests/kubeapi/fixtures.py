"""pytest fixtures for the strict test API server, configured like the cluster the operator
is installed in: the CRDs of ``crds/`` and the RBAC of the Helm chart, rendered in either
mode, with a bearer token for the operator's ServiceAccount.

- ``cluster-wide``: ``operator.watchNamespaces`` empty, one ClusterRole;
- ``namespaced``: ``operator.watchNamespaces: [ns1]``, a Role in ``ns1`` and the
  leader-election Role in the release namespace (nothing cluster-scoped);
- ``admin``: no RBAC at all (every request is the test's admin).

Usage::

    async def test_x(kube_cluster):                 # cluster-wide
        created = await kube_cluster.admin.create(...)          # no token: allowed everything
        answer = await kube_cluster.operator.create(...)         # the operator's token
        assert answer.status == 403, answer.body["message"]
        assert kube_cluster.server.requests_of(kube_cluster.operator_user, verb="create")

    async def test_y(rbac_cluster): ...             # runs once per RBAC mode

    async def test_z(strict_cluster_factory):       # any combination
        cluster = await strict_cluster_factory("namespaced", watch_window=10)

Import the fixtures into a ``conftest.py`` to use them (``tests/kubeapi/conftest.py`` does).
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.test_utils
import kmock
import pytest
import yaml

from tests.kubeapi.server import KubeAPIServer

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
OPERATOR_TOKEN = "duraflow-operator-token"
WATCHED = ("ns1",)
OTHER_NAMESPACES = ("ns2",)
MODES = ("cluster-wide", "namespaced")


def project_crds() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted(CRDS.glob("*.yaml"))]


@functools.lru_cache(maxsize=4)
def _chart(watch_namespaces: tuple[str, ...]) -> tuple[list[dict[str, Any]], str, str]:
    from tests.chart.support import NAMESPACE, render  # helm-python-sdk, loaded on demand

    values = {"operator": {"watchNamespaces": list(watch_namespaces)}}
    docs = render(values)
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    rbac = [d for d in docs if d["kind"] in
            {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}]
    return rbac, account["metadata"]["name"], account["metadata"].get("namespace", NAMESPACE)


def chart_rbac(mode: str) -> tuple[list[dict[str, Any]], str, str]:
    """(RBAC objects, ServiceAccount name, its namespace) of the chart in ``mode``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    rbac, name, namespace = _chart(() if mode == "cluster-wide" else WATCHED)
    return json.loads(json.dumps(rbac)), name, namespace


@dataclass
class Answer:
    status: int
    body: Any
    warnings: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return str((self.body or {}).get("message", "")) if isinstance(self.body, dict) else ""

    @property
    def reason(self) -> str:
        return str((self.body or {}).get("reason", "")) if isinstance(self.body, dict) else ""

    def ok(self) -> Any:
        assert self.status < 400, f"{self.status}: {self.body}"
        return self.body


MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


class KubeClient:
    """A small client for tests: every call answers ``Answer`` (no raising on 4xx)."""

    def __init__(self, url: str, token: str | None = None, user_agent: str = "kubeapi-test/1") \
            -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.user_agent = user_agent

    async def request(self, method: str, path: str, body: Any = None, *,
                      content_type: str = "application/json",
                      params: dict[str, str] | None = None) -> Answer:
        headers = {"User-Agent": self.user_agent}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        async with aiohttp.ClientSession() as session, session.request(
                method, self.url + path, data=data, headers=headers, params=params) as response:
            text = await response.text()
            try:
                decoded = json.loads(text) if text else None
            except ValueError:
                decoded = text
            return Answer(response.status, decoded, response.headers.getall("Warning", []))

    async def get(self, path: str, **params: str) -> Answer:
        return await self.request("GET", path, params=params or None)

    async def create(self, path: str, body: Any, **params: str) -> Answer:
        return await self.request("POST", path, body, params=params or None)

    async def replace(self, path: str, body: Any, **params: str) -> Answer:
        return await self.request("PUT", path, body, params=params or None)

    async def patch(self, path: str, body: Any, content_type: str = MERGE,
                    **params: str) -> Answer:
        return await self.request("PATCH", path, body, content_type=content_type,
                                  params=params or None)

    async def delete(self, path: str, body: Any = None, **params: str) -> Answer:
        return await self.request("DELETE", path, body, params=params or None)

    async def watch(self, path: str, *, until: Callable[[list[dict[str, Any]]], bool],
                    timeout: float = 5.0, **params: str) -> list[dict[str, Any]]:
        """Watch events until ``until(events)`` holds (or the stream ends / times out)."""
        headers = {"User-Agent": self.user_agent}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        events: list[dict[str, Any]] = []
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        with contextlib.suppress(TimeoutError):
            async with aiohttp.ClientSession(timeout=client_timeout) as session, session.get(
                    self.url + path, params={"watch": "true", **params},
                    headers=headers) as response:
                async for line in response.content:
                    if line.strip():
                        events.append(json.loads(line))
                        if until(events):
                            break
        return events


@dataclass
class StrictCluster:
    server: KubeAPIServer
    url: str
    mode: str
    operator_user: str
    operator_token: str = OPERATOR_TOKEN
    watch_namespaces: tuple[str, ...] = ()
    release_namespace: str = ""

    @property
    def admin(self) -> KubeClient:
        return KubeClient(self.url)

    @property
    def operator(self) -> KubeClient:
        return KubeClient(self.url, self.operator_token, "duraflow-operator/test")

    def client(self, token: str | None = None, user_agent: str = "kubeapi-test/1") -> \
            KubeClient:
        return KubeClient(self.url, token, user_agent)

    def kubeconfig(self, path: Path, token: str | None = None) -> Path:
        """A kubeconfig for this server (and ``token``), for kubectl or the operator."""
        user: dict[str, Any] = {"token": token} if token else {}
        config = {"apiVersion": "v1", "kind": "Config", "current-context": "strict",
                  "clusters": [{"name": "strict", "cluster": {"server": self.url}}],
                  "users": [{"name": "strict", "user": user}],
                  "contexts": [{"name": "strict",
                                "context": {"cluster": "strict", "user": "strict"}}]}
        path.write_text(yaml.safe_dump(config))
        return path


class _HTTPServer(aiohttp.test_utils.RawTestServer):
    """An idle keep-alive connection is closed after a second (kube-apiserver keeps them
    longer; clients reconnect either way). Each open connection is a handler task of this
    process, and a kopf operator running in it takes every task created after its start for
    its own: a graceful stop waits 5 s for them, the server's idle connections included."""

    async def _make_runner(self, debug: bool = True, **kwargs: Any) -> Any:
        return await super()._make_runner(debug=debug, keepalive_timeout=1.0, **kwargs)


@contextlib.asynccontextmanager
async def strict_cluster(mode: str = "cluster-wide", *,
                         crds: list[dict[str, Any]] | None = None,
                         **options: Any) -> AsyncIterator[StrictCluster]:
    """A running strict server: the project's CRDs, the chart's RBAC in ``mode``
    (``cluster-wide``, ``namespaced`` or ``admin``), namespaces ns1, ns2 and the release
    namespace, and the operator's token."""
    if mode == "admin":
        rbac: list[dict[str, Any]] | None = None
        account, release = "duraflow-operator", "duraflow-system"
    else:
        rbac, account, release = chart_rbac(mode)
    user = f"system:serviceaccount:{release}:{account}"
    server = KubeAPIServer(
        crds=project_crds() if crds is None else crds, rbac_objects=rbac,
        tokens={OPERATOR_TOKEN: user}, namespaces=WATCHED + OTHER_NAMESPACES + (release,),
        **options)
    async with server, kmock.Server(server, server_cls=_HTTPServer):
        yield StrictCluster(server, str(server.url).rstrip("/"), mode, user,
                            watch_namespaces=() if mode == "cluster-wide" else WATCHED,
                            release_namespace=release)


ClusterFactory = Callable[..., Awaitable[StrictCluster]]


@pytest.fixture
async def strict_cluster_factory() -> AsyncIterator[ClusterFactory]:
    """``await strict_cluster_factory(mode, **server_options)``; all stopped at teardown."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(mode: str = "cluster-wide", **options: Any) -> StrictCluster:
            return await stack.enter_async_context(strict_cluster(mode, **options))

        yield make


@pytest.fixture
async def kube_cluster(strict_cluster_factory: ClusterFactory) -> StrictCluster:
    """The strict server with the chart's cluster-wide RBAC."""
    return await strict_cluster_factory("cluster-wide")


@pytest.fixture(params=MODES)
async def rbac_cluster(request: pytest.FixtureRequest,
                       strict_cluster_factory: ClusterFactory) -> StrictCluster:
    """The strict server once per RBAC mode of the chart."""
    return await strict_cluster_factory(request.param)
