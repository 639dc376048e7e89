"""When ticks fall: cron in an IANA zone across DST changes, aliases, ``@every``, bad input.

The rule (duraflow/schedules/ticks.py): a local time that a DST change skips does not fire
that day; one that occurs twice fires once, at its first occurrence. All times here are
fixed dates, no clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from duraflow import InvalidCronError, UnknownTimeZoneError
from duraflow.schedules.planner import run_instance_id
from duraflow.schedules.ticks import (
    CronTicks,
    EveryTicks,
    cron_fields,
    every_ms_of,
    next_ticks,
    tick_source,
    zone_of,
)


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def utc(ticks: list[int]) -> list[str]:
    return [datetime.fromtimestamp(t / 1000, UTC).strftime("%Y-%m-%d %H:%M") for t in ticks]


def cron(expression: str, zone: str, after: str, count: int) -> list[str]:
    return utc(next_ticks(CronTicks(cron_fields(expression), ZoneInfo(zone)), ms(after), count))


def test_weekday_mornings_in_new_york_move_an_hour_in_utc_across_the_march_change() -> None:
    # DST began on Sunday 2026-03-08 02:00 EST: 09:00 is 14:00Z before, 13:00Z after.
    assert cron("0 9 * * MON-FRI", "America/New_York", "2026-03-05T00:00:00+00:00", 6) == [
        "2026-03-05 14:00", "2026-03-06 14:00",  # Thu, Fri (EST, UTC-5); no weekend
        "2026-03-09 13:00", "2026-03-10 13:00", "2026-03-11 13:00", "2026-03-12 13:00",
    ]


def test_a_time_the_spring_change_skips_does_not_fire_that_day() -> None:
    # Europe/Berlin jumps from 02:00 to 03:00 on 2026-03-29: there is no 02:30 that day.
    assert cron("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00+00:00", 3) == [
        "2026-03-28 01:30", "2026-03-30 00:30", "2026-03-31 00:30"]


def test_a_time_the_autumn_change_repeats_fires_once_at_its_first_occurrence() -> None:
    # On 2026-10-25 Berlin's clock shows 02:00-03:00 twice (CEST, then CET).
    assert cron("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00+00:00", 2) == [
        "2026-10-25 00:30", "2026-10-26 01:30"]  # 02:30 CEST = 00:30Z; the 01:30Z pass is not
    every_20 = cron("*/20 * * * *", "Europe/Berlin", "2026-10-24T23:50:00+00:00", 6)
    assert every_20 == ["2026-10-25 00:00", "2026-10-25 00:20", "2026-10-25 00:40",
                        "2026-10-25 02:00", "2026-10-25 02:20", "2026-10-25 02:40"]
    # Starting inside the repeated hour's second pass does not fire its wall times again.
    assert cron("30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00+00:00", 1) == [
        "2026-10-26 01:30"]


def test_cronsims_own_dst_handling_moves_a_skipped_time_which_is_why_the_wall_clock_is_walked(
) -> None:
    # Pinned so an upgrade that changes it is noticed: with an aware datetime cronsim (like
    # Debian cron) fires a skipped 02:30 at 03:00. Duraflow's rule says "not that day".
    berlin = ZoneInfo("Europe/Berlin")
    walk = CronSim("30 2 * * *", datetime(2026, 3, 28, 12, tzinfo=berlin))
    assert next(walk).isoformat() == "2026-03-29T03:00:00+02:00"


@pytest.mark.parametrize(("alias", "fields"), [
    ("@hourly", "0 * * * *"), ("@daily", "0 0 * * *"), ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"), ("@yearly", "0 0 1 1 *"), ("@ANNUALLY", "0 0 1 1 *")])
def test_aliases_mean_their_five_fields(alias: str, fields: str) -> None:
    assert cron_fields(alias) == fields


def test_names_ranges_lists_and_steps_are_cronsims() -> None:
    ticks = cron("15,45 8-9 * JAN,FEB sat", "UTC", "2026-01-01T00:00:00+00:00", 5)
    assert ticks == ["2026-01-03 08:15", "2026-01-03 08:45", "2026-01-03 09:15",
                     "2026-01-03 09:45", "2026-01-10 08:15"]


@pytest.mark.parametrize(("text", "every_ms"), [
    ("@every 90s", 90_000), ("@every 1h30m", 5_400_000), ("@EVERY 2m", 120_000),
    ("@every 1000", 1_000)])
def test_every_takes_a_duration(text: str, every_ms: int) -> None:
    assert every_ms_of(text) == every_ms


def test_every_counts_from_the_epoch_in_utc_whatever_the_zone() -> None:
    source = tick_source("@every 1h30m", None, "Asia/Kolkata")
    assert isinstance(source, EveryTicks)
    assert utc(next_ticks(source, ms("2026-03-01T01:00:00+00:00"), 3)) == [
        "2026-03-01 01:30", "2026-03-01 03:00", "2026-03-01 04:30"]


@pytest.mark.parametrize(("expression", "reason"), [
    ("61 * * * *", "minute"),
    ("* * * *", "4 fields; cron has 5"),
    ("0 0 * * * *", "6 fields; cron has 5"),
    ("0 0 30 2 *", "day-of-month"),
    ("@reboot", "unknown alias '@reboot'"),
    ("@every soon", "cannot read 'soon' as a duration"),
    ("@every 500ms", "the shortest is 1000 ms"),
    ("0 25 * * *", "hour"),
])
def test_a_bad_expression_says_what_is_wrong(expression: str, reason: str) -> None:
    with pytest.raises(InvalidCronError) as raised:
        every_ms_of(expression) or cron_fields(expression)
    assert isinstance(raised.value, ValueError)
    assert raised.value.field == "cron" and repr(expression) in str(raised.value)
    assert reason.lower() in str(raised.value).lower()


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../etc/passwd", "UTC+1"])
def test_an_unknown_zone_is_named(zone: str) -> None:
    with pytest.raises(UnknownTimeZoneError, match="unknown time zone") as raised:
        zone_of(zone)
    assert isinstance(raised.value, ValueError) and raised.value.field == "timezone"


def test_a_tick_names_its_instance_by_its_utc_second() -> None:
    assert run_instance_id("nightly", ms("2026-03-09T13:00:00.250+00:00")) == (
        "nightly-20260309T130000Z")
