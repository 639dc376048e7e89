"""CRD structural schemas: a custom resource is refused (422 Invalid, each field named, in
kube-apiserver's words) for what its schema forbids, pruned of what it does not declare, and
defaulted on create, on update and on read."""

from __future__ import annotations

import copy
from typing import Any

from tests.kubeapi.fixtures import StrictCluster, project_crds
from tests.kubeapi.support import GROUP, cr_path, orchestration, pool

WIDGETS = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                               "spec": {"type": "object", "properties": {
                                   "count": {"type": "integer"},
                                   "ratio": {"type": "number", "maximum": 1,
                                             "exclusiveMaximum": True},
                                   "port": {"x-kubernetes-int-or-string": True},
                                   "note": {"type": "string", "nullable": True},
                                   "size": {"type": "string", "default": "small"},
                                   "labels": {"type": "object", "minProperties": 1,
                                              "additionalProperties": {"type": "string"}},
                                   "items": {"type": "array", "minItems": 1,
                                             "items": {"type": "string"}},
                                   "extra": {"type": "object",
                                             "x-kubernetes-preserve-unknown-fields": True,
                                             "properties": {"known": {"type": "integer"}}},
                               }}}}}}]}}


def widget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": spec}


WIDGET_PATH = "/apis/example.com/v1/namespaces/ns1/widgets"


async def test_each_violation_is_a_422_naming_its_field(kube_cluster: StrictCluster) -> None:
    bad = pool("p", replicas=-1, app="1bad", tags=["gpu", "gpu"], imagePullPolicy="Sometimes",
               schema="x" * 64)
    del bad["spec"]["databaseSecretRef"]
    answer = await kube_cluster.admin.create(cr_path("workerpools"), bad)
    assert answer.status == 422 and answer.reason == "Invalid"
    assert answer.body["details"] == {**answer.body["details"], "name": "p",
                                      "group": "duraflow.io", "kind": "WorkerPool"}
    causes = {c["field"]: c for c in answer.body["details"]["causes"]}
    assert causes["spec.replicas"]["message"] == (
        "Invalid value: -1: spec.replicas in body should be greater than or equal to 0")
    assert causes["spec.databaseSecretRef"] == {"reason": "FieldValueRequired",
                                                "message": "Required value",
                                                "field": "spec.databaseSecretRef"}
    assert causes["spec.app"]["message"].startswith(
        'Invalid value: "1bad": spec.app in body should match \'^[A-Za-z_]')
    assert causes["spec.imagePullPolicy"]["message"] == (
        'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"')
    assert causes["spec.schema"]["message"] == "Too long: may not be more than 63 bytes"
    assert causes["spec.tags[1]"]["message"] == 'Duplicate value: "gpu"'
    assert answer.message.startswith('WorkerPool.duraflow.io "p" is invalid: [')
    assert "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than " \
           "or equal to 0" in answer.message


async def test_bounds_lengths_counts_and_types(kube_cluster: StrictCluster) -> None:
    answer = await kube_cluster.admin.create(cr_path("workerpools"), pool(
        "p", replicas=1001, tags=["a"] * 6, image="", maxSessions="3"))
    causes = {c["field"]: c["message"] for c in answer.body["details"]["causes"]}
    assert causes["spec.replicas"] == ("Invalid value: 1001: spec.replicas in body should be "
                                       "less than or equal to 1000")
    assert causes["spec.tags"] == "Too many: 6: must have at most 5 items"
    assert causes["spec.image"] == ('Invalid value: "": spec.image in body should be at least 1 '
                                    'chars long')
    assert causes["spec.maxSessions"] == ('Invalid value: "string": spec.maxSessions in body '
                                          'must be of type integer: "string"')


async def test_integer_number_int_or_string_nullable_and_items(
        kube_cluster: StrictCluster) -> None:
    kube_cluster.server.install_crd(copy.deepcopy(WIDGETS))
    answer = await kube_cluster.admin.create(WIDGET_PATH, widget(
        count=1.5, ratio=1, port=True, labels={}, items=[]))
    causes = {c["field"]: c["message"] for c in answer.body["details"]["causes"]}
    assert causes == {
        "spec.count": 'Invalid value: "number": spec.count in body must be of type integer: '
                      '"number"',
        "spec.ratio": "Invalid value: 1: spec.ratio in body should be less than 1",
        "spec.port": 'Invalid value: "boolean": spec.port in body must be of type '
                     'integer,string: "boolean"',
        "spec.labels": "Invalid value: 0: spec.labels in body should have at least 1 "
                       "properties",
        "spec.items": "Invalid value: 0: spec.items in body should have at least 1 items",
    }
    created = await kube_cluster.admin.create(WIDGET_PATH, widget(
        count=2.0, ratio=0.5, port="http", note=None, size=None))
    spec = created.ok()["spec"]
    assert spec["count"] == 2 and spec["port"] == "http"
    assert spec["note"] is None  # nullable: kept
    assert spec["size"] == "small"  # not nullable, has a default: defaulted


