"""The context an activity function receives (duroxide-python's ``ActivityContext``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("duraflow.activity")


class ActivityContext:
    """Who is running (instance, activity, worker) plus cooperative cancellation."""

    def __init__(
        self,
        item: dict[str, Any],
        worker_id: str,
        client_factory: Callable[[], Any] | None = None,
        async_client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.instance_id: str = str(item["instance"])
        self.execution_id: int = int(item["execution_id"])
        self.activity_id: int = int(item["id"])
        self.activity_name: str = str(item["name"])
        self.orchestration_name: str = str(item.get("orchestration_name") or "unknown")
        self.orchestration_version: str = str(item.get("orchestration_version") or "unknown")
        self.session_id: str | None = item.get("session_id")
        self.worker_id = worker_id
        self._tag: str | None = item.get("tag")
        self._cancelled = threading.Event()
        self._client_factory = client_factory
        self._async_client_factory = async_client_factory

    def tag(self) -> str | None:
        return self._tag

    def is_cancelled(self) -> bool:
        """True once the orchestration no longer wants this result (lost a race, finished,
        was cancelled). Long-running activities should check it and return early."""
        return self._cancelled.is_set()

    def wait_cancelled(self, timeout_s: float | None = None) -> bool:
        """Block up to ``timeout_s`` for cancellation (for sync activities that sleep)."""
        return self._cancelled.wait(timeout_s)

    def get_client(self) -> Any:
        """A blocking ``Client`` on the same store (to start or signal other instances)."""
        if self._client_factory is None:
            raise RuntimeError(
                "get_client() is available under the blocking Runtime; with AsyncRuntime use "
                "get_async_client()"
            )
        return self._client_factory()

    def get_async_client(self) -> Any:
        """An ``AsyncClient`` on the same store (for ``async def`` activities)."""
        if self._async_client_factory is None:
            raise RuntimeError("no async client available for this runtime")
        return self._async_client_factory()

    def _cancel(self) -> None:
        self._cancelled.set()

    def _fields(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "execution_id": self.execution_id,
            "activity_name": self.activity_name,
            "activity_id": self.activity_id,
            "worker_id": self.worker_id,
        }

    def trace_info(self, message: Any) -> None:
        log.info("%s", message, extra=self._fields())

    def trace_warn(self, message: Any) -> None:
        log.warning("%s", message, extra=self._fields())

    def trace_error(self, message: Any) -> None:
        log.error("%s", message, extra=self._fields())

    def trace_debug(self, message: Any) -> None:
        log.debug("%s", message, extra=self._fields())
