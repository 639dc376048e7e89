"""What ``create_schedule``/``update_schedule`` accept: every bad field is a ``ValueError``
subclass naming the field, raised before anything is written."""

from __future__ import annotations

from typing import Any

import pytest

from duraflow import InvalidCronError, InvalidScheduleError, UnknownTimeZoneError
from duraflow.schedules.spec import build_spec, check_schedule_id, updated_spec


def spec(**fields: Any) -> Any:
    fields.setdefault("cron", "@every 10s")
    return build_spec("Nightly", {"n": 1}, **fields)


def test_a_good_spec_keeps_its_fields_with_the_input_encoded() -> None:
    made = spec(cron="  0  9 * * MON-FRI ", timezone="America/New_York", overlap="buffer_one",
                catchup_window_ms=5_000, jitter_ms=250, version="1.2.0")
    assert (made.cron, made.timezone, made.overlap) == (
        "0 9 * * MON-FRI", "America/New_York", "buffer_one")
    assert (made.input, made.every_ms, made.version) == ('{"n": 1}', None, "1.2.0")


@pytest.mark.parametrize(("fields", "error", "field", "words"), [
    ({"cron": None}, InvalidScheduleError, "cron", "exactly one of cron"),
    ({"every_ms": 10_000}, InvalidScheduleError, "cron", "exactly one of cron"),
    ({"cron": "nonsense"}, InvalidCronError, "cron", "1 fields"),
    ({"cron": ""}, InvalidCronError, "cron", "non-empty"),
    ({"cron": None, "every_ms": 1500}, InvalidScheduleError, "every_ms", "whole seconds"),
    ({"cron": None, "every_ms": 999}, InvalidCronError, "cron", "shortest is 1000"),
    ({"cron": None, "every_ms": "10s"}, InvalidScheduleError, "every_ms", "whole number"),
    ({"cron": "@every 1500ms"}, InvalidScheduleError, "every_ms", "whole seconds"),
    ({"timezone": "Europe/Atlantis"}, UnknownTimeZoneError, "timezone", "Europe/Atlantis"),
    ({"overlap": "replace"}, InvalidScheduleError, "overlap", "skip, buffer_one"),
    ({"catchup_window_ms": 10}, InvalidScheduleError, "catchup_window_ms", "at least 1000"),
    ({"jitter_ms": -1}, InvalidScheduleError, "jitter_ms", "at least 0"),
    ({"jitter_ms": True}, InvalidScheduleError, "jitter_ms", "whole number"),
])
def test_each_bad_field_is_named(fields: dict[str, Any], error: type[Exception], field: str,
                                 words: str) -> None:
    with pytest.raises(error) as raised:
        spec(**fields)
    assert isinstance(raised.value, ValueError)
    assert getattr(raised.value, "field", None) == field and words in str(raised.value)


def test_names_versions_inputs_and_ids_use_the_engines_checks() -> None:
    with pytest.raises(ValueError, match="orchestration name must not be empty"):
        build_spec("", cron="@daily")
    with pytest.raises(ValueError):
        spec(version="one")
    with pytest.raises(TypeError, match="schedule input is not JSON-serialisable"):
        build_spec("Nightly", object(), cron="@daily")
    assert check_schedule_id("x" * 495) == "x" * 495
    with pytest.raises(ValueError, match="schedule id is 496 bytes"):
        check_schedule_id("x" * 496)  # its runs' ids would pass the instance id limit


def test_an_update_switches_between_cron_and_every_and_keeps_the_rest() -> None:
    current = spec(timezone="Europe/Berlin", jitter_ms=100)
    to_cron = updated_spec(current, {"cron": "@hourly"})
    assert (to_cron.cron, to_cron.every_ms, to_cron.jitter_ms) == ("@hourly", None, 100)
    to_every = updated_spec(to_cron, {"every_ms": 60_000, "input": [1, 2]})
    assert (to_every.cron, to_every.every_ms, to_every.input) == (None, 60_000, "[1, 2]")
    assert to_every.timezone == "Europe/Berlin"
    with pytest.raises(InvalidScheduleError, match="paused: update_schedule cannot change it"):
        updated_spec(current, {"paused": True})
    with pytest.raises(UnknownTimeZoneError):
        updated_spec(current, {"timezone": "Nowhere"})
