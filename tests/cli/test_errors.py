"""Bad URLs, unreachable databases and bad arguments: one line on stderr, the documented exit
code, no traceback, and nothing created."""

from __future__ import annotations

from pathlib import Path

import pytest

from duraflow import SqliteProvider
from duraflow.bridge import run_sync
from duraflow.cli import main

from .conftest import CliResult


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> CliResult:
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def one_line_error(result: CliResult) -> str:
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("duraflow: error: ")
    assert "Traceback" not in result.err
    return lines[0]


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DURAFLOW_DATABASE_URL", raising=False)
    monkeypatch.delenv("DURAFLOW_SCHEMA", raising=False)


def test_unreachable_postgres_is_exit_4(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "instances", "list", "--database-url",
                 "postgresql://postgres@127.0.0.1:1/test")
    assert result.code == 4
    line = one_line_error(result)
    assert "cannot open the database" in line and "127.0.0.1:1" in line


def test_unknown_postgres_host_is_exit_4(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "metrics", "--database-url",
                 "postgresql://postgres@no-such-host.invalid/test")
    assert result.code == 4
    assert "no-such-host.invalid" in one_line_error(result)


def test_missing_sqlite_file_is_exit_4_and_is_not_created(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "typo.db"
    for argv in (("instances", "list"), ("cancel", "x"), ("prune",)):
        result = run(capsys, *argv, "--database-url", str(path))
        assert result.code == 4, argv
        assert one_line_error(result) == \
            f"duraflow: error: no SQLite database at '{path}' (file does not exist)"
    assert not path.exists()
    prefixed = run(capsys, "metrics", "--database-url", f"sqlite:{path}")
    assert prefixed.code == 4
    assert not path.exists()


def test_a_file_that_is_not_sqlite_is_exit_4(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("certainly not a database, just some words in a file\n" * 20)
    result = run(capsys, "metrics", "--database-url", str(path))
    assert result.code == 4
    assert "not a database" in one_line_error(result)


def test_bad_urls_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    unsupported = run(capsys, "metrics", "--database-url", "mysql://root@db/app")
    assert unsupported.code == 2
    assert "unsupported database URL scheme 'mysql://'" in one_line_error(unsupported)
    memory = run(capsys, "metrics", "--database-url", ":memory:")
    assert memory.code == 2
    assert "in-memory SQLite database" in one_line_error(memory)
    missing = run(capsys, "metrics")
    assert missing.code == 2
    assert one_line_error(missing) == \
        "duraflow: error: no database: pass --database-url or set DURAFLOW_DATABASE_URL"


@pytest.mark.postgres
def test_invalid_schema_name_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    result = run(capsys, "metrics", "--database-url", postgres_url, "--schema", "drop table;")
    assert result.code == 2
    assert "invalid PostgreSQL schema name" in one_line_error(result)


def test_environment_supplies_the_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "env.db"
    run_sync(SqliteProvider.open(str(path)).close())  # an empty, initialised database
    monkeypatch.setenv("DURAFLOW_DATABASE_URL", str(path))
    result = run(capsys, "instances", "list", "--json")
    assert (result.code, result.out.strip(), result.err) == (0, "[]", "")
    # the flag wins over the environment
    flagged = run(capsys, "metrics", "--database-url", str(tmp_path / "other.db"))
    assert flagged.code == 4


def test_argument_errors_are_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    bad_status = run(capsys, "instances", "list", "--status", "Sleeping",
                     "--database-url", "x.db")
    assert bad_status.code == 2
    assert "unknown status 'Sleeping'" in bad_status.err
    bad_limit = run(capsys, "instances", "list", "--limit", "-3", "--database-url", "x.db")
    assert bad_limit.code == 2
    bad_time = run(capsys, "prune", "--completed-before", "last tuesday",
                   "--database-url", "x.db")
    assert bad_time.code == 2
    assert "cannot read 'last tuesday' as a time" in bad_time.err
    missing_data = run(capsys, "raise-event", "some-id", "approve")
    assert missing_data.code == 2
    assert "DATA" in missing_data.err
