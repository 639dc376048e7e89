"""Retry policies for activities: attempts, per-attempt and total timeouts, backoff.

Retries run inside the orchestration, durably: every attempt is a new ``ActivityScheduled``
and every backoff a durable timer, so a crash between attempts resumes the schedule exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_BACKOFF_MS = 30_000
BASE_BACKOFF_MS = 100
FIXED_BACKOFF_MS = 1_000
BACKOFF_KINDS = ("exponential", "linear", "fixed", "none")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``timeout_ms`` bounds each attempt; ``total_timeout_ms`` bounds all attempts together.

    A timed-out attempt is not retried (the activity may still be running somewhere, and
    retrying would run it twice concurrently); it fails with "timeout: activity timed out".
    """

    max_attempts: int = 3
    timeout_ms: int | None = None
    total_timeout_ms: int | None = None
    backoff: str = "exponential"

    def delay_ms(self, failed_attempt: int) -> int:
        """Delay before the attempt that follows ``failed_attempt`` (1-based)."""
        if self.backoff == "none":
            return 0
        if self.backoff == "fixed":
            return FIXED_BACKOFF_MS
        if self.backoff == "linear":
            return min(BASE_BACKOFF_MS * failed_attempt, MAX_BACKOFF_MS)
        return int(min(BASE_BACKOFF_MS * 2 ** (failed_attempt - 1), MAX_BACKOFF_MS))

    @staticmethod
    def from_descriptor(raw: Any) -> RetryPolicy:
        """Parse the ``retry`` dict of a descriptor (snake_case or camelCase keys)."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise TypeError(f"retry policy must be a dict, got {type(raw).__name__}")

        def pick(*names: str) -> Any:
            for name in names:
                if raw.get(name) is not None:
                    return raw[name]
            return None

        attempts = pick("maxAttempts", "max_attempts")
        attempts = 3 if attempts is None else attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"retry max_attempts must be an integer >= 1, got {attempts!r}")
        timeout = _positive_ms(pick("timeoutMs", "timeout_ms"), "timeout_ms")
        total = _positive_ms(pick("totalTimeoutMs", "total_timeout_ms"), "total_timeout_ms")
        backoff = pick("backoff", "backoff_strategy")
        backoff = "exponential" if backoff is None else str(backoff).lower()
        if backoff not in BACKOFF_KINDS:
            raise ValueError(
                f"retry backoff must be one of {', '.join(BACKOFF_KINDS)}; got {backoff!r}"
            )
        return RetryPolicy(attempts, timeout, total, backoff)


def _positive_ms(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"retry {name} must be a positive number of milliseconds, got {value!r}")
    return int(value)
