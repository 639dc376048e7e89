"""Durations written the way people write them: ``90s``, ``1h30m``, ``30d``, or plain ms.

One reader for every place a person types a span of time (``@every 1h30m`` in a schedule,
``duraflow worker --retention 30d``, the ages of ``duraflow prune --completed-before``), so
the units and the errors are the same everywhere. Pure: no clock, it only counts.
"""

from __future__ import annotations

import re

#: Units from the smallest: ``ms`` must be tried before ``m`` (minutes).
UNITS_MS: dict[str, int] = {
    "ms": 1,
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")
FORMAT_HINT = "a whole number of milliseconds or a duration such as 90s, 1h30m, 12h, 30d"


class DurationError(ValueError):
    """The text is not a duration; ``str()`` says what was expected."""


def parse_duration_ms(text: str) -> int:
    """``text`` as milliseconds: plain digits are milliseconds, otherwise one or more
    ``<number><unit>`` parts (units ``ms``, ``s``, ``m``, ``h``, ``d``, ``w``, each at most
    once, any case, no spaces) that add up. Negative or fractional values are refused: a
    typo must not become a surprising span."""
    value = text.strip().lower()
    if value.isdigit():
        return int(value)
    total, position, seen = 0, 0, set()
    for match in _PART.finditer(value):
        unit = match.group(2)
        if match.start() != position or unit in seen:
            break
        seen.add(unit)
        total += int(match.group(1)) * UNITS_MS[unit]
        position = match.end()
    if not value or position != len(value):
        raise DurationError(f"cannot read {text!r} as a duration: use {FORMAT_HINT}")
    return total


def format_duration_ms(ms: int) -> str:
    """``ms`` the way ``parse_duration_ms`` reads it back: ``1h30m``, ``90s`` -> ``1m30s``,
    ``250`` -> ``250ms``, ``0`` -> ``0s``."""
    parts = []
    for unit in ("d", "h", "m", "s", "ms"):
        size = UNITS_MS[unit]
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(parts) or "0s"
