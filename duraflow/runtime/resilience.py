"""Retrying provider calls through database hiccups, with backoff, via tenacity.

Retryable ``ProviderError``s (connection loss, deadlock, busy database) are retried with
exponential backoff; permanent ones (lost lock, constraint violation) are raised at once.
A dispatcher stays alive across an outage: it reports the failure (``Metrics.provider_error``,
which logs the outage once), backs off, and resumes when the database answers again, and
nothing is lost because nothing was acknowledged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from duraflow.providers.errors import ProviderError
from duraflow.runtime.metrics import Metrics

T = TypeVar("T")
log = logging.getLogger("duraflow.runtime")


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable


def _report(what: str, metrics: Metrics | None) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        if metrics is not None and exc is not None:
            metrics.provider_error(exc, what)
        log.debug("%s failed (attempt %d): %s; retrying in %.2fs", what,
                  state.attempt_number, exc, delay)

    return before_sleep


async def retry_call(
    op: Callable[[], Awaitable[T]],
    what: str,
    metrics: Metrics | None = None,
    attempts: int = 6,
    first_wait_s: float = 0.01,
    max_wait_s: float = 1.0,
) -> T:
    """Run ``op``, retrying retryable provider errors a bounded number of times.

    Each failure is reported to ``metrics`` (counted, and fed to the runtime's database
    health, which logs an outage once); the per-attempt lines are DEBUG.
    """
    try:  # the common case pays nothing for the retry machinery
        return await op()
    except ProviderError as exc:
        if not exc.retryable or attempts <= 1:
            raise
        if metrics is not None:
            metrics.provider_error(exc, what)
        log.debug("%s failed (attempt 1): %s; retrying", what, exc)
    retrying = AsyncRetrying(
        retry=retry_if_exception(is_retryable),
        wait=wait_exponential(multiplier=first_wait_s, min=first_wait_s, max=max_wait_s),
        stop=stop_after_attempt(attempts - 1),
        before_sleep=_report(what, metrics),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            started = metrics.database.now() if metrics is not None else 0.0
            result = await op()
            if metrics is not None:
                metrics.provider_ok(started)
            return result
    raise AssertionError("unreachable")  # pragma: no cover


class Backoff:
    """Backoff for a long-running loop: grows on consecutive failures, resets on success."""

    def __init__(self, first_s: float = 0.1, max_s: float = 3.0) -> None:
        self._retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=first_s, min=first_s, max=max_s)
        )
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def next_delay_s(self) -> float:
        self.failures += 1
        state = RetryCallState(self._retrying, None, (), {})
        state.attempt_number = self.failures
        return float(self._retrying.wait(state))
