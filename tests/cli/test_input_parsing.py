"""How DATA and TIME arguments are read: what a script may pass, and the errors it gets."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from duraflow.cli.admin import CliError, parse_json_data
from duraflow.cli.prune import parse_time

NOW = int(datetime(2026, 12, 3, 12, 0, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(("text", "expected"), [
    ("now", NOW),
    ("45s", NOW - 45_000),
    ("90m", NOW - 90 * 60_000),
    ("12h", NOW - 12 * 3_600_000),
    ("30d", NOW - 30 * 86_400_000),
    ("2w", NOW - 14 * 86_400_000),
    ("1h30m", NOW - 90 * 60_000),
    ("2026-12-01", int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)),
    ("2026-12-01T08:30:00Z", int(datetime(2026, 12, 1, 8, 30, tzinfo=UTC).timestamp() * 1000)),
    ("2026-12-01T10:30:00+02:00",
     int(datetime(2026, 12, 1, 8, 30, tzinfo=UTC).timestamp() * 1000)),
    ("1796000000000", 1_796_000_000_000),
])
def test_times(text: str, expected: int) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "30 days", "-5d", "2026-13-01", ""])
def test_unreadable_times(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"cannot read .* as a time"):
        parse_time(text, NOW)


def test_data_is_json() -> None:
    assert parse_json_data('{"a": [1, 2.5, null, "x"]}', "DATA") == {"a": [1, 2.5, None, "x"]}
    assert parse_json_data('"quoted"', "DATA") == "quoted"
    assert parse_json_data("17", "DATA") == 17


def test_data_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"from": "stdin"}\n'))
    assert parse_json_data("-", "DATA") == {"from": "stdin"}


def test_data_errors_say_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CliError) as missing:
        parse_json_data(f"@{tmp_path / 'nope.json'}", "DATA")
    assert missing.value.code == 2
    assert "cannot read DATA from" in missing.value.message
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "a": 1\n  "b": 2\n}')
    with pytest.raises(CliError) as bad_file:
        parse_json_data(f"@{broken}", "DATA")
    assert bad_file.value.code == 2
    assert bad_file.value.message == (
        f"DATA (file '{broken}') is not valid JSON: Expecting ',' delimiter at line 3 "
        "column 3 (char 13)")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CliError, match=r"DATA \(stdin\) is not valid JSON"):
        parse_json_data("-", "DATA")
