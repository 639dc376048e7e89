"""``/metrics``, ``/healthz`` and ``/readyz`` on one port, served from the runtime's loop.

Why on the loop and not prometheus-client's threaded server: the probes must read the
runtime's state (dispatchers, database health) and the queue-depth gauge must query the
database at scrape time, both of which live on the asyncio loop; a second thread would have
to hop back onto it for every request. The exposition itself is prometheus-client's
``generate_latest``; this module only routes three GET paths, which is why a small
``asyncio.start_server`` handler is enough (no HTTP framework dependency).

Every response closes its connection; a client that sends nothing within
``REQUEST_TIMEOUT_S`` is dropped, so stuck probes cannot pile up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger("duraflow.runtime")

REQUEST_TIMEOUT_S = 5.0
MAX_HEADER_LINES = 100
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class Check:
    """A probe's answer: ``ok`` gives 200, else 503; ``detail`` is the body (one line)."""

    ok: bool
    detail: str


class ProbeServer:
    """Serves the three endpoints until ``stop``.

    ``live()`` and ``ready()`` answer ``/healthz`` and ``/readyz``; ``before_scrape()`` runs
    before each ``/metrics`` (to refresh gauges read from the database; its errors are
    logged at DEBUG and the scrape still answers with what is known).
    """

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        live: Callable[[], Check],
        ready: Callable[[], Check],
        before_scrape: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._registry = registry
        self._live = live
        self._ready = ready
        self._before_scrape = before_scrape
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind (``OSError`` when the port is taken) and start serving."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sockets = self._server.sockets
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path = await asyncio.wait_for(_read_request(reader), REQUEST_TIMEOUT_S)
            status, content_type, body = await self._respond(method, path)
            head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode("ascii") + (b"" if method == "HEAD" else body))
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT_S)
        except (TimeoutError, ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass  # a client that went away or spoke no HTTP: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        text = "text/plain; charset=utf-8"
        if method not in ("GET", "HEAD"):
            return 405, text, b"only GET and HEAD\n"
        if path == "/metrics":
            if self._before_scrape is not None:
                try:
                    await self._before_scrape()
                except Exception as exc:
                    log.debug("refreshing metrics before a scrape failed: %s", exc)
            return 200, CONTENT_TYPE_LATEST, generate_latest(self._registry)
        if path in ("/healthz", "/readyz"):
            check = self._live() if path == "/healthz" else self._ready()
            return (200 if check.ok else 503), text, (check.detail + "\n").encode()
        return 404, text, b"not found: try /metrics, /healthz or /readyz\n"


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
    """The method and path (without query) of one request; headers are read and ignored."""
    line = (await reader.readline()).decode("latin-1").strip()
    parts = line.split()
    if len(parts) < 2:
        raise ValueError(f"not an HTTP request line: {line[:80]!r}")
    for _ in range(MAX_HEADER_LINES):
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
    return parts[0].upper(), parts[1].split("?", 1)[0]
