"""Statuses are duroxide's strings: ``Status`` names them without changing what programs see.

A duroxide program compares ``result.status == "Completed"``, prints it, stores it as JSON and
passes a string to ``list_instances_by_status``; all of that must keep working whether the
value came from the store (a plain string) or from the engine (a ``Status`` member).
"""

from __future__ import annotations

import json

from duraflow import OrchestrationResult, Status

from .support import TIMEOUT_MS, uid


def test_a_status_is_the_plain_string() -> None:
    assert Status.COMPLETED == "Completed" and "Completed" == Status.COMPLETED  # noqa: SIM300
    assert Status("ContinuedAsNew") is Status.CONTINUED_AS_NEW
    assert json.dumps({"status": Status.FAILED}) == '{"status": "Failed"}'
    assert f"{Status.RUNNING}" == str(Status.RUNNING) == "Running"
    assert "NotFound" in {Status.NOT_FOUND}  # hashes like the string
    assert [str(s) for s in Status.EXECUTION_STATUSES] == [
        "Running", "Completed", "Failed", "ContinuedAsNew"]


def test_instance_done_and_execution_ended_are_different_sets() -> None:
    assert set(Status.TERMINAL) == {"Completed", "Failed"}
    assert set(Status.EXECUTION_ENDED) == {"Completed", "Failed", "ContinuedAsNew"}
    assert Status.FAILED.is_terminal and not Status.CONTINUED_AS_NEW.is_terminal
    assert not Status.NOT_FOUND.is_terminal and not Status.RUNNING.is_terminal
    assert OrchestrationResult("Failed").is_terminal
    assert not OrchestrationResult(Status.RUNNING).is_terminal


def test_repr_shows_the_string_whatever_made_the_result() -> None:
    assert repr(OrchestrationResult(Status.NOT_FOUND)).startswith(
        "OrchestrationResult(status='NotFound', ")
    assert repr(OrchestrationResult("NotFound")) == repr(OrchestrationResult(Status.NOT_FOUND))


def test_statuses_from_every_store_compare_as_strings(start_runtime, client) -> None:
    def hop_then(ctx, outcome):
        """One continue-as-new, then ``outcome``: an execution ends, then the instance."""
        if ctx.execution_id == 1:
            return (yield ctx.continue_as_new(outcome))
        if outcome == "fail":
            raise ValueError("no")
        return outcome

    start_runtime(lambda rt: rt.register_orchestration("HopThen", hop_then))
    done, broken = uid("status-done"), uid("status-failed")
    client.start_orchestration(done, "HopThen", "done")
    client.start_orchestration(broken, "HopThen", "fail")
    result = client.wait_for_orchestration(done, TIMEOUT_MS)
    assert result.status == "Completed" == Status.COMPLETED and result.is_terminal
    assert json.loads(json.dumps(result.status)) == "Completed"
    assert client.wait_for_orchestration(broken, TIMEOUT_MS).status == Status.FAILED
    assert client.get_status(uid("status-none")).status == "NotFound"
    assert client.get_execution_info(done, 1).status in Status.EXECUTION_ENDED
    assert client.get_execution_info(done, 1).status not in Status.TERMINAL
    assert client.get_instance_info(done).status == Status.COMPLETED
    assert done in client.list_instances_by_status(Status.COMPLETED)
    assert done in client.list_instances_by_status("Completed")
