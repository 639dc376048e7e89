"""A small asynchronous Kubernetes API client for what kopf's handlers do not write.

kopf writes from inside its handlers; the operator's own loops (status sync, worker
registry, leader election) write outside them. They use this client, built from the same
credentials kopf logs in with (``kopf.ConnectionInfo``, a public kopf type), over aiohttp,
which kopf already depends on. It knows merge-patch, create, get, replace and Event
posting, and retries connection errors and 5xx/429 answers with capped backoff.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import tempfile
from collections.abc import Mapping
from typing import Any

import aiohttp
import kopf

from duraflow_operator.conditions import now_iso
from duraflow_operator.settings import GROUP, VERSION

log = logging.getLogger("duraflow.operator.kube")

ORCHESTRATIONS = f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}/orchestrations/{{name}}"
WORKERPOOLS = f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}/workerpools/{{name}}"
MERGE = "application/merge-patch+json"


class ApiError(RuntimeError):
    """An answer >= 400. ``reason`` and ``message`` come from the API's ``Status`` body
    (``Invalid``, ``Forbidden``, ... and the API server's own words)."""

    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:300]}")
        self.status = status
        self.reason = f"HTTP{status}"
        self.message = body[:1024]
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None
        if isinstance(decoded, Mapping):
            if isinstance(decoded.get("reason"), str) and decoded["reason"]:
                self.reason = decoded["reason"]
            if isinstance(decoded.get("message"), str) and decoded["message"]:
                self.message = decoded["message"]

    @property
    def rejected(self) -> bool:
        """The API server refused the request itself (invalid, forbidden, ...): sending it
        again unchanged cannot succeed; a conflict, a missing object or a throttle can."""
        return 400 <= self.status < 500 and self.status not in (404, 409, 429)


class KubeApi:
    """Holds one aiohttp session; ``configure`` is called by the kopf login handler."""

    def __init__(self, *, attempts: int = 6) -> None:
        self._info: kopf.ConnectionInfo | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ready = asyncio.Event()
        self._attempts = attempts
        self.requests = 0
        self.writes = 0

    def configure(self, info: kopf.ConnectionInfo) -> None:
        self._info = info
        self._ready.set()

    async def _client(self) -> tuple[aiohttp.ClientSession, str]:
        await self._ready.wait()
        info = self._info
        assert info is not None
        if self._session is None or self._session.closed:
            headers: dict[str, str] = {}
            if info.token:
                headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
            elif info.username and info.password:
                raw = f"{info.username}:{info.password}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
            connector = aiohttp.TCPConnector(ssl=_ssl_context(info), limit=32)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=headers, timeout=aiohttp.ClientTimeout(total=30)
            )
        return self._session, info.server.rstrip("/")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
        attempts: int | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        """The decoded JSON answer; ``ApiError`` for 4xx (and 5xx after the retries).
        ``attempts`` and ``timeout_s`` (per attempt) override the client's defaults."""
        delay = 0.1
        attempts = self._attempts if attempts is None else max(attempts, 1)
        for attempt in range(1, attempts + 1):
            session, server = await self._client()
            timeout = session.timeout if timeout_s is None else aiohttp.ClientTimeout(
                total=timeout_s)
            self.requests += 1
            if method != "GET":
                self.writes += 1
            try:
                async with session.request(
                    method, server + path, json=body, params=params,
                    headers={"Content-Type": content_type} if body is not None else None,
                    timeout=timeout,
                ) as response:
                    text = await response.text()
                    if response.status < 400:
                        return await response.json(content_type=None) if text else None
                    if response.status < 500 and response.status != 429:
                        raise ApiError(response.status, method, path, text)
                    error: Exception = ApiError(response.status, method, path, text)
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = exc
            if attempt == attempts:
                raise error
            log.info("Kubernetes API %s %s failed (attempt %d): %s", method, path, attempt, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    async def patch_status(self, path: str, status: Mapping[str, Any]) -> Any:
        return await self.request("PATCH", path + "/status", {"status": status}, content_type=MERGE)

    async def patch(self, path: str, body: Mapping[str, Any]) -> Any:
        return await self.request("PATCH", path, body, content_type=MERGE)

    async def post_event(
        self,
        involved: Mapping[str, Any],
        type_: str,
        reason: str,
        message: str,
        *,
        component: str = "duraflow-operator",
    ) -> None:
        """A core/v1 Event about ``involved`` (a CR body); failures are logged, not raised:
        an Event is a courtesy, and must never block a reconcile."""
        meta = involved.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        stamp = now_iso()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name', 'x')}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"), "kind": involved.get("kind"),
                "name": meta.get("name"), "namespace": namespace, "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": component},
            "reportingComponent": component,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            await self.request("POST", f"/api/v1/namespaces/{namespace}/events", event)
        except (ApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not post event %s for %s: %s", reason, meta.get("name"), exc)


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
