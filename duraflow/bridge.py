"""One background event loop that the blocking (duroxide-style) API runs on.

duroxide-python's API is synchronous: ``runtime.start()`` returns at once while dispatchers
keep running, and ``client.wait_for_orchestration()`` blocks the caller. Duraflow's engine is
asyncio, so the blocking facade submits coroutines to a single daemon loop thread shared by
every blocking provider, client and runtime in the process. Sharing one loop keeps in-process
wake-ups (``asyncio.Event``) working between a client and a runtime without any polling.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first use."""
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=run, name="duraflow-loop", daemon=True)
            thread.start()
            ready.wait()
            _loop, _thread = loop, thread
        return _loop


def in_background_loop() -> bool:
    return _thread is not None and threading.current_thread() is _thread


def run_sync(coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
    """Run ``coro`` on the background loop and block until it finishes.

    Calling this from the loop thread itself (e.g. from an ``async def`` activity) would
    deadlock, so it raises instead and names the async alternative.
    """
    if in_background_loop():
        coro.close()
        raise RuntimeError(
            "blocking Duraflow call made from inside the Duraflow event loop (an async "
            "activity?); use the async API instead, e.g. ctx.get_async_client()"
        )
    future = asyncio.run_coroutine_threadsafe(coro, background_loop())
    try:
        return future.result(timeout_s)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise
