"""An Orchestration CR runs its instance and shows its progress: the paths users rely on."""

from __future__ import annotations

import pytest
from duraflow_operator import FINALIZER

from duraflow import AsyncClient, PostgresProvider
from tests.kubeapi.fixtures import StrictCluster

from .conftest import NS, Operators, eventually
from .k8s import Kubectl

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def test_applied_cr_runs_and_ends_completed_with_its_output(
    cluster: StrictCluster, operators: Operators
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    await kubectl.apply_orchestration("hello", {"orchestration": "Hello", "input": "world"})
    await eventually(lambda: kubectl.status("hello").get("phase") == "Completed",
                     message="hello Completed")
    status = kubectl.status("hello")
    assert status["output"] == "Hello, world!"
    assert status["instanceId"] == f"{NS}/hello"
    assert status["startedAt"] and status["completedAt"]
    assert kubectl.condition("hello", "Ready")["status"] == "True"
    assert kubectl.condition("hello", "Accepted")["status"] == "True"
    assert FINALIZER in kubectl.orch("hello")["metadata"]["finalizers"]
    assert status["metrics"]["activitiesCompleted"] == 1
    assert status["metrics"]["historyEvents"] >= 4
    assert status["observedGeneration"] == 1
    await eventually(lambda: {"Started", "Completed"} <= set(kubectl.reasons("hello", "Normal")),
                     message="lifecycle Events")


async def test_custom_status_shows_while_running_and_an_appended_event_completes_it(
    cluster: StrictCluster, operators: Operators
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    await kubectl.apply_orchestration("approval", {"orchestration": "Approval", "events": []})
    await eventually(lambda: kubectl.status("approval").get("customStatus")
                     == "waiting for approval", message="custom status in the CR")
    assert kubectl.status("approval")["phase"] == "Running"
    await kubectl.json_patch(kubectl.path("orchestrations", "approval"), [
        {"op": "add", "path": "/spec/events/-", "value": {"name": "approve",
                                                          "data": {"by": "alice"}}}])
    await eventually(lambda: kubectl.status("approval").get("phase") == "Completed")
    status = kubectl.status("approval")
    assert status["output"] == {"by": "alice"}
    assert status["raisedEvents"] == 1
    assert "EventRaised" in kubectl.reasons("approval")


async def test_activity_failure_ends_failed_with_the_message(
    cluster: StrictCluster, operators: Operators
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    await kubectl.apply_orchestration("fails", {"orchestration": "Fails", "input": "fuse"})
    await eventually(lambda: kubectl.status("fails").get("phase") == "Failed")
    assert "boom: fuse" in kubectl.status("fails")["error"]
    assert kubectl.condition("fails", "Ready")["reason"] == "Failed"
    await eventually(lambda: "Failed" in kubectl.reasons("fails", "Warning"))


async def test_cancel_true_cancels_the_running_instance(
    cluster: StrictCluster, operators: Operators
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    await kubectl.apply_orchestration("stopme", {"orchestration": "Approval"})
    await eventually(lambda: kubectl.status("stopme").get("customStatus"))
    await kubectl.merge_patch(kubectl.path("orchestrations", "stopme"), {"spec": {"cancel": True}})
    await eventually(lambda: kubectl.status("stopme").get("phase") == "Canceled")
    assert kubectl.status("stopme")["error"].startswith("canceled:")
    assert kubectl.status("stopme")["cancelRequested"] is True


@pytest.mark.parametrize(("policy", "expected"), [
    ("Cancel", "Failed"), ("Purge", "NotFound"), ("Orphan", "Running")])
async def test_deletion_follows_the_deletion_policy(
    cluster: StrictCluster, operators: Operators, schema: str, postgres_url: str,
    policy: str, expected: str,
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    name = f"del-{policy.lower()}"
    await kubectl.apply_orchestration(name, {"orchestration": "Approval",
                                             "deletionPolicy": policy})
    await eventually(lambda: kubectl.status(name).get("customStatus"))
    await kubectl.delete(kubectl.path("orchestrations", name))
    await eventually(lambda: kubectl.gone(name), message="finalizer released")
    provider = await PostgresProvider.connect_async(postgres_url, schema)
    try:
        client = AsyncClient(provider)
        # The finalizer is released only once the policy was carried out: read at once.
        result = await client.get_status(f"{NS}/{name}")
        if expected == "Failed":
            result = await client.wait_for_orchestration(f"{NS}/{name}", 10_000)
            assert (result.error or "").startswith("canceled:")
        assert result.status == expected
        if policy == "Orphan":
            await client.cancel_instance(f"{NS}/{name}", "test cleanup")
    finally:
        await provider.close()


async def test_nulls_in_the_output_survive_into_the_status(
    cluster: StrictCluster, operators: Operators
) -> None:
    """A merge patch reads null as "delete this key": {"a": null} was stored as {}."""
    await operators.start()
    kubectl = Kubectl(cluster)
    data = {"by": None, "notes": {"why": None, "who": "bob"}, "list": [None, 1]}
    await kubectl.apply_orchestration("nulls", {"orchestration": "Approval", "events": []})
    await eventually(lambda: kubectl.status("nulls").get("customStatus"))
    await kubectl.json_patch(kubectl.path("orchestrations", "nulls"), [
        {"op": "add", "path": "/spec/events/-", "value": {"name": "approve", "data": data}}])
    await eventually(lambda: kubectl.status("nulls").get("phase") == "Completed")
    assert kubectl.status("nulls")["output"] == data
    assert "customStatus" in kubectl.status("nulls")


async def test_only_the_watched_namespaces_are_reconciled(
    cluster: StrictCluster, operators: Operators, watch_mode: str
) -> None:
    """Cluster-wide, a CR in any namespace runs; namespaced (the chart's Roles in ns1 only),
    a CR in ns2 is left alone and the operator sends nothing there (it could not: 403)."""
    await operators.start()
    elsewhere, here = Kubectl(cluster, "ns2"), Kubectl(cluster)
    await elsewhere.apply_orchestration("there", {"orchestration": "Hello", "input": "ns2"})
    await here.apply_orchestration("here", {"orchestration": "Hello", "input": "ns1"})
    await eventually(lambda: here.status("here").get("phase") == "Completed")
    if watch_mode == "cluster-wide":
        await eventually(lambda: elsewhere.status("there").get("phase") == "Completed")
        assert elsewhere.status("there")["instanceId"] == "ns2/there"
    else:  # "here" was created after "there" and has run its course: "there" was not seen
        assert elsewhere.status("there") == {}
        assert "finalizers" not in elsewhere.orch("there")["metadata"]
        assert not [r for r in here.operator_requests() if r.namespace == "ns2"]


async def test_a_cr_adopting_an_instance_that_already_ended_shows_all_of_its_status(
    cluster: StrictCluster, operators: Operators, schema: str, postgres_url: str
) -> None:
    """A CR applied for an instance that had ended (a CR deleted with the Cancel or Orphan
    policy and applied again) showed Completed without completedAt, executionId or metrics:
    no change is ever announced for such an instance, and only the status sync writes them."""
    provider = await PostgresProvider.connect_async(postgres_url, schema)
    try:
        client = AsyncClient(provider)
        await client.start_orchestration(f"{NS}/again", "Hello", "before")
        await client.wait_for_orchestration(f"{NS}/again", 20_000)
    finally:
        await provider.close()
    await operators.start()
    kubectl = Kubectl(cluster)
    await kubectl.apply_orchestration("again", {"orchestration": "Hello", "input": "after"})
    await eventually(lambda: kubectl.status("again").get("completedAt"), message="completedAt")
    status = kubectl.status("again")
    assert (status["phase"], status["output"]) == ("Completed", "Hello, before!")
    assert status["metrics"]["activitiesCompleted"] == 1 and status["executionId"] == 1
    assert kubectl.condition("again", "Ready")["status"] == "True"
    assert "Adopted" in kubectl.reasons("again", "Normal")
