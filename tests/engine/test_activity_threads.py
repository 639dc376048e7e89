"""The threads behind sync activities: results and errors come back to the loop, at most
``max_threads`` run at once, a job cancelled before it starts never runs, and a shut-down
pool refuses new work and cancels what was queued."""

from __future__ import annotations

import asyncio
import threading

import pytest

from duraflow.runtime.activity_threads import ActivityThreads


async def test_results_and_errors_reach_the_awaiting_task() -> None:
    pool = ActivityThreads(2, "t")
    try:
        loop_thread = threading.current_thread()
        ran_on: list[threading.Thread] = []

        def work() -> int:
            ran_on.append(threading.current_thread())
            return 42

        def boom() -> None:
            raise ValueError("bad input")

        assert await pool.run(work) == 42
        assert ran_on[0] is not loop_thread and ran_on[0].name == "t_0"
        with pytest.raises(ValueError, match="bad input"):
            await pool.run(boom)
    finally:
        pool.shutdown()


async def test_never_more_threads_than_allowed_and_idle_ones_are_reused() -> None:
    pool = ActivityThreads(2, "t")
    release = threading.Event()
    running = 0
    peak = 0
    lock = threading.Lock()
    names: set[str] = set()

    def hold() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            names.add(threading.current_thread().name)
        release.wait(10)
        with lock:
            running -= 1

    try:
        jobs = [pool.run(hold) for _ in range(5)]
        deadline = asyncio.get_running_loop().time() + 10
        while running < 2 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert running == 2  # the other three wait for a free thread
        release.set()
        await asyncio.gather(*jobs)
        assert peak == 2 and names == {"t_0", "t_1"}
        for _ in range(3):  # one at a time: an idle thread takes it, no new thread
            await pool.run(lambda: None)
        assert len(pool._threads) == 2
    finally:
        release.set()
        pool.shutdown()


async def test_a_job_cancelled_before_it_starts_does_not_run() -> None:
    pool = ActivityThreads(1, "t")
    gate = threading.Event()
    ran: list[str] = []
    try:
        first = pool.run(lambda: gate.wait(10))
        second = pool.run(lambda: ran.append("second"))
        second.cancel()
        gate.set()
        assert await first is True
        await pool.run(lambda: None)  # queued behind "second" on the only thread
        assert ran == []
    finally:
        pool.shutdown()


async def test_shutdown_refuses_new_work_and_cancels_queued_work() -> None:
    pool = ActivityThreads(1, "t")
    gate = threading.Event()
    running = pool.run(lambda: gate.wait(10))
    queued = pool.run(lambda: "never")
    pool.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.run(lambda: None)
    gate.set()
    assert await running is True  # a running job finishes
    with pytest.raises(asyncio.CancelledError):
        await queued


async def test_busy_threads_counts_activities_in_progress() -> None:
    from duraflow.runtime.activity_threads import busy_threads

    pool = ActivityThreads(1, "t")
    inside, gate = threading.Event(), threading.Event()

    def hold() -> None:
        inside.set()
        gate.wait(10)

    try:
        before = busy_threads()
        job = pool.run(hold)
        assert await asyncio.to_thread(inside.wait, 10)
        assert busy_threads() == before + 1  # what the worker CLI reports when it leaves
        gate.set()
        await job
        assert busy_threads() == before
    finally:
        gate.set()
        pool.shutdown()
