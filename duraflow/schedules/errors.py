"""What a bad schedule gets: a ``ValueError`` subclass naming the field and what is wrong.

Raised by ``create_schedule`` / ``update_schedule`` before anything is written, so a bad
expression or zone never reaches the store (where no runtime could fire it) and the caller
learns which value to fix. An unknown schedule id is a store-side error
(``duraflow.providers.errors.ScheduleNotFoundError``).
"""

from __future__ import annotations


class InvalidScheduleError(ValueError):
    """A schedule field cannot be used; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class InvalidCronError(InvalidScheduleError):
    """The cron expression (or ``@every`` interval) is not one Duraflow can fire."""

    def __init__(self, expression: str, reason: str) -> None:
        super().__init__("cron", f"invalid expression {expression!r}: {reason}")
        self.expression = expression


class UnknownTimeZoneError(InvalidScheduleError):
    """The time zone is not an IANA zone name (``Europe/Berlin``, ``UTC``)."""

    def __init__(self, name: str) -> None:
        super().__init__("timezone", f"unknown time zone {name!r} (use an IANA name such as "
                                     "'Europe/Berlin' or 'UTC')")
        self.zone = name
