"""When a schedule's ticks fall: cron expressions in an IANA time zone, or a fixed interval.

Cron is parsed and matched by cronsim (a well-kept library with Debian cron's field rules),
never by hand; this module adds the aliases (``@daily`` ...), ``@every <duration>`` and the
daylight-saving rule Duraflow promises:

* a local time that a DST change skips does **not** fire that day (``30 2 * * *`` in
  Europe/Berlin has no 02:30 on the last Sunday of March, so that day has no tick);
* a local time that occurs twice fires **once**, at its first occurrence.

cronsim's own DST handling is Debian's, which differs: given an aware datetime it moves a
skipped time to the next real minute (02:30 fires at 03:00) — see
tests/schedules/test_dst.py, which pins that — so it is not used. Instead cronsim walks the
*wall clock* (naive local datetimes, where every local time exists exactly once), and each
wall time it yields is mapped to UTC here: one that does not exist in the zone is dropped,
an ambiguous one takes its first occurrence (``fold=0``), and one not after the point asked
about (the second pass of a repeated hour) is passed over.

``@every`` intervals are counted from the Unix epoch in UTC (``@every 1h`` fires on the
hour, ``@every 90m`` at 00:00, 01:30, 03:00 UTC ...), so they ignore the time zone and DST
and every runtime agrees on them without stored state.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from duraflow.core.durations import DurationError, parse_duration_ms
from duraflow.schedules.errors import InvalidCronError, UnknownTimeZoneError

#: The aliases of the five-field forms (Vixie cron's names).
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
EVERY = "@every"
#: The shortest ``@every`` interval: a tick per second is the engine's resolution.
MIN_EVERY_MS = 1_000
_EPOCH = datetime(1970, 1, 1)


class TickSource(Protocol):
    """The ticks of one schedule, as epoch milliseconds."""

    def after(self, after_ms: int) -> Iterator[int]:
        """Every tick strictly after ``after_ms``, in order (possibly endless)."""


class EveryTicks:
    """Multiples of ``every_ms`` since the epoch."""

    def __init__(self, every_ms: int) -> None:
        self.every_ms = every_ms

    def first_at_or_after(self, at_ms: int) -> int:
        return -(-at_ms // self.every_ms) * self.every_ms

    def after(self, after_ms: int) -> Iterator[int]:
        tick = (after_ms // self.every_ms + 1) * self.every_ms
        while True:
            yield tick
            tick += self.every_ms


class CronTicks:
    """The matches of a five-field expression on the wall clock of ``zone`` (see the module
    docstring for the DST rule)."""

    def __init__(self, expression: str, zone: ZoneInfo) -> None:
        self.expression = expression
        self.zone = zone

    def after(self, after_ms: int) -> Iterator[int]:
        start = datetime.fromtimestamp(after_ms / 1000, UTC).astimezone(self.zone)
        walk = CronSim(self.expression, start.replace(tzinfo=None, fold=0))
        while True:
            try:
                wall: datetime = next(walk)
            except StopIteration:  # no match within cronsim's horizon (50 years)
                return
            at_ms = self._utc_ms(wall)
            if at_ms is not None and at_ms > after_ms:
                yield at_ms

    def _utc_ms(self, wall: datetime) -> int | None:
        """The first moment the zone's clock shows ``wall``; None when it never does."""
        first = wall.replace(tzinfo=self.zone, fold=0)
        if first.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) != wall:
            return None  # skipped by a DST change
        return int(first.timestamp() * 1000)


def cron_fields(expression: str) -> str:
    """The five fields an expression or alias means; ``InvalidCronError`` when it is not one
    cronsim accepts as five fields (six-field seconds forms are refused: a tick per second
    is ``@every 1s``)."""
    text = " ".join(expression.split())
    fields = ALIASES.get(text.lower(), text)
    if fields.startswith("@"):
        raise InvalidCronError(expression, f"unknown alias {fields.split()[0]!r} (use one of "
                                           f"{', '.join(ALIASES)} or @every <duration>)")
    if len(fields.split()) != 5:
        raise InvalidCronError(expression, f"{len(fields.split())} fields; cron has 5 "
                                           "(minute hour day-of-month month day-of-week)")
    try:
        CronSim(fields, _EPOCH)
    except CronSimError as exc:
        raise InvalidCronError(expression, str(exc)) from None
    return fields


def every_ms_of(expression: str) -> int | None:
    """The interval of ``@every <duration>`` (None when the expression is not that form)."""
    text = expression.strip()
    if not text.lower().startswith(EVERY):
        return None
    duration = text[len(EVERY):].strip()
    try:
        every_ms = parse_duration_ms(duration)
    except DurationError as exc:
        raise InvalidCronError(expression, str(exc)) from None
    check_every(every_ms, f"the interval of {expression!r}")
    return every_ms


def check_every(every_ms: int, what: str) -> None:
    if every_ms < MIN_EVERY_MS:
        raise InvalidCronError(str(every_ms), f"{what} is {every_ms} ms; the shortest is "
                                              f"{MIN_EVERY_MS} ms")


def zone_of(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``UnknownTimeZoneError`` when there is no such zone)."""
    if not isinstance(name, str) or not name.strip():
        raise UnknownTimeZoneError(str(name))
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownTimeZoneError(name) from None


def tick_source(cron: str | None, every_ms: int | None, timezone: str) -> TickSource:
    """The ticks of a stored schedule (its fields were validated when it was written)."""
    if every_ms is not None:
        return EveryTicks(every_ms)
    assert cron is not None
    interval = every_ms_of(cron)
    if interval is not None:
        return EveryTicks(interval)
    return CronTicks(cron_fields(cron), zone_of(timezone))


def next_ticks(source: TickSource, after_ms: int, count: int) -> list[int]:
    """Up to ``count`` ticks strictly after ``after_ms``."""
    found: list[int] = []
    for tick in source.after(after_ms):
        found.append(tick)
        if len(found) >= count:
            break
    return found


def utc_stamp(at_ms: int) -> str:
    """``YYYYMMDDTHHMMSSZ``: a tick's time in instance ids (second resolution)."""
    moment = _EPOCH + timedelta(milliseconds=at_ms - at_ms % 1000)
    return moment.strftime("%Y%m%dT%H%M%SZ")
