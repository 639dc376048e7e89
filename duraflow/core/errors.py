"""Error details recorded in history, and the exceptions the engine raises.

``ErrorDetails`` mirrors duroxide's externally-tagged ``ErrorDetails`` enum so that
``OrchestrationResult.error`` strings read the same ("canceled: reason",
"nondeterministic: ...", "poison: ..."). Only ``Application`` errors ever reach user code;
the other categories fail the orchestration outright.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

APPLICATION = "Application"
INFRASTRUCTURE = "Infrastructure"
CONFIGURATION = "Configuration"
POISON = "Poison"

# Application kinds
ACTIVITY_FAILED = "ActivityFailed"
ORCHESTRATION_FAILED = "OrchestrationFailed"
PANICKED = "Panicked"
CANCELLED = "Cancelled"
# Configuration kinds
NONDETERMINISM = "Nondeterminism"
UNREGISTERED = "Unregistered"


@dataclass(frozen=True, slots=True)
class ErrorDetails:
    """Why something failed, in a form that survives the trip through history."""

    category: str
    kind: str
    message: str = ""
    retryable: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def display_message(self) -> str:
        if self.category == APPLICATION:
            if self.kind == CANCELLED:
                return f"canceled: {self.extra.get('reason', '')}"
            if self.kind == PANICKED:
                return f"orchestration panicked: {self.message}"
            return self.message
        if self.category == CONFIGURATION:
            if self.kind == NONDETERMINISM:
                return f"nondeterministic: {self.message}"
            return f"configuration: {self.message}"
        if self.category == INFRASTRUCTURE:
            return f"infrastructure:{self.extra.get('operation', '')}: {self.message}"
        return f"poison: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": self.kind, "message": self.message}
        if self.retryable:
            body["retryable"] = True
        body.update(self.extra)
        return {self.category: body}

    @staticmethod
    def from_dict(raw: dict[str, Any]) -> ErrorDetails:
        if not isinstance(raw, dict) or len(raw) != 1:
            return ErrorDetails(APPLICATION, ORCHESTRATION_FAILED, str(raw))
        ((category, body),) = raw.items()
        body = dict(body) if isinstance(body, dict) else {"message": str(body)}
        kind = str(body.pop("kind", ""))
        message = str(body.pop("message", ""))
        retryable = bool(body.pop("retryable", False))
        return ErrorDetails(category, kind, message, retryable, body)

    @property
    def is_application(self) -> bool:
        return self.category == APPLICATION


def application(kind: str, message: str) -> ErrorDetails:
    return ErrorDetails(APPLICATION, kind, message)


def cancelled(reason: str) -> ErrorDetails:
    return ErrorDetails(APPLICATION, CANCELLED, "", extra={"reason": reason})


def nondeterminism(message: str) -> ErrorDetails:
    return ErrorDetails(CONFIGURATION, NONDETERMINISM, message)


def infrastructure(operation: str, message: str) -> ErrorDetails:
    return ErrorDetails(INFRASTRUCTURE, "", message, extra={"operation": operation})


def poison(message: str) -> ErrorDetails:
    return ErrorDetails(POISON, "", message)


class NondeterminismError(BaseException):
    """Orchestration code and recorded history disagree; the instance cannot continue.

    A ``BaseException`` so that ``except Exception`` in orchestration code (which the check
    may run inside, e.g. in ``set_custom_status``) cannot swallow it.

    The determinism check (determinism.py) also says, for a person, what history recorded
    (``expected``, the id of that event in ``expected_event_id``) and what the code did
    instead (``got``), so the replay checker can report the first divergence field by field.
    """

    def __init__(
        self,
        message: str,
        *,
        expected_event_id: int | None = None,
        expected: str | None = None,
        got: str | None = None,
    ) -> None:
        super().__init__(message)
        self.expected_event_id = expected_event_id
        self.expected = expected
        self.got = got


class TaskFailedError(Exception):
    """Raised inside orchestration code when a yielded task failed.

    It is a plain ``Exception`` (duroxide throws ``Exception(msg)``), so ``except Exception``
    in user code catches it, and ``str(err)`` is the failure message.
    """

    def __init__(self, message: str, details: ErrorDetails | None = None) -> None:
        super().__init__(message)
        self.details = details
