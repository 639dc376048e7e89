"""Read-only commands against the fixed scenario: tables show the right rows and columns,
``--json`` carries full values under stable keys."""

from __future__ import annotations

import json
import re

from .conftest import Db
from .scenario import APPROVAL_STATUS

INSTANCE_KEYS = {"instance_id", "orchestration_name", "orchestration_version", "status",
                 "current_execution_id", "parent_instance_id", "created_at", "updated_at",
                 "output", "error", "build_id"}


def table(out: str) -> tuple[list[str], dict[str, list[str]]]:
    """Header cells and rows keyed by their first cell (columns are 2+ spaces apart)."""
    lines = [line for line in out.splitlines() if line.strip()]
    header = re.split(r"\s{2,}", lines[0].strip())
    rows = {}
    for line in lines[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells
    return header, rows


def ok_json(db: Db, *argv: str) -> object:
    result = db.cli(*argv, "--json")
    assert result.code == 0, result.err
    assert result.err == ""
    return json.loads(result.out)


def test_instances_list_table(populated: Db) -> None:
    ids = populated.ids
    result = populated.cli("instances", "list")
    assert result.code == 0, result.err
    header, rows = table(result.out)
    assert header == ["ID", "ORCHESTRATION", "VERSION", "STATUS", "CREATED (UTC)",
                      "UPDATED (UTC)", "OUTPUT / ERROR", "BUILD"]
    assert set(rows) == set(ids.values())
    assert rows[ids["done"]][1:4] == ["Succeeds", "1.0.0", "Completed"]
    assert rows[ids["done"]][6:] == ['{"v": 1}', "-"]  # no builds in this store
    assert rows[ids["bad"]][1:4] == ["Fails", "1.0.0", "Failed"]
    assert rows[ids["bad"]][6] == "ValueError: planned failure"  # the traceback's last line
    assert rows[ids["waiting"]][3] == "Running"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows[ids["done"]][4])


def test_instances_list_json_has_full_values(populated: Db) -> None:
    ids = populated.ids
    data = ok_json(populated, "instances", "list")
    assert isinstance(data, list)
    by_id = {item["instance_id"]: item for item in data}
    assert set(by_id) == set(ids.values())
    assert all(set(item) == INSTANCE_KEYS for item in data)
    assert by_id[ids["done"]]["output"] == {"v": 1}
    assert by_id[ids["done"]]["error"] is None
    error = by_id[ids["bad"]]["error"]
    assert error.startswith("Traceback") and "ValueError: planned failure" in error
    assert by_id[ids["bad"]]["output"] is None
    assert by_id[ids["middle"]]["parent_instance_id"] == ids["root"]
    assert by_id[ids["loop"]]["current_execution_id"] == 4
    assert isinstance(by_id[ids["done"]]["created_at"], int)


def test_instances_list_status_filter_and_limit(populated: Db) -> None:
    ids = populated.ids
    failed_only = populated.cli("instances", "list", "--status", "failed")
    assert failed_only.code == 0
    assert set(table(failed_only.out)[1]) == {ids["bad"]}
    running = ok_json(populated, "instances", "list", "--status", "Running")
    assert {item["instance_id"] for item in running} == {ids["waiting"], ids["gpu"]}
    assert len(ok_json(populated, "instances", "list", "--limit", "2")) == 2
    empty = populated.cli("instances", "list", "--status", "ContinuedAsNew")
    assert (empty.code, empty.out.strip()) == (0, "no instances with status ContinuedAsNew")


def test_instances_show(populated: Db) -> None:
    ids = populated.ids
    result = populated.cli("instances", "show", ids["waiting"])
    assert result.code == 0, result.err
    fields = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1)
                  for line in result.out.splitlines() if line.strip())
    assert fields["Instance"] == ids["waiting"]
    assert fields["Orchestration"] == "Approval 1.0.0"
    assert fields["Status"] == "Running"
    assert fields["Custom status"] == APPROVAL_STATUS

    data = ok_json(populated, "instances", "show", ids["loop"])
    assert isinstance(data, dict)
    assert data["status"] == "Completed" and data["output"] == 3
    assert [e["execution_id"] for e in data["executions"]] == [1, 2, 3, 4]
    assert [e["status"] for e in data["executions"]] == ["ContinuedAsNew"] * 3 + ["Completed"]
    assert data["stats"]["history_event_count"] > 0
    assert ok_json(populated, "instances", "show", ids["waiting"])["custom_status"] == \
        APPROVAL_STATUS


def test_show_lists_executions_of_a_continued_instance(populated: Db) -> None:
    result = populated.cli("instances", "show", populated.ids["loop"])
    assert result.code == 0
    assert "Executions" in result.out
    executions = [line.split()[:2] for line in result.out.splitlines()
                  if re.match(r"^\d+\s", line)]
    assert executions == [["1", "ContinuedAsNew"], ["2", "ContinuedAsNew"],
                          ["3", "ContinuedAsNew"], ["4", "Completed"]]


