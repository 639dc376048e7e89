"""Commands that change instances: the change is observable through the client afterwards,
and what would silently do nothing is refused with exit 1."""

from __future__ import annotations

import json

from ..engine.support import (
    TIMEOUT_MS,
    completed,
    failed,
    history_kinds,
    uid,
    wait_for_custom_status,
)
from .conftest import Db
from .scenario import APPROVAL_STATUS


def waiting_instance(db: Db) -> str:
    iid = uid("approval")
    db.client.start_orchestration(iid, "Approval", None)
    wait_for_custom_status(db.client, iid, APPROVAL_STATUS)
    return iid


def finished_instance(db: Db) -> str:
    iid = uid("done")
    db.client.start_orchestration(iid, "Succeeds", "ok")
    completed(db.client.wait_for_orchestration(iid, TIMEOUT_MS))
    return iid


def test_raise_event_completes_the_waiting_instance(live: Db) -> None:
    iid = waiting_instance(live)
    result = live.cli("raise-event", iid, "approve", '{"approved": true, "by": "ops"}')
    assert (result.code, result.err) == (0, "")
    assert result.out.strip() == f"event 'approve' raised on {iid}"
    output = completed(live.client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert output == {"approved": True, "by": "ops"}


def test_raise_event_json_output_and_data_from_a_file(live: Db, tmp_path) -> None:
    iid = waiting_instance(live)
    data_file = tmp_path / "data.json"
    data_file.write_text('["from", "a", "file"]')
    result = live.cli("raise-event", iid, "approve", f"@{data_file}", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == {"instance_id": iid, "action": "raise-event",
                                      "event_name": "approve", "data": ["from", "a", "file"]}
    assert completed(live.client.wait_for_orchestration(iid, TIMEOUT_MS)) == ["from", "a", "file"]


def test_malformed_event_data_is_refused_and_changes_nothing(live: Db) -> None:
    iid = waiting_instance(live)
    result = live.cli("raise-event", iid, "approve", '{"approved": tru}')
    assert result.code == 2
    assert result.out == ""
    [line] = result.err.splitlines()
    assert line == ("duraflow: error: DATA (argument) is not valid JSON: Expecting value "
                    "at line 1 column 14 (char 13)")
    bare = live.cli("raise-event", iid, "approve", "yes")
    assert bare.code == 2
    assert "a string needs JSON quotes, e.g. '\"yes\"'" in bare.err
    assert live.client.get_status(iid).status == "Running"
    assert "ExternalEvent" not in history_kinds(live.client, iid)


def test_enqueue_delivers_to_the_event_queue(live: Db) -> None:
    iid = uid("inbox")
    live.client.start_orchestration(iid, "Inbox", None)
    wait_for_custom_status(live.client, iid, "reading")
    result = live.cli("enqueue", iid, "inbox", '{"n": 42}')
    assert result.code == 0, result.err
    assert completed(live.client.wait_for_orchestration(iid, TIMEOUT_MS)) == {"n": 42}
    bad = live.cli("enqueue", iid, "inbox", "[1, 2")
    assert bad.code == 2 and "not valid JSON" in bad.err


def test_cancel_fails_the_instance_with_the_reason(live: Db) -> None:
    iid = waiting_instance(live)
    result = live.cli("cancel", iid, "--reason", "stuck for a week", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == {"instance_id": iid, "action": "cancel",
                                      "reason": "stuck for a week"}
    error = failed(live.client.wait_for_orchestration(iid, TIMEOUT_MS))
    assert error == "canceled: stuck for a week"


def test_signals_to_a_finished_instance_are_refused(live: Db) -> None:
    iid = finished_instance(live)
    for argv in (("cancel", iid), ("raise-event", iid, "approve", "1"),
                 ("enqueue", iid, "inbox", "1")):
        result = live.cli(*argv)
        assert result.code == 1, argv
        assert result.err.startswith(f"duraflow: error: instance '{iid}' is already Completed")
    assert history_kinds(live.client, iid)[-1] == "OrchestrationCompleted"


def test_delete(live: Db) -> None:
    iid = finished_instance(live)
    result = live.cli("delete", iid, "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert (data["instance_id"], data["instances_deleted"], data["executions_deleted"]) == \
        (iid, 1, 1)
    assert data["events_deleted"] == 4
    assert live.client.get_status(iid).status == "NotFound"
    assert live.cli("instances", "show", iid).code == 3


def test_delete_running_needs_force(live: Db) -> None:
    iid = waiting_instance(live)
    refused = live.cli("delete", iid)
    assert refused.code == 1
    assert "still running. Use --force" in refused.err
    assert live.client.get_status(iid).status == "Running"
    forced = live.cli("delete", iid, "--force")
    assert forced.code == 0, forced.err
    assert forced.out.startswith(f"deleted {iid}: 1 instance(s)")
    assert live.client.get_status(iid).status == "NotFound"


def test_delete_a_sub_orchestration_is_refused(live: Db) -> None:
    root = uid("root")
    live.client.start_orchestration(root, "Root", root)
    completed(live.client.wait_for_orchestration(root, TIMEOUT_MS))
    result = live.cli("delete", f"{root}-middle")
    assert result.code == 1
    assert "Cannot delete sub-orchestration" in result.err
    tree = live.cli("delete", root, "--json")
    assert json.loads(tree.out)["instances_deleted"] == 3


def _looped(db: Db) -> str:
    iid = uid("loop")
    db.client.start_orchestration(iid, "Loop", 0)
    assert completed(db.client.wait_for_orchestration(iid, TIMEOUT_MS)) == 3
    assert db.client.list_executions(iid) == [1, 2, 3, 4]
    return iid


def test_prune_keep_last(live: Db) -> None:
    iid = _looped(live)
    result = live.cli("prune", "--keep-last", "2", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert (data["mode"], data["executions_deleted"], data["events_deleted"]) == \
        ("executions", 2, 4)
    assert live.client.list_executions(iid) == [3, 4]
    assert live.client.get_status(iid).status == "Completed"


def test_prune_defaults_keep_only_the_current_execution(live: Db) -> None:
    iid, other = _looped(live), _looped(live)
    waiting = waiting_instance(live)
    result = live.cli("prune", "--instance", iid)
    assert result.code == 0, result.err
    assert result.out.strip() == \
        "pruned 3 old execution(s) (6 event(s)) across 1 instance(s)"
    assert live.client.list_executions(iid) == [4]
    assert live.client.list_executions(other) == [1, 2, 3, 4]  # not named: untouched
    everything = json.loads(live.cli("prune", "--json").out)
    assert everything["executions_deleted"] == 3
    assert everything["instances_processed"] == 3
    assert live.client.list_executions(other) == [4]
    assert live.client.get_status(waiting).status == "Running"


def test_prune_completed_before_an_old_date_removes_nothing(live: Db) -> None:
    iid = _looped(live)
    result = live.cli("prune", "--completed-before", "2001-01-01", "--json")
    assert json.loads(result.out)["executions_deleted"] == 0
    assert live.client.list_executions(iid) == [1, 2, 3, 4]
    recent = live.cli("prune", "--completed-before", "now", "--json")
    assert json.loads(recent.out)["executions_deleted"] == 3


def test_prune_delete_instances(live: Db) -> None:
    done, looped, waiting = finished_instance(live), _looped(live), waiting_instance(live)
    unfiltered = live.cli("prune", "--delete-instances")
    assert unfiltered.code == 2
    assert "--delete-instances needs --completed-before TIME or --instance ID" in unfiltered.err
    assert live.cli("prune", "--delete-instances", "--keep-last", "2", "--instance", done).code == 2
    old = json.loads(live.cli("prune", "--delete-instances", "--completed-before", "30d",
                              "--json").out)
    assert old["instances_deleted"] == 0
    named = json.loads(live.cli("prune", "--delete-instances", "--instance", done,
                                "--instance", waiting, "--json").out)
    assert (named["instances_deleted"], named["skipped_running"]) == (1, [waiting])
    assert live.client.get_status(done).status == "NotFound"
    rest = live.cli("prune", "--delete-instances", "--completed-before", "now")
    assert rest.code == 0, rest.err
    assert rest.out.startswith("deleted 1 finished instance(s): 4 execution(s)")
    assert live.client.get_status(looped).status == "NotFound"
    assert live.client.get_status(waiting).status == "Running"


def test_unknown_instance_is_exit_3_for_every_command(live: Db) -> None:
    missing = "no-such-instance"
    for argv in (("instances", "show", missing), ("history", missing),
                 ("instances", "history", missing), ("tree", missing),
                 ("cancel", missing), ("raise-event", missing, "approve", "1"),
                 ("enqueue", missing, "inbox", "1"), ("delete", missing),
                 ("prune", "--instance", missing)):
        result = live.cli(*argv)
        assert result.code == 3, argv
        assert result.out == ""
        assert result.err == "duraflow: error: instance 'no-such-instance' not found\n"
    assert live.client.get_status(missing).status == "NotFound"
