"""``duraflow replay-check``: the scenario's histories against changed code, from the store
and from exported files. A compatible change passes (exit 0); an incompatible one exits 1
and names the first diverging event; bad input is one line and exit 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .conftest import Db

SAME, INSERTED = "tests.cli.replay_apps:same", "tests.cli.replay_apps:inserted"


def check(db: Db, *argv: str) -> tuple[int, dict[str, dict[str, object]]]:
    result = db.cli("replay-check", *argv, "--json")
    assert result.err == "", result.err
    data = json.loads(result.out)
    return result.code, {o["orchestration"]: o for o in data["orchestrations"]}


def export(db: Db, instance_id: str, path: Path) -> str:
    result = db.cli("history", instance_id, "--json")
    assert result.code == 0, result.err
    path.write_text(result.out)
    return str(path)


def test_stored_histories_replay_on_the_code_that_made_them(populated: Db) -> None:
    code, found = check(populated, "--app", SAME)
    assert code == 0
    assert {"Succeeds", "Fails", "Approval", "Root", "Middle", "Loop", "GpuJob"} <= set(found)
    for name, tally in found.items():
        assert tally["checked"] == tally["reproduced"] >= 1, (name, tally)
    result = populated.cli("replay-check", "--app", "tests.cli.replay_apps:refactored")
    assert result.code == 0, result.err
    assert re.search(r"^Succeeds\s+1\.0\.0\s+(\d+)\s+\1\s+0\s+0$", result.out, re.M), result.out


def test_an_inserted_step_fails_the_check_and_names_the_event(populated: Db) -> None:
    code, found = check(populated, "--app", INSERTED, "--orchestration", "Succeeds")
    assert code == 1
    assert set(found) == {"Succeeds"}
    tally = found["Succeeds"]
    assert tally["diverged"] == tally["checked"] and tally["reproduced"] == 0
    first = tally["first_divergence"]
    assert isinstance(first, dict)
    assert (first["index"], first["event_id"]) == (1, 2)
    assert first["expected"].startswith("ActivityScheduled(name='Work'")
    assert first["got"].startswith("ActivityScheduled(name='Validate'")
    table = populated.cli("replay-check", "--app", INSERTED, "--sample", "1")
    assert table.code == 1
    assert "First divergence" in table.out
    row = next(line for line in table.out.splitlines()
               if line.startswith("Succeeds") and "Validate" in line)
    assert "ActivityScheduled(name='Work'" in row and re.search(r"\s1\s+2\s", row), row


def test_exported_histories_are_checked_one_or_many(populated: Db, tmp_path: Path) -> None:
    done = export(populated, populated.ids["done"], tmp_path / "done.json")
    loop = export(populated, populated.ids["loop"], tmp_path / "loop.json")
    code, found = check(populated, "--app", SAME, "--history-file", done, loop)
    assert code == 0 and found["Succeeds"]["checked"] == found["Loop"]["checked"] == 1
    code, found = check(populated, "--app", INSERTED, "--history-file", done)
    assert code == 1
    first = found["Succeeds"]["first_divergence"]
    assert isinstance(first, dict) and first["history"] == populated.ids["done"]
    assert first["index"] == 1


def test_a_version_the_app_does_not_register_cannot_run(populated: Db, tmp_path: Path) -> None:
    done = export(populated, populated.ids["done"], tmp_path / "done.json")
    result = populated.cli("replay-check", "--app", "tests.cli.replay_apps:empty",
                           "--history-file", done)
    assert result.code == 2 and "registers no orchestration" in result.err
    data = json.loads(Path(done).read_text())
    data["events"][0]["recorded"]["data"]["version"] = "9.0.0"
    Path(done).write_text(json.dumps(data))
    code, found = check(populated, "--app", SAME, "--history-file", done)
    assert code == 1 and found["Succeeds"]["unregistered"] == 1


def test_bad_input_is_one_line_and_exit_2(populated: Db, tmp_path: Path) -> None:
    not_history = tmp_path / "metrics.json"
    not_history.write_text('{"total_instances": 3}')
    display_only = tmp_path / "old.json"
    display_only.write_text('{"events": [{"event_id": 1, "kind": "OrchestrationStarted"}]}')
    for argv, says in [
        (["--app", SAME, "--history-file", str(not_history)], "not a history"),
        (["--app", SAME, "--history-file", str(display_only)], "no recorded form"),
        (["--app", SAME, "--history-file", str(tmp_path / "missing.json")], "cannot read"),
        (["--app", "tests.cli.no_such_module"], "cannot import module"),
        (["--app", "tests.cli.replay_apps:raises"], "failed while registering"),
    ]:
        result = populated.cli("replay-check", *argv)
        assert result.code == 2, (argv, result.err)
        assert result.out == ""
        assert says in result.err and len(result.err.strip().splitlines()) == 1, result.err
