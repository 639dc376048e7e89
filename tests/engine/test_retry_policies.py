"""``schedule_activity_with_retry``: attempts, backoff kinds, per-attempt and total timeouts."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest

from .support import TIMEOUT_MS, completed, uid


class Attempts:
    """Thread-safe attempt counter per key (activities run on worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def next(self, key: str) -> int:
        with self._lock:
            self._counts[key] += 1
            return self._counts[key]

    def __getitem__(self, key: str) -> int:
        with self._lock:
            return self._counts[key]


def test_retry_succeeds_after_failures(start_runtime, client):
    attempts = Attempts()

    def register(rt):
        def flaky(ctx, fail_times):
            n = attempts.next(ctx.instance_id)
            if n <= fail_times:
                raise ConnectionError(f"transient failure {n}")
            return {"succeeded_on": n}

        rt.register_activity("Flaky", flaky)

        @rt.register_orchestration("RetryFlaky")
        def retry_flaky(ctx, fail_times):
            return (yield ctx.schedule_activity_with_retry(
                "Flaky", fail_times, {"max_attempts": 5, "backoff": "exponential"}
            ))

    start_runtime(register)
    iid = uid("retry")
    client.start_orchestration(iid, "RetryFlaky", 2)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == {"succeeded_on": 3}
    assert attempts[iid] == 3
    history = client.read_execution_history(iid, 1)
    assert sum(e.kind == "ActivityScheduled" for e in history) == 3
    assert sum(e.kind == "ActivityFailed" for e in history) == 2


def test_retry_exhaustion_raises_last_error(start_runtime, client):
    attempts = Attempts()

    def register(rt):
        def hopeless(ctx, _):
            n = attempts.next(ctx.instance_id)
            raise ValueError(f"still broken on attempt {n}")

        rt.register_activity("Hopeless", hopeless)
        rt.register_activity("Compensate", lambda ctx, msg: f"compensated after: {msg}")

        @rt.register_orchestration("RetryExhaust")
        def retry_exhaust(ctx, _):
            try:
                yield ctx.schedule_activity_with_retry(
                    "Hopeless", None, {"max_attempts": 3, "backoff": "linear"}
                )
            except Exception as e:
                return (yield ctx.schedule_activity("Compensate", str(e)))
            return "unexpected success"

    start_runtime(register)
    iid = uid("exhaust")
    client.start_orchestration(iid, "RetryExhaust", None)
    output = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert output.startswith("compensated after: ")
    assert "still broken on attempt 3" in output  # the last attempt's error
    assert attempts[iid] == 3


@pytest.mark.parametrize(
    ("backoff", "failures", "expected_delays_ms"),
    [
        ("exponential", 3, [100, 200, 400]),
        ("linear", 3, [100, 200, 300]),
        ("fixed", 1, [1000]),
    ],
)
def test_retry_backoff_kinds(start_runtime, client, backoff, failures, expected_delays_ms):
    attempts = Attempts()

    def register(rt):
        def fails_then_works(ctx, fail_times):
            n = attempts.next(ctx.instance_id)
            if n <= fail_times:
                raise RuntimeError(f"attempt {n} failed")
            return n

        rt.register_activity("FailsThenWorks", fails_then_works)

        @rt.register_orchestration("Backoff")
        def backoff_orch(ctx, args):
            return (yield ctx.schedule_activity_with_retry(
                "FailsThenWorks", args["failures"],
                {"max_attempts": args["failures"] + 1, "backoff": args["backoff"]},
            ))

    start_runtime(register)
    iid = uid(f"backoff-{backoff}")
    started = time.monotonic()
    client.start_orchestration(iid, "Backoff", {"failures": failures, "backoff": backoff})
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == failures + 1
    assert time.monotonic() - started >= sum(expected_delays_ms) / 1000
    # Each backoff is a durable timer; its delay is fire time minus scheduling time.
    timers = [e for e in client.read_execution_history(iid, 1) if e.kind == "TimerCreated"]
    delays = [json.loads(e.data)["fireAtMs"] - e.timestamp_ms for e in timers]
    assert delays == expected_delays_ms


def test_retry_attempt_timeout_fails_without_retrying(start_runtime, client):
    attempts = Attempts()
    cancelled = threading.Event()

    def register(rt):
        def hangs(ctx, _):
            attempts.next(ctx.instance_id)
            if ctx.wait_cancelled(TIMEOUT_MS / 1000):
                cancelled.set()
            return "too late"

        rt.register_activity("Hangs", hangs)

        @rt.register_orchestration("AttemptTimeout")
        def attempt_timeout(ctx, _):
            try:
                yield ctx.schedule_activity_with_retry(
                    "Hangs", None, {"max_attempts": 3, "timeout_ms": 300}
                )
            except Exception as e:
                return f"caught: {e}"
            return "no timeout"

    start_runtime(register)
    iid = uid("attempt-timeout")
    client.start_orchestration(iid, "AttemptTimeout", None)
    assert completed(client.wait_for_orchestration(iid, TIMEOUT_MS)) == (
        "caught: timeout: activity timed out")
    assert attempts[iid] == 1  # a timed-out attempt is not retried
    assert cancelled.wait(TIMEOUT_MS / 1000), "the timed-out attempt was never cancelled"


def test_retry_total_timeout_bounds_all_attempts(start_runtime, client):
    attempts = Attempts()

    def register(rt):
        def always_fails(ctx, _):
            n = attempts.next(ctx.instance_id)
            raise RuntimeError(f"fail {n}")

        rt.register_activity("AlwaysFails", always_fails)

        @rt.register_orchestration("TotalTimeout")
        def total_timeout(ctx, _):
            try:
                yield ctx.schedule_activity_with_retry(
                    "AlwaysFails", None,
                    # Each attempt fails at once and is followed by a 1 s backoff; without a
                    # bound on all attempts together this would run for ~50 s.
                    {"max_attempts": 50, "backoff": "fixed", "total_timeout_ms": 2500},
                )
            except Exception as e:
                return str(e)
            return "no timeout"

    start_runtime(register)
    iid = uid("total-timeout")
    started = time.monotonic()
    client.start_orchestration(iid, "TotalTimeout", None)
    error = completed(client.wait_for_orchestration(iid, TIMEOUT_MS))
    elapsed = time.monotonic() - started
    assert "timeout" in error
    assert 2.4 <= elapsed < 8
    assert 2 <= attempts[iid] <= 3
