"""How the operator reaches the API server: where, with which credentials, as whom.

Both HTTP clients of the operator (kopf's, for its watches and its patches, and ``KubeApi``,
for the operator's own loops) are built here, on the same ``Connection``:

* **Credentials that rotate.** A pod's ServiceAccount token is a projected token that the
  kubelet rewrites (about hourly); a client that read it once sends an expired token an hour
  later. The token is re-read from its file at most once a minute (client-go's period) and
  at once after a 401, and set on every request by an aiohttp client middleware, so a
  session never holds a stale token. kopf gets an ``aiohttp`` session of ours
  (``kopf.AiohttpSession``) with the same middleware.
* **An identity.** Every request carries ``User-Agent: duraflow-operator/<version>``, and
  every write (POST, PUT, PATCH) ``fieldManager=duraflow-operator``: ``managedFields`` and
  the API server's audit log name the operator, not "Python" or "kopf".
"""

from __future__ import annotations

import base64
import logging
import os
import ssl
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

import aiohttp
import kopf

from duraflow_operator.settings import MANAGED_BY, OperatorSettings

log = logging.getLogger("duraflow.operator.connection")

try:
    _VERSION = package_version("duraflow")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    _VERSION = "unknown"
USER_AGENT = f"{MANAGED_BY}/{_VERSION}"
FIELD_MANAGER = MANAGED_BY
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
_WRITES = frozenset({"POST", "PUT", "PATCH"})


class TokenSource:
    """A bearer token, re-read from its file when ``reread_s`` have passed (or after
    ``invalidate``); a static token when there is no file. An unreadable file keeps the last
    token (the kubelet replaces the file atomically; a failed read is a moment's race)."""

    def __init__(self, *, path: str | None = None, token: str | None = None,
                 scheme: str | None = None, reread_s: float = 60.0) -> None:
        self.path = path
        self.scheme = scheme or "Bearer"
        self.reread_s = reread_s
        self._token = token
        self._read_at = time.monotonic() if token is not None else None

    def invalidate(self) -> None:
        self._read_at = None

    def token(self) -> str | None:
        stale = self._read_at is None or time.monotonic() - self._read_at >= self.reread_s
        if self.path is not None and stale:
            try:
                with open(self.path, encoding="utf-8") as handle:
                    self._token = handle.read().strip() or self._token
            except OSError as error:
                log.warning("could not re-read the token file %s: %s", self.path, error)
            self._read_at = time.monotonic()
        return self._token

    def header(self) -> str | None:
        token = self.token()
        return f"{self.scheme} {token}" if token else None


@dataclass(slots=True)
class Connection:
    """An API server and the credentials to use on it."""

    server: str
    ssl: ssl.SSLContext | bool = False
    token: TokenSource | None = None
    basic: str | None = None  # a ready Authorization header value
    default_namespace: str | None = None
    proxy: str | None = None
    trust_env: bool = False

    def authorization(self) -> str | None:
        if self.token is not None:
            return self.token.header()
        return self.basic

    def session(self, *, limit: int, timeout_s: float | None = None) -> aiohttp.ClientSession:
        """An aiohttp session that authenticates, identifies and names the field manager
        on every request. ``limit=0``: kopf holds one connection per watch."""
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.ssl, limit=limit),
            headers={"User-Agent": USER_AGENT}, timeout=timeout, proxy=self.proxy,
            trust_env=self.trust_env, middlewares=(self._identify,))

    async def _identify(self, request: aiohttp.ClientRequest,
                        handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
        authorization = self.authorization()
        if authorization:
            request.headers["Authorization"] = authorization
        request.headers["User-Agent"] = USER_AGENT
        if request.method in _WRITES and "fieldManager" not in request.url.query:
            request.url = request.url.update_query(fieldManager=FIELD_MANAGER)
        return await handler(request)

    @classmethod
    def from_info(cls, info: kopf.ConnectionInfo, *, token_path: str | None = None,
                  reread_s: float = 60.0) -> Connection:
        """From kopf's login result; ``token_path``: the file its token came from."""
        token = None
        if info.token or token_path:
            token = TokenSource(path=token_path, token=info.token, scheme=info.scheme,
                                reread_s=reread_s)
        basic = None
        if info.username and info.password:
            raw = f"{info.username}:{info.password}".encode()
            basic = "Basic " + base64.b64encode(raw).decode()
        return cls(server=info.server.rstrip("/"), ssl=_ssl_context(info), token=token,
                   basic=basic, default_namespace=info.default_namespace,
                   proxy=info.proxy_url, trust_env=info.trust_env)


def connect(settings: OperatorSettings,
            kopf_settings: kopf.OperatorSettings) -> Connection | None:
    """``--kube-url`` if given, else the in-cluster service account, else ``KUBECONFIG``."""
    if settings.kube_url:
        token = None
        if settings.kube_token_file:
            token = TokenSource(path=settings.kube_token_file,
                                reread_s=settings.kube_token_reread_s)
        given = kopf.ConnectionInfo(server=settings.kube_url, insecure=True)
        return Connection(server=settings.kube_url.rstrip("/"), ssl=_ssl_context(given),
                          token=token)
    in_cluster = kopf.login_with_service_account(settings=kopf_settings, logger=log)
    if in_cluster is not None:
        path = SERVICE_ACCOUNT_TOKEN if os.path.exists(SERVICE_ACCOUNT_TOKEN) else None
        return Connection.from_info(in_cluster, token_path=path,
                                    reread_s=settings.kube_token_reread_s)
    kubeconfig = kopf.login_with_kubeconfig(settings=kopf_settings, logger=log)
    return None if kubeconfig is None else Connection.from_info(kubeconfig)


def _ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if info.server.startswith("http://"):
        return False
    if info.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        cadata = info.ca_data.decode() if isinstance(info.ca_data, bytes) else info.ca_data
        context = ssl.create_default_context(
            cafile=str(info.ca_path) if info.ca_path else None,
            cadata=_pem(cadata) if cadata else None,
        )
    if info.certificate_path or info.certificate_data:
        cert = _file(info.certificate_path, info.certificate_data)
        key = _file(info.private_key_path, info.private_key_data)
        context.load_cert_chain(cert, key)
    return context


def _pem(data: str) -> str:
    """kubeconfig carries base64 of the PEM; a service account carries the PEM itself."""
    if "-----BEGIN" in data:
        return data
    return base64.b64decode(data).decode()


def _file(path: object, data: str | bytes | None) -> str:
    if path:
        return str(path)
    text = data.decode() if isinstance(data, bytes) else (data or "")
    handle = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)  # noqa: SIM115
    with handle:
        handle.write(_pem(text))
    return handle.name


__all__ = ["FIELD_MANAGER", "USER_AGENT", "Connection", "TokenSource", "connect"]
