"""``duraflow schedules ...``: each verb does what the schedule API does, shows it as a table
or ``--json``, and a mistake is one line with the documented exit code (2 bad input, 3 no
such schedule, 1 refused)."""

from __future__ import annotations

import json

from ..engine.support import TIMEOUT_MS, completed, poll_until
from .conftest import CliResult, Db


def one_line(result: CliResult, code: int) -> str:
    assert result.code == code, result
    assert result.out == "" and len(result.err.splitlines()) == 1, result.err
    assert result.err.startswith("duraflow: error: ")
    return result.err.strip()


def test_create_list_show_pause_resume_update_and_delete(live: Db) -> None:
    created = live.cli("schedules", "create", "nightly", "--orchestration", "Succeeds",
                       "--cron", "0 2 * * *", "--timezone", "Europe/Berlin", "--input",
                       '{"report": "daily"}', "--overlap", "buffer_one",
                       "--catchup-window", "10m", "--jitter", "30s")
    assert (created.code, created.err) == (0, "")
    assert created.out.startswith("created schedule nightly (0 2 * * *, Europe/Berlin); next "
                                  "run ") and created.out.strip().endswith(":00:00 UTC")
    listed = live.cli("schedules", "list")
    header, row = listed.out.splitlines()
    assert header.split()[:4] == ["ID", "ORCHESTRATION", "SCHEDULE", "TIME"]
    assert row.split()[:9] == ["nightly", "Succeeds", "0", "2", "*", "*", "*", "Europe/Berlin",
                               "buffer_one"]
    shown = json.loads(live.cli("schedules", "show", "nightly", "--json").out)
    assert (shown["input"], shown["catchup_window_ms"], shown["jitter_ms"]) == (
        {"report": "daily"}, 600_000, 30_000)
    assert len(shown["next_run_times_ms"]) == 5 and shown["last_runs"] == []

    paused = live.cli("schedules", "pause", "nightly", "--note", "db maintenance")
    assert paused.out.strip() == "paused schedule nightly"
    text = live.cli("schedules", "show", "nightly").out
    assert "yes (db maintenance)" in text and "Next runs        -" in text
    assert live.cli("schedules", "resume", "nightly").code == 0
    updated = json.loads(live.cli("schedules", "update", "nightly", "--every", "1h30m",
                                  "--json").out)
    assert (updated["cron"], updated["every_ms"], updated["paused"]) == (None, 5_400_000, False)
    assert "@every 1h30m" in live.cli("schedules", "list").out
    assert live.cli("schedules", "delete", "nightly").out.strip() == "deleted schedule nightly"
    assert json.loads(live.cli("schedules", "list", "--json").out) == []
    assert live.cli("schedules", "list").out.strip() == "no schedules"


def test_trigger_and_backfill_start_runs(live: Db) -> None:
    assert live.cli("schedules", "create", "s", "--orchestration", "Succeeds", "--every",
                    "1h", "--input", '"hi"', "--overlap", "allow_all").code == 0
    assert live.cli("schedules", "trigger", "s").code == 0
    backfilled = live.cli("schedules", "backfill", "s", "--from", "2026-12-01T00:00:00Z",
                          "--to", "2026-12-01T02:00:00+00:00")
    assert backfilled.out.strip() == ("backfilling schedule s: ticks from 2026-12-01 00:00:00 "
                                      "to 2026-12-01 02:00:00 UTC")
    info = poll_until(lambda: len(live.client.describe_schedule("s").last_runs) == 3
                      and live.client.describe_schedule("s"), "a triggered and two backfilled runs")
    ids = sorted(run.instance_id for run in info.last_runs)
    assert ids[:2] == ["s-20261201T000000Z", "s-20261201T010000Z"]
    for instance_id in ids:
        assert completed(live.client.wait_for_orchestration(instance_id, TIMEOUT_MS)) == "hi"
    shown = live.cli("schedules", "show", "s").out
    assert "Recent runs" in shown and "s-20261201T010000Z" in shown


def test_mistakes_are_one_line_with_their_exit_code(live: Db) -> None:
    def create(*flags: str) -> CliResult:
        return live.cli("schedules", "create", "x", "--orchestration", "Succeeds", *flags)

    assert "cron: invalid expression '61 * * * *'" in one_line(create("--cron", "61 * * * *"), 2)
    assert "unknown time zone 'Mars/Base'" in one_line(
        create("--cron", "@daily", "--timezone", "Mars/Base"), 2)
    assert "--every: cannot read '10x' as a duration" in one_line(create("--every", "10x"), 2)
    assert "--input (argument) is not valid JSON" in one_line(
        create("--every", "10s", "--input", "yes"), 2)
    assert create("--every", "10s").code == 0
    assert one_line(create("--every", "10s"), 1) == (
        "duraflow: error: schedule 'x' already exists (use update)")
    for verb in (("show",), ("pause",), ("resume",), ("trigger",), ("delete",),
                 ("update", "--jitter", "1s"),
                 ("backfill", "--from", "2h", "--to", "now")):
        result = live.cli("schedules", verb[0], "nope", *verb[1:])
        assert one_line(result, 3) == "duraflow: error: schedule 'nope' not found", verb
    assert "--from: cannot read 'yesterday' as a time" in one_line(
        live.cli("schedules", "backfill", "x", "--from", "yesterday", "--to", "now"), 2)
    assert "end_ms: must be after start_ms" in one_line(
        live.cli("schedules", "backfill", "x", "--from", "now", "--to", "2h"), 2)
    assert "nothing to update" in one_line(live.cli("schedules", "update", "x"), 2)
