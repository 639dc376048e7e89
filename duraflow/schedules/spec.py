"""Checking what a client asks a schedule to be, before anything is written.

Every field is validated here, once, for ``create_schedule`` and ``update_schedule``: a bad
value raises a ``ValueError`` subclass naming the field (``InvalidScheduleError``;
``InvalidCronError`` and ``UnknownTimeZoneError`` for the two that people get wrong most),
and the store only ever holds schedules a runtime can fire.
"""

from __future__ import annotations

from typing import Any

from duraflow.core.limits import MAX_INSTANCE_ID_BYTES, check_name, encode_payload
from duraflow.core.version import SemVer
from duraflow.providers.schedule_items import OVERLAP_POLICIES, ScheduleSpec
from duraflow.schedules.errors import InvalidCronError, InvalidScheduleError
from duraflow.schedules.ticks import check_every, cron_fields, every_ms_of, zone_of

#: ``-YYYYMMDDTHHMMSSZ``: what a run's instance id adds to the schedule id.
RUN_SUFFIX_BYTES = 17
#: A run may not start later than its tick by more than the catch-up window; below a second
#: ordinary scheduling delay would count as missing the tick.
MIN_CATCHUP_WINDOW_MS = 1_000
#: The fields ``update_schedule`` may change (``paused`` and ``note`` have their own calls).
SPEC_FIELDS = ("orchestration", "input", "cron", "every_ms", "timezone", "overlap",
               "catchup_window_ms", "jitter_ms", "version")
#: The fields that decide when ticks fall: changing one restarts the schedule's clock.
TIMING_FIELDS = ("cron", "every_ms", "timezone")


def check_schedule_id(schedule_id: Any) -> str:
    """A schedule id leaves room for the run suffix within an instance id's limit."""
    return check_name("schedule id", schedule_id, MAX_INSTANCE_ID_BYTES - RUN_SUFFIX_BYTES)


def _whole_ms(field: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidScheduleError(field, f"must be a whole number of milliseconds, got "
                                          f"{value!r}")
    if value < minimum:
        raise InvalidScheduleError(field, f"must be at least {minimum} ms, got {value}")
    return value


def build_spec(
    orchestration: Any,
    input: Any = None,
    *,
    cron: Any = None,
    every_ms: Any = None,
    timezone: Any = "UTC",
    overlap: Any = "skip",
    catchup_window_ms: Any = 60_000,
    jitter_ms: Any = 0,
    version: Any = None,
    encoded_input: str | None = None,
) -> ScheduleSpec:
    """A checked ``ScheduleSpec``. ``encoded_input``: an input encoded already (an update
    that keeps the stored one); else ``input`` is encoded as the orchestration input."""
    check_name("orchestration name", orchestration)
    if version is not None:
        SemVer(check_name("orchestration version", version))
    if (cron is None) == (every_ms is None):
        raise InvalidScheduleError("cron", "give exactly one of cron (an expression, or "
                                           "'@every 30s') and every_ms")
    if cron is not None:
        if not isinstance(cron, str) or not cron.strip():
            raise InvalidCronError(str(cron), "an expression must be a non-empty string")
        cron = " ".join(cron.split())
        if every_ms_of(cron) is None:
            cron_fields(cron)
    else:
        every_ms = _whole_ms("every_ms", every_ms, 1)
        check_every(every_ms, "every_ms")
    if (every_ms or every_ms_of(cron or "") or 0) % 1000:
        raise InvalidScheduleError("every_ms", "an interval must be whole seconds (ticks are "
                                               "named by the second they fall on)")
    zone = zone_of(timezone)
    if overlap not in OVERLAP_POLICIES:
        raise InvalidScheduleError("overlap", f"unknown policy {overlap!r}; one of "
                                              f"{', '.join(OVERLAP_POLICIES)}")
    return ScheduleSpec(
        orchestration=orchestration,
        input=(encoded_input if encoded_input is not None
               else encode_payload("schedule input", input)),
        version=version,
        cron=cron,
        every_ms=every_ms,
        timezone=zone.key,
        overlap=overlap,
        catchup_window_ms=_whole_ms("catchup_window_ms", catchup_window_ms,
                                    MIN_CATCHUP_WINDOW_MS),
        jitter_ms=_whole_ms("jitter_ms", jitter_ms, 0),
    )


def updated_spec(current: ScheduleSpec, fields: dict[str, Any]) -> ScheduleSpec:
    """``current`` with ``fields`` replaced, checked as a whole. Naming ``cron`` clears
    ``every_ms`` and the other way round, so switching between the two is one update."""
    unknown = sorted(set(fields) - set(SPEC_FIELDS))
    if unknown:
        raise InvalidScheduleError(unknown[0], "update_schedule cannot change it (fields: "
                                               f"{', '.join(SPEC_FIELDS)}; pause and resume "
                                               "have their own calls)")
    merged: dict[str, Any] = {name: getattr(current, name) for name in SPEC_FIELDS
                              if name != "input"}
    if "cron" in fields and fields["cron"] is not None:
        merged["every_ms"] = None
    if "every_ms" in fields and fields["every_ms"] is not None:
        merged["cron"] = None
    merged.update({k: v for k, v in fields.items() if k != "input"})
    if "input" in fields:
        return build_spec(input=fields["input"], **merged)
    return build_spec(encoded_input=current.input, **merged)
