"""Reading a point in time from the command line (``--completed-before``, ``--from``/``--to``).

One reader for every admin command that takes a time, so ``duraflow prune`` and ``duraflow
schedules backfill`` accept the same spellings: ``now``, an age (``30d``, ``12h``, ``1h30m``:
that long ago; the units of ``duraflow.core.durations``), an ISO 8601 date or time (UTC
unless it says otherwise) or epoch milliseconds.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from duraflow.core.durations import DurationError, parse_duration_ms

TIME_HINT = ("use now, an age such as 30d / 12h / 90m, an ISO date such as 2026-12-01 or "
             "2026-12-01T08:00:00Z, or epoch milliseconds")


def parse_time(text: str, now_ms: int | None = None) -> int:
    """A time as epoch milliseconds (see the module docstring); ``ArgumentTypeError``
    naming the text when it is none of those."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    value = text.strip()
    if value.lower() == "now":
        return now
    if value.isdigit():
        return int(value)
    try:
        return now - parse_duration_ms(value)
    except DurationError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"cannot read {text!r} as a time: {TIME_HINT}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