async def test_unknown_fields_are_pruned_with_a_warning_or_refused_when_strict(
        kube_cluster: StrictCluster) -> None:
    kube_cluster.server.install_crd(copy.deepcopy(WIDGETS))
    body = widget(count=1, bogus=1, extra={"known": 1, "anything": {"goes": True}})
    body["metadata"]["notObjectMeta"] = "x"
    body["status"] = {"ignored": True}
    created = await kube_cluster.admin.create(WIDGET_PATH, body)
    assert created.status == 201
    assert created.body["spec"] == {"count": 1, "size": "small",
                                    "extra": {"known": 1, "anything": {"goes": True}}}
    assert "notObjectMeta" not in created.body["metadata"]
    assert created.warnings == ['299 - "unknown field \\"metadata.notObjectMeta\\""',
                                '299 - "unknown field \\"spec.bogus\\""',
                                '299 - "unknown field \\"status\\""']  # not in the schema
    strict = await kube_cluster.admin.create(WIDGET_PATH, {**body, "metadata": {"name": "w2"}},
                                             fieldValidation="Strict")
    assert strict.status == 400 and strict.reason == "BadRequest"
    assert strict.message == ('strict decoding error: unknown field "spec.bogus", '
                              'unknown field "status"')


async def test_defaults_on_create_update_and_read(kube_cluster: StrictCluster) -> None:
    created = (await kube_cluster.admin.create(cr_path("orchestrations"),
                                               orchestration())).ok()
    assert created["spec"]["cancel"] is False
    assert created["spec"]["deletionPolicy"] == "Cancel"
    patched = await kube_cluster.admin.patch(cr_path("orchestrations", name="o1"),
                                             {"spec": {"deletionPolicy": None}})
    assert patched.ok()["spec"]["deletionPolicy"] == "Cancel"  # removed, defaulted again
    # A default added to the CRD later shows on objects stored before it.
    crd = next(c for c in project_crds() if c["spec"]["names"]["kind"] == "Orchestration")
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec_schema["properties"]["input"]["default"] = {"from": "default"}
    kube_cluster.server.install_crd(crd)
    read = (await kube_cluster.admin.get(cr_path("orchestrations", name="o1"))).ok()
    assert read["spec"]["input"] == {"from": "default"}
    listed = (await kube_cluster.admin.get(cr_path("orchestrations"))).ok()
    assert listed["items"][0]["spec"]["input"] == {"from": "default"}


async def test_kind_and_api_version_must_match_the_endpoint(
        kube_cluster: StrictCluster) -> None:
    body = orchestration()
    del body["kind"]
    missing = await kube_cluster.admin.create(cr_path("orchestrations"), body)
    assert missing.status == 400 and missing.message.startswith("Object 'Kind' is missing in")
    wrong = await kube_cluster.admin.create(cr_path("orchestrations"),
                                            {**orchestration(), "apiVersion": f"{GROUP}x"})
    assert wrong.status == 400
    assert "does not match the expected API version" in wrong.message


async def test_map_list_keys_are_unique(kube_cluster: StrictCluster) -> None:
    (await kube_cluster.admin.create(cr_path("orchestrations"), orchestration())).ok()
    ready = {"type": "Ready", "status": "True"}
    answer = await kube_cluster.admin.patch(cr_path("orchestrations", name="o1", sub="status"),
                                            {"status": {"conditions": [ready, ready]}})
    assert answer.status == 422
    assert answer.body["details"]["causes"] == [{
        "reason": "FieldValueDuplicate", "field": "status.conditions[1]",
        "message": 'Duplicate value: map[string]interface {}{"type":"Ready"}'}]


async def test_the_schema_restricts_metadata_name_and_generate_name(
        kube_cluster: StrictCluster) -> None:
    """Of ``metadata`` a CRD may restrict ``name`` and ``generateName``, and kube-apiserver
    enforces that (the WorkerPool CRD: a DNS-1035 label of at most 40 characters)."""
    path = cr_path("workerpools")
    for name in ("gpu.pool", "1pool", "p" * 41):
        refused = await kube_cluster.admin.create(path, pool(name))
        assert refused.status == 422, name
        assert [c["field"] for c in refused.body["details"]["causes"]] == ["metadata.name"]
    refused = await kube_cluster.admin.create(path, pool("gpu.pool"))
    assert refused.message == (
        'WorkerPool.duraflow.io "gpu.pool" is invalid: metadata.name: Invalid value: '
        '"gpu.pool": metadata.name in body should match \'^[a-z]([-a-z0-9]*[a-z0-9])?$\'')
    assert (await kube_cluster.admin.create(path, pool("p" * 40))).status == 201
