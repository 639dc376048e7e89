"""The installed ``duraflow`` script, as a shell script would run it: exit codes and output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..engine.support import TIMEOUT_MS, completed, uid
from .conftest import Db

SCRIPT = Path(sys.executable).parent / "duraflow"


def duraflow(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, check=False)


def test_exit_codes_of_the_installed_command(live: Db) -> None:
    assert SCRIPT.exists(), f"{SCRIPT} is not installed (make install)"
    db = live
    done = uid("done")
    db.client.start_orchestration(done, "Succeeds", {"n": 1})
    completed(db.client.wait_for_orchestration(done, TIMEOUT_MS))
    env = {"DURAFLOW_DATABASE_URL": db.url, "DURAFLOW_SCHEMA": db.schema or ""}

    listed = duraflow("instances", "list", "--json", env=env)
    assert (listed.returncode, listed.stderr) == (0, "")
    [row] = json.loads(listed.stdout)
    assert (row["instance_id"], row["status"], row["output"]) == (done, "Completed", {"n": 1})

    table = duraflow("instances", "list", env=env)
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split()[:3] == ["ID", "ORCHESTRATION", "VERSION"]

    cases = [
        (("instances", "show", "nope"), 3, "instance 'nope' not found"),
        (("raise-event", done, "approve", "{bad"), 2, "is not valid JSON"),
        (("cancel", done), 1, "is already Completed"),
    ]
    assert_exits(cases, env)


def test_connection_errors_of_the_installed_command(tmp_path: Path) -> None:
    cases = [
        (("metrics", "--database-url", str(tmp_path / "missing.db")), 4, "no SQLite database"),
        (("metrics", "--database-url", "postgresql://postgres@127.0.0.1:1/x"), 4,
         "cannot open the database"),
        (("instances", "list", "--limit", "many"), 2, "not a whole number"),
    ]
    assert_exits(cases, {"DURAFLOW_DATABASE_URL": str(tmp_path / "x.db")})
    assert not (tmp_path / "missing.db").exists()


def assert_exits(cases: list[tuple[tuple[str, ...], int, str]], env: dict[str, str]) -> None:
    for argv, code, message in cases:
        result = duraflow(*argv, env=env)
        assert result.returncode == code, (argv, result.stderr)
        assert message in result.stderr, argv
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
