"""A small asynchronous Kubernetes API client for what kopf's handlers do not write.

kopf writes from inside its handlers; the operator's own loops (status sync, worker
registry, leader election) write outside them. They use this client, built on the same
``Connection`` as kopf's (credentials re-read as they rotate, the operator's User-Agent and
field manager), over aiohttp, which kopf already depends on. It knows merge-patch, create,
get, replace and Event posting, and retries connection errors and 5xx/429 answers with
capped backoff (a 401 once, at once, with the token re-read).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import kopf

from duraflow_operator.conditions import now_iso
from duraflow_operator.connection import Connection
from duraflow_operator.settings import GROUP, VERSION

log = logging.getLogger("duraflow.operator.kube")

ORCHESTRATIONS = f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}/orchestrations/{{name}}"
WORKERPOOLS = f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}/workerpools/{{name}}"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


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


#: What a request of this client raises once its retries are spent. A server that drops the
#: connection raises an ``aiohttp.ClientError`` that is no ``OSError``: a loop that catches
#: fewer dies of a moment's outage.
API_ERRORS = (ApiError, aiohttp.ClientError, TimeoutError, OSError)


def event_name(involved: str) -> str:
    """client-go's ``<object>.<hex nanoseconds>``, kept a valid name (253 characters, no
    empty label). Not ``generateName: "<object>."``: a name prefix may end in '-' only, so
    the API server refused every such Event."""
    stem = involved[:253 - 17].rstrip(".-") or "x"
    return f"{stem}.{time.time_ns():x}"


class KubeApi:
    """Holds one aiohttp session; ``configure`` is called by the kopf login handler."""

    def __init__(self, *, attempts: int = 6) -> None:
        self._connection: Connection | None = None
        self._session: aiohttp.ClientSession | None = None
        self._retired: list[aiohttp.ClientSession] = []
        self._ready = asyncio.Event()
        self._attempts = attempts
        self.requests = 0
        self.writes = 0

    def configure(self, connection: Connection | kopf.ConnectionInfo) -> None:
        """Use ``connection`` from now on (kopf logs in again after a 401)."""
        if isinstance(connection, kopf.ConnectionInfo):
            connection = Connection.from_info(connection)
        if self._session is not None and connection is not self._connection:
            self._retired.append(self._session)  # closed by close()
            self._session = None
        self._connection = connection
        self._ready.set()

    async def _client(self) -> tuple[aiohttp.ClientSession, Connection]:
        await self._ready.wait()
        connection = self._connection
        assert connection is not None
        if self._session is None or self._session.closed:
            self._session = connection.session(limit=32, timeout_s=30)
        return self._session, connection

    async def close(self) -> None:
        sessions, self._retired = [*self._retired, self._session], []
        self._session = None
        for session in sessions:
            if session is not None:
                await session.close()

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
        attempt = 0
        reauthenticated = False
        while True:
            session, connection = await self._client()
            timeout = session.timeout if timeout_s is None else aiohttp.ClientTimeout(
                total=timeout_s)
            attempt += 1
            self.requests += 1
            if method != "GET":
                self.writes += 1
            try:
                async with session.request(
                    method, connection.server + path, json=body, params=params,
                    headers={"Content-Type": content_type} if body is not None else None,
                    timeout=timeout,
                ) as response:
                    text = await response.text()
                    if response.status < 400:
                        return await response.json(content_type=None) if text else None
                    if (response.status == 401 and connection.token is not None
                            and not reauthenticated):
                        # The token rotated since it was last read: re-read it, once, now.
                        connection.token.invalidate()
                        reauthenticated = True
                        attempt -= 1
                        continue
                    if response.status < 500 and response.status != 429:
                        raise ApiError(response.status, method, path, text)
                    error: Exception = ApiError(response.status, method, path, text)
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = exc
            if attempt >= attempts:
                raise error
            log.info("Kubernetes API %s %s failed (attempt %d): %s", method, path, attempt, error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def patch_status(self, path: str, status: Mapping[str, Any]) -> Any:
        return await self.request("PATCH", path + "/status", {"status": status}, content_type=MERGE)

    async def json_patch_status(self, path: str, ops: list[dict[str, Any]]) -> Any:
        return await self.request("PATCH", path + "/status", ops, content_type=JSON_PATCH)

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
            "metadata": {"name": event_name(str(meta.get("name") or "x")),
                         "namespace": namespace},
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
