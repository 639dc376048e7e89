"""``duraflow builds list | promote | drain`` and ``instances move``: a rollout by hand.

Runtimes with build ids run in the test process on the store the command opens; an unknown
build is exit 3 and one line, like an unknown instance."""

from __future__ import annotations

import json
import re

from ..engine.support import poll_until, uid, wait_for_custom_status
from .conftest import Db
from .scenario import APPROVAL_STATUS, register_scenario


def rows(out: str) -> dict[str, list[str]]:
    return {cells[0]: cells for cells in (re.split(r"\s{2,}", line.strip())
                                          for line in out.splitlines()[1:] if line.strip())}


def test_a_store_without_builds(blank: Db) -> None:  # no runtime with a build id
    result = blank.cli("builds", "list")
    assert (result.code, result.out.strip()) == (0, "no builds: no runtime with a build id "
                                                     "has started on this store")
    assert json.loads(blank.cli("builds", "list", "--json").out) == []


def test_a_manual_rollout(blank: Db) -> None:
    blank.start_runtime(register_scenario, build_id="v1", worker_node_id="v1-0")
    waiting = uid("approval")
    blank.client.start_orchestration(waiting, "Approval", None)
    wait_for_custom_status(blank.client, waiting, APPROVAL_STATUS)
    poll_until(lambda: rows(blank.cli("builds", "list").out).get("v1", [""] * 4)[2] == "1",
               "v1's worker in the registry")
    assert rows(blank.cli("builds", "list").out)["v1"][:4] == ["v1", "current", "1", "1"]

    blank.start_runtime(register_scenario, build_id="v2", build_auto_promote=False)
    listed = json.loads(blank.cli("builds", "list", "--json").out)
    assert [(b["build_id"], b["state"], b["pinned_running"]) for b in listed] == [
        ("v1", "current", 1), ("v2", "pending", 0)]
    assert set(listed[0]) == {"build_id", "state", "live_workers", "pinned_running",
                              "first_seen_at"}

    promoted = blank.cli("builds", "promote", "v2")
    assert (promoted.code, promoted.out.strip()) == (0, "build v2 is current; v1 draining")
    moved = blank.cli("instances", "move", waiting, "--build", "v2", "--json")
    assert moved.code == 0, moved.err
    assert json.loads(moved.out) == {"instance_id": waiting, "action": "move",
                                     "from_build": "v1", "build_id": "v2"}
    assert rows(blank.cli("instances", "list").out)[waiting][-1] == "v2"
    assert "Build             v2" in blank.cli("instances", "show", waiting).out
    assert json.loads(blank.cli("instances", "show", waiting, "--json").out)["build_id"] == "v2"
    blank.client.raise_event(waiting, "approve", "yes")
    assert blank.client.wait_for_orchestration(waiting, 10_000).output == "yes"

    moved_again = blank.cli("instances", "move", waiting, "--build", "v1")
    assert moved_again.code == 1 and "is Completed: only an instance" in moved_again.err
    drained = blank.cli("builds", "drain", "v2", "--json")
    assert json.loads(drained.out) == {"build_id": "v2", "action": "drain", "state": "draining"}


def test_unknown_builds_and_instances_are_exit_3(blank: Db) -> None:
    blank.start_runtime(register_scenario, build_id="v1")
    instance_id = uid("approval")
    blank.client.start_orchestration(instance_id, "Approval", None)
    for argv in (["builds", "promote", "nope"], ["builds", "drain", "nope"],
                 ["instances", "move", instance_id, "--build", "nope"]):
        result = blank.cli(*argv)
        assert result.code == 3, (argv, result.err)
        assert result.err == "duraflow: error: unknown build 'nope' (known: v1)\n"
    missing = blank.cli("instances", "move", "no-such-instance", "--build", "v1")
    assert missing.code == 3 and "instance 'no-such-instance' not found" in missing.err
    bad = blank.cli("builds", "promote", "not/a build")
    assert bad.code == 2 and "must be 1-63 characters" in bad.err
