"""Status subresource isolation, ``metadata.generation``, optimistic concurrency (409),
the 422 of a failed JSON-patch ``test`` (what kopf relies on), merge-patch ``null``s, and
what a write that changes nothing does."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kubeapi.fixtures import JSON_PATCH, StrictCluster
from tests.kubeapi.support import cr_path, orchestration

PATH = cr_path("orchestrations")
O1 = cr_path("orchestrations", name="o1")


@pytest.fixture
async def o1(kube_cluster: StrictCluster) -> dict:  # type: ignore[type-arg]
    body = orchestration()
    body["status"] = {"phase": "Completed"}
    created = (await kube_cluster.admin.create(PATH, body)).ok()
    assert "status" not in created  # create cannot set the status
    return created  # type: ignore[no-any-return]


async def test_main_endpoint_ignores_status_and_status_endpoint_ignores_the_rest(
        kube_cluster: StrictCluster, o1: dict) -> None:  # type: ignore[type-arg]
    status = await kube_cluster.admin.patch(f"{O1}/status", {
        "status": {"phase": "Running"}, "spec": {"cancel": True},
        "metadata": {"labels": {"a": "b"}}})
    body = status.ok()
    assert body["status"] == {"phase": "Running"}
    assert body["spec"]["cancel"] is False and "labels" not in body["metadata"]
    assert body["metadata"]["generation"] == 1
    main = (await kube_cluster.admin.patch(O1, {"status": {"phase": "Failed"},
                                                "spec": {"cancel": True}})).ok()
    assert main["status"] == {"phase": "Running"} and main["spec"]["cancel"] is True
    assert main["metadata"]["generation"] == 2


async def test_generation_moves_only_with_the_spec(kube_cluster: StrictCluster,
                                                   o1: dict) -> None:  # type: ignore[type-arg]
    labels = (await kube_cluster.admin.patch(O1, {"metadata": {"labels": {"x": "y"},
                                                               "generation": 7}})).ok()
    assert labels["metadata"]["generation"] == 1
    status = (await kube_cluster.admin.patch(f"{O1}/status", {"status": {"phase": "x"}}))
    assert status.status == 422  # phase enum
    spec = (await kube_cluster.admin.patch(O1, {"spec": {"input": 1}})).ok()
    assert spec["metadata"]["generation"] == 2


async def test_stale_resource_version_is_a_conflict(kube_cluster: StrictCluster,
                                                    o1: dict) -> None:  # type: ignore[type-arg]
    stale = o1["metadata"]["resourceVersion"]
    (await kube_cluster.admin.patch(O1, {"spec": {"input": 1}})).ok()
    expected = ('Operation cannot be fulfilled on orchestrations.duraflow.io "o1": the object '
                'has been modified; please apply your changes to the latest version and try '
                'again')
    patch = await kube_cluster.admin.patch(O1, {"metadata": {"resourceVersion": stale},
                                                "spec": {"input": 2}})
    assert (patch.status, patch.reason, patch.message) == (409, "Conflict", expected)
    assert patch.body["details"] == {"name": "o1", "group": "duraflow.io",
                                     "kind": "orchestrations"}
    put = await kube_cluster.admin.replace(O1, {**o1, "spec": {"orchestration": "Hello"}})
    assert (put.status, put.reason) == (409, "Conflict")
    unconditional = dict(o1, metadata={k: v for k, v in o1["metadata"].items()
                                       if k != "resourceVersion"})
    missing = await kube_cluster.admin.replace(O1, unconditional)
    assert missing.status == 422
    assert missing.message == ('Orchestration.duraflow.io "o1" is invalid: '
                               'metadata.resourceVersion: Invalid value: 0x0: must be '
                               'specified for an update')


async def test_failed_json_patch_test_is_422_not_409(kube_cluster: StrictCluster,
                                                     o1: dict) -> None:  # type: ignore[type-arg]
    ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/resourceVersion", "value": "0"},
           {"op": "add", "path": "/metadata/finalizers", "value": ["duraflow.io/finalizer"]}]
    answer = await kube_cluster.admin.patch(O1, ops, JSON_PATCH)
    assert (answer.status, answer.reason) == (422, "Invalid")
    assert answer.body["details"]["causes"] == [{
        "reason": "UnexpectedServerResponse",
        "message": "testing value /metadata/resourceVersion failed: test failed"}]
    ops[0]["value"] = o1["metadata"]["resourceVersion"]
    assert (await kube_cluster.admin.patch(O1, ops, JSON_PATCH)).ok()["metadata"][
        "finalizers"] == ["duraflow.io/finalizer"]
    missing = await kube_cluster.admin.patch(O1, [{"op": "replace", "path": "/spec/nope/x",
                                                   "value": 1}], JSON_PATCH)
    assert missing.status == 422
    malformed = await kube_cluster.admin.patch(O1, [{"op": "frobnicate", "path": "/a"}],
                                               JSON_PATCH)
    assert malformed.status == 400


async def test_merge_patch_null_deletes_and_cannot_store_a_null(
        kube_cluster: StrictCluster, o1: dict) -> None:  # type: ignore[type-arg]
    await kube_cluster.admin.patch(f"{O1}/status", {"status": {"output": {"a": 1, "b": 2}}})
    patched = (await kube_cluster.admin.patch(f"{O1}/status", {
        "status": {"output": {"a": None, "c": None}}})).ok()
    assert patched["status"]["output"] == {"b": 2}  # null deleted "a"; "c": null not stored
    put = {**patched, "status": {"output": {"a": None}}}
    replaced = (await kube_cluster.admin.replace(f"{O1}/status", put)).ok()
    assert replaced["status"]["output"] == {"a": None}  # a full write keeps JSON nulls


async def test_strategic_merge_patch_is_refused_for_custom_resources(
        kube_cluster: StrictCluster, o1: dict) -> None:  # type: ignore[type-arg]
    answer = await kube_cluster.admin.patch(O1, {"spec": {"input": 1}},
                                            "application/strategic-merge-patch+json")
    assert (answer.status, answer.reason) == (415, "UnsupportedMediaType")


async def test_a_write_that_changes_nothing_keeps_the_version_but_counts(
        kube_cluster: StrictCluster, o1: dict) -> None:  # type: ignore[type-arg]
    same = (await kube_cluster.admin.patch(O1, {"spec": {"cancel": False}})).ok()
    assert same["metadata"]["resourceVersion"] == o1["metadata"]["resourceVersion"]
    assert kube_cluster.server.writes_to("duraflow.io/v1alpha1/orchestrations", "ns1",
                                         "o1") == 2


async def test_deletion_with_finalizers_marks_then_removing_the_last_one_deletes(
        kube_cluster: StrictCluster, o1: dict) -> None:  # type: ignore[type-arg]
    await kube_cluster.admin.patch(O1, {"metadata": {"finalizers": ["duraflow.io/finalizer"]}})
    marked = (await kube_cluster.admin.delete(O1)).ok()
    assert marked["metadata"]["deletionTimestamp"] and marked["metadata"]["generation"] == 2
    refused = await kube_cluster.admin.patch(O1, {"metadata": {"finalizers": [
        "duraflow.io/finalizer", "example.com/more"]}})
    assert refused.status == 422 and "no new finalizers can be added if the object is " \
                                     "being deleted" in refused.message
    await kube_cluster.admin.patch(O1, {"metadata": {"finalizers": None}})
    gone = await kube_cluster.admin.get(O1)
    assert (gone.status, gone.reason, gone.message) == (
        404, "NotFound", 'orchestrations.duraflow.io "o1" not found')
