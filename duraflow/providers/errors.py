"""What a provider raises: ``ProviderError`` and the few failures its callers tell apart.

Kept apart from the protocol so that a provider's SQL modules and the shared helpers can
raise them, and the dispatchers, client and CLI catch them, without importing the interface
or its data types. ``retryable`` is the one thing the runtime decides on:
back off and try again, or give up.
"""

from __future__ import annotations

from typing import Any


class ProviderError(RuntimeError):
    """A storage operation failed. ``retryable`` says whether trying again may succeed.

    A ``RuntimeError`` because duroxide-python reports provider failures as RuntimeError,
    and programs written for it catch that.
    """

    def __init__(self, operation: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(f"{operation}: {message}")
        self.operation = operation
        self.message = message
        self.retryable = retryable


class LockLostError(ProviderError):
    """The lock token is unknown, expired, or its row is gone. Never retryable."""

    def __init__(self, operation: str, message: str = "lock lost or expired") -> None:
        super().__init__(operation, message, retryable=False)


class SchemaTooNewError(ProviderError):
    """The store was migrated by a newer Duraflow than this one (not retryable): opening it
    would run code against tables it does not know. Both providers raise it."""

    def __init__(self, message: str) -> None:
        super().__init__("migrate", message, retryable=False)


class InstanceNotFoundError(ProviderError):
    """An admin call named an instance that does not exist."""

    def __init__(self, operation: str, instance_id: str) -> None:
        super().__init__(operation, f"instance '{instance_id}' not found", retryable=False)
        self.instance_id = instance_id


class UnknownBuildError(ProviderError):
    """A build operation named a build the store has never seen (no runtime with that build
    id ever started on it). Not retryable."""

    def __init__(self, operation: str, build_id: str, known: list[str] | None = None) -> None:
        have = f" (known: {', '.join(known)})" if known else " (the store knows no build yet)"
        super().__init__(operation, f"unknown build {build_id!r}{have}", retryable=False)
        self.build_id = build_id


class ScheduleNotFoundError(ProviderError, LookupError):
    """A call named a schedule that does not exist."""

    def __init__(self, operation: str, schedule_id: str) -> None:
        super().__init__(operation, f"schedule '{schedule_id}' not found", retryable=False)
        self.schedule_id = schedule_id


class ScheduleExistsError(ProviderError, ValueError):
    """``create_schedule`` named a schedule that exists already (update it instead)."""

    def __init__(self, operation: str, schedule_id: str) -> None:
        super().__init__(operation, f"schedule '{schedule_id}' already exists",
                         retryable=False)
        self.schedule_id = schedule_id


def describe(value: Any) -> str:
    """Short description of a value for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
