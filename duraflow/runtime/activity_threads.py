"""The threads that run blocking (plain ``def``) activities.

A sync activity must not run on the event loop, so it crosses to a thread and its result
crosses back. ``loop.run_in_executor`` with a ``ThreadPoolExecutor`` does that through a
``concurrent.futures.Future`` chained to an asyncio future: a condition variable, two
callbacks and a state copy per call. Measured on the 2-core bench machine, a no-op's round
trip cost 0.14 ms that way against 0.05 ms for a plain queue whose worker sets the asyncio
future directly, and W3 crosses twice per orchestration (``bench/PROFILE.md``). The
semantics are the executor's: at most ``max_threads`` threads, started on demand; a job
whose awaiter was cancelled before it started does not run; after ``shutdown`` new jobs
are refused and queued ones are cancelled, while running ones finish on their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]

# Threads of every pool in the process that are inside an activity function right now. They
# are daemon threads, so they never hold up the interpreter's exit; the worker CLI reports
# them when it leaves with work abandoned (``duraflow/cli/worker.py``).
_busy_lock = threading.Lock()
_busy: set[threading.Thread] = set()


def busy_threads() -> int:
    """How many activity threads of this process are running an activity function."""
    with _busy_lock:
        return len(_busy)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class ActivityThreads:
    """A small thread pool for blocking calls made from one event loop."""

    def __init__(self, max_threads: int, name_prefix: str) -> None:
        self._max = max(max_threads, 1)
        self._prefix = name_prefix
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._closed = False

    def run(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        """Start ``fn()`` on a worker thread; the returned future settles on the loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._jobs.put((loop, future, fn))
            if self._idle > 0:
                self._idle -= 1  # an idle thread takes it (the executor's idle semaphore)
            elif len(self._threads) < self._max:
                thread = threading.Thread(
                    target=self._work, name=f"{self._prefix}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def shutdown(self) -> None:
        """Refuse new jobs, cancel queued ones, let the threads end after their current job."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = len(self._threads)
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job[0].call_soon_threadsafe(job[1].cancel)
        for _ in range(threads):
            self._jobs.put(None)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            loop, future, fn = job
            if not future.cancelled():
                me = threading.current_thread()
                with _busy_lock:
                    _busy.add(me)
                try:
                    result, error = fn(), None
                except BaseException as exc:  # delivered to the awaiting task, as an executor does
                    result, error = None, exc
                finally:
                    with _busy_lock:
                        _busy.discard(me)
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(_settle, future, result, error)
            with self._lock:
                self._idle += 1
