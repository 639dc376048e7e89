"""The probe server answers the three paths, and nothing else, on one port."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter

from duraflow.runtime.http_server import Check, ProbeServer


async def request(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


async def test_routes_methods_and_scrape_hook() -> None:
    registry = CollectorRegistry()
    Counter("demo_events", "events", registry=registry).inc(3)
    scrapes: list[int] = []
    ready = [False]

    async def before_scrape() -> None:
        scrapes.append(1)
        raise RuntimeError("database down")  # a failing refresh must not fail the scrape

    server = ProbeServer("127.0.0.1", 0, registry, lambda: Check(True, "alive"),
                         lambda: Check(ready[0], "ready" if ready[0] else "starting"),
                         before_scrape)
    await server.start()
    try:
        metrics = await request(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert metrics.startswith(b"HTTP/1.1 200 OK")
        assert b"demo_events_total 3.0" in metrics and scrapes == [1]
        not_ready = await request(server.port, b"GET /readyz?verbose=1 HTTP/1.1\r\n\r\n")
        assert not_ready.startswith(b"HTTP/1.1 503") and not_ready.endswith(b"starting\n")
        ready[0] = True
        assert (await request(server.port, b"GET /readyz HTTP/1.0\r\n\r\n")).startswith(
            b"HTTP/1.1 200 OK")
        head = await request(server.port, b"HEAD /healthz HTTP/1.1\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n")
        assert (await request(server.port, b"POST /metrics HTTP/1.1\r\n\r\n")).startswith(
            b"HTTP/1.1 405")
        assert (await request(server.port, b"GET /admin HTTP/1.1\r\n\r\n")).startswith(
            b"HTTP/1.1 404")
        assert await request(server.port, b"garbage\r\n\r\n") == b""  # dropped, no crash
    finally:
        await server.stop()
