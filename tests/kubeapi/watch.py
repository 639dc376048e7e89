"""Watches: the initial state (or the events since a resourceVersion, 410 when they are
gone), then live events, filtered by namespace and selectors, until ``timeoutSeconds``, the
client leaves or the server stops.

As the watch cache does, an object that starts matching a watch's selector arrives as ADDED
and one that stops matching as DELETED. ``sendInitialEvents=true`` ends the initial state
with the ``k8s.io/initial-events-end`` bookmark. Periodic bookmarks are not sent.
"""

# Mixin methods are typed with ``self: KubeAPIServer`` (the class they are mixed into).
# mypy: disable-error-code="misc"

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

import aiohttp.web

from tests.kubeapi.errors import APIError
from tests.kubeapi.selectors import name_from_field_selector
from tests.kubeapi.store import Event, Watcher
from tests.kubeapi.wire import Ctx, int_rv, public

if TYPE_CHECKING:
    from tests.kubeapi.server import KubeAPIServer


class Watching:
    async def _watch(self: KubeAPIServer, ctx: Ctx) -> aiohttp.web.StreamResponse:
        self._authorize(ctx, name=name_from_field_selector(ctx.params.get("fieldSelector")))
        accepts = self._matchers(ctx)
        since = ctx.params.get("resourceVersion") or ""
        initial: list[dict[str, Any]] = []
        watcher = Watcher(ctx.rtype.key, lambda obj: True)
        error: APIError | None = None
        try:
            if since in ("", "0") or ctx.params.get("sendInitialEvents") == "true":
                initial = [{"type": "ADDED", "object": public(self._read_defaulted(
                    ctx.rtype, o))} for o in self.store.items(ctx.rtype.key, ctx.namespace)
                    if accepts(o)]
                if ctx.params.get("sendInitialEvents") == "true":
                    initial.append({"type": "BOOKMARK", "object": {
                        "kind": ctx.rtype.kind, "apiVersion": ctx.rtype.api_version,
                        "metadata": {"resourceVersion": str(self.store.revision),
                                     "annotations": {"k8s.io/initial-events-end": "true"}}}})
            else:
                backlog = self.store.since(ctx.rtype.key, int_rv(since))
                for past in backlog:
                    watcher.queue.put_nowait(past)
        except APIError as exc:
            error = exc
        if error is None:
            self.store.subscribe(watcher)
        response = aiohttp.web.StreamResponse(
            status=200, headers={"Content-Type": "application/json"})
        await response.prepare(ctx.request._raw_request)
        ctx.record.code = 200
        timeout = float(ctx.params.get("timeoutSeconds") or 0) or None
        deadline = time.monotonic() + timeout if timeout else None
        try:
            if error is not None:
                await response.write(json.dumps({"type": "ERROR",
                                                 "object": error.status()}).encode() + b"\n")
                return response
            for item in initial:
                await response.write(json.dumps(item).encode() + b"\n")
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    event: Event | None = await asyncio.wait_for(watcher.queue.get(), remaining)
                except TimeoutError:
                    break
                if event is None:
                    break
                line = watch_line(event, accepts)
                if line is not None:
                    await response.write(line)
        except (ConnectionResetError, asyncio.CancelledError, RuntimeError):
            pass
        finally:
            self.store.unsubscribe(watcher)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response

    # -- writes --------------------------------------------------------------------------



def watch_line(event: Event, accepts: Any) -> bytes | None:
    """The event as this watcher sees it: an object entering its selector is ADDED, one
    leaving it DELETED (as the watch cache does)."""
    now_in = accepts(event.obj)
    before = accepts(event.previous) if event.previous is not None else None
    kind = event.type
    if event.type == "MODIFIED" and before is not None:
        if now_in and not before:
            kind = "ADDED"
        elif before and not now_in:
            kind = "DELETED"
        elif not now_in:
            return None
    elif not now_in:
        return None
    return json.dumps({"type": kind, "object": public(event.obj)}).encode() + b"\n"