def test_history(populated: Db) -> None:
    done = populated.ids["done"]
    result = populated.cli("history", done)
    assert result.code == 0, result.err
    kinds = [line.split()[1] for line in result.out.splitlines() if re.match(r"^\d+\s", line)]
    assert kinds == ["OrchestrationStarted", "ActivityScheduled", "ActivityCompleted",
                     "OrchestrationCompleted"]
    data = ok_json(populated, "history", done)
    assert isinstance(data, dict)
    assert data["execution_id"] == 1
    assert [e["kind"] for e in data["events"]] == kinds
    assert data["events"][0]["data"] == {"name": "Succeeds", "version": "1.0.0",
                                         "input": {"v": 1}}
    assert data["events"][2]["source_event_id"] == 2
    assert ok_json(populated, "instances", "history", done) == data  # the alias


def test_history_of_an_earlier_execution(populated: Db) -> None:
    loop = populated.ids["loop"]
    first = ok_json(populated, "history", loop, "--execution", "1")
    assert isinstance(first, dict)
    assert [e["kind"] for e in first["events"]] == ["OrchestrationStarted",
                                                    "OrchestrationContinuedAsNew"]
    missing = populated.cli("history", loop, "--execution", "9")
    assert missing.code == 2
    assert "has no execution 9 (it has 1, 2, 3, 4)" in missing.err


def test_failed_history_shows_the_error_line(populated: Db) -> None:
    result = populated.cli("history", populated.ids["bad"])
    last = [line for line in result.out.splitlines() if line.strip()][-1]
    assert "OrchestrationFailed" in last and last.endswith("ValueError: planned failure")


def test_tree(populated: Db) -> None:
    ids = populated.ids
    result = populated.cli("tree", ids["root"])
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == f"{ids['root']}  Root 1.0.0  (Completed)"
    assert lines[1] == f"└── {ids['middle']}  Middle 1.0.0  (Completed)"
    assert lines[2] == f"    └── {ids['leaf']}  Succeeds 1.0.0  (Completed)"
    data = ok_json(populated, "tree", ids["root"])
    assert isinstance(data, dict)
    assert data["instance_id"] == ids["root"]
    [middle] = data["children"]
    assert (middle["instance_id"], middle["orchestration_name"]) == (ids["middle"], "Middle")
    [leaf] = middle["children"]
    assert (leaf["instance_id"], leaf["status"], leaf["children"]) == \
        (ids["leaf"], "Completed", [])


def test_tree_of_a_lone_instance(populated: Db) -> None:
    data = ok_json(populated, "tree", populated.ids["done"])
    assert isinstance(data, dict)
    assert data["children"] == []


def test_metrics(populated: Db) -> None:
    # done, bad, waiting, root, middle, leaf, loop, gpu; loop has 4 executions
    expected = {"total_instances": 8, "running_instances": 2, "completed_instances": 5,
                "failed_instances": 1, "total_executions": 11}
    data = ok_json(populated, "metrics")
    assert isinstance(data, dict)
    assert {k: data[k] for k in expected} == expected
    assert data["total_events"] > 0
    result = populated.cli("metrics")
    header, rows = table(result.out)
    assert header == ["METRIC", "VALUE"]
    assert rows["total_instances"] == ["total_instances", "8"]
    assert rows["failed_instances"] == ["failed_instances", "1"]


def test_queues(populated: Db) -> None:
    data = ok_json(populated, "queues")
    assert data == {"orchestrator_queue": 0, "worker_queue": 1, "timer_queue": 0,
                    "activity_backlog": {"gpu": 1}}
    result = populated.cli("queues")
    assert result.code == 0
    assert "worker        1" in result.out
    assert re.search(r"^gpu\s+1$", result.out, re.MULTILINE)


def test_workers_list(populated: Db) -> None:
    data = ok_json(populated, "workers", "list")
    assert isinstance(data, list)
    [worker] = data
    assert worker["worker_node_id"] == "cli-test-pod-0"
    assert worker["alive"] is True
    assert worker["orchestrations"]["Approval"] == ["1.0.0"]
    assert "Work" in worker["activities"]
    result = populated.cli("workers", "list")
    header, rows = table(result.out)
    assert header[:4] == ["WORKER NODE", "ALIVE", "BUILD", "HOST"]
    assert rows["cli-test-pod-0"][1:3] == ["yes", "-"]
    assert worker["build_id"] is None
    def unbeaten(rows: list[dict[str, object]]) -> list[dict[str, object]]:
        return [{**row, "last_seen_at_ms": None} for row in rows]  # a heartbeat may land between

    assert unbeaten(ok_json(populated, "workers", "list", "--all")) == unbeaten(data)
