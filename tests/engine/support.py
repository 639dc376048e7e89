"""Small helpers shared by the engine end-to-end tests (ids, waits, history reads)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from duraflow import Client, OrchestrationResult

T = TypeVar("T")

#: Generous wait for anything the engine should do promptly (loaded 2-core CI machines).
TIMEOUT_MS = 10_000
TIMEOUT_S = TIMEOUT_MS / 1000


def uid(label: str) -> str:
    """A fresh instance id, unique per call, readable in logs."""
    return f"{label}-{uuid.uuid4().hex[:12]}"


def poll_until(
    probe: Callable[[], T], what: str, timeout_s: float = TIMEOUT_S, interval_s: float = 0.02
) -> T:
    """Call ``probe`` until it returns something truthy (and return it); fail after
    ``timeout_s`` naming ``what`` was awaited. A deadline, never a fixed sleep."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


def wait_for_custom_status(
    client: Client, instance_id: str, expected: str | None, timeout_ms: int = TIMEOUT_MS
) -> OrchestrationResult:
    """Block until the instance's custom status equals ``expected`` (via status-change waits,
    no sleeps). Fails if the instance finishes first."""
    deadline = time.monotonic() + timeout_ms / 1000
    seen = 0
    while True:
        remaining = int((deadline - time.monotonic()) * 1000)
        if remaining <= 0:
            raise AssertionError(f"{instance_id}: custom status never became {expected!r}")
        result = client.wait_for_status_change(instance_id, seen, 20, remaining)
        if result.custom_status == expected and result.custom_status_version > 0:
            return result
        if result.is_terminal:
            raise AssertionError(
                f"{instance_id} finished ({result.status}, error={result.error!r}) before its "
                f"custom status became {expected!r}"
            )
        seen = result.custom_status_version


def history_kinds(client: Client, instance_id: str, execution_id: int = 1) -> list[str]:
    return [e.kind for e in client.read_execution_history(instance_id, execution_id)]


def completed(result: OrchestrationResult) -> Any:
    """Assert the instance completed and return its output (shows the error otherwise)."""
    assert result.status == "Completed", f"expected Completed, got {result!r}"
    return result.output


def failed(result: OrchestrationResult) -> str:
    """Assert the instance failed and return its error text."""
    assert result.status == "Failed", f"expected Failed, got {result!r}"
    assert result.error, f"a failed instance must carry an error: {result!r}"
    return result.error
