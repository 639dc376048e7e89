"""``x-kubernetes-validations`` rules run with a real CEL library (cel-python): a failed rule
is a 422 with the rule's message (or messageExpression, or "failed rule: ..."), typed by its
``reason``, at its node or ``fieldPath``; transition rules (``oldSelf``) are skipped on
create; rules do not run on an object with type errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.kubeapi import cel, schema
from tests.kubeapi.fixtures import StrictCluster
from tests.kubeapi.support import cr_path, orchestration, pool

GADGETS = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"kind": "Gadget", "plural": "gadgets"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {
                               "type": "object",
                               "x-kubernetes-validations": [
                                   {"rule": "self.metadata.name.startsWith('g-')",
                                    "message": "name must start with g-"}],
                               "properties": {"spec": {
                                   "type": "object",
                                   "x-kubernetes-validations": [
                                       {"rule": "self.min <= self.max",
                                        "messageExpression":
                                            "'min ' + string(self.min) + ' exceeds max ' + "
                                            "string(self.max)",
                                        "fieldPath": ".min"},
                                       {"rule": "self.name.lowerAscii() == self.name",
                                        "reason": "FieldValueInvalid"},
                                       {"rule": "!has(self.until) || self.until > "
                                                "timestamp('2020-01-01T00:00:00Z')",
                                        "message": "until must be after 2020"},
                                       {"rule": "self.tags.all(t, t.size() <= 3) && "
                                                "self.tags.exists_one(t, t == 'x')",
                                        "message": "tags: at most 3 chars, exactly one x"},
                                       {"rule": "self.missing == 1"},
                                   ],
                                   "properties": {
                                       "min": {"type": "integer"}, "max": {"type": "integer"},
                                       "name": {"type": "string"},
                                       "until": {"type": "string", "format": "date-time"},
                                       "tags": {"type": "array", "items": {"type": "string"}},
                                       "missing": {"type": "integer"},
                                   }}}}}}]}}


def gadget(object_name: str = "g-1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": object_name},
            "spec": {"min": 1, "max": 2, "name": "ok", "tags": ["x"], "missing": 1, **spec}}


GADGETS_PATH = "/apis/example.com/v1/namespaces/ns1/gadgets"


async def test_transition_rules_refuse_changes_and_are_skipped_on_create(
        kube_cluster: StrictCluster) -> None:
    path = cr_path("orchestrations")
    (await kube_cluster.admin.create(path, orchestration(instanceId="a", version="1.0.0",
                                                         events=[{"name": "e1"}]))).ok()
    answer = await kube_cluster.admin.patch(f"{path}/o1", {"spec": {
        "instanceId": "b", "orchestration": "Other", "events": [], "version": None}})
    assert answer.status == 422
    assert answer.message == (
        'Orchestration.duraflow.io "o1" is invalid: [spec: Forbidden: instanceId is immutable, '
        'spec: Forbidden: events are append-only: entries cannot be removed, renamed or '
        'reordered, spec: Forbidden: version is immutable: set it when creating the '
        'Orchestration, spec: Forbidden: orchestration is immutable]')
    assert answer.body["details"]["causes"][0] == {
        "reason": "FieldValueForbidden", "message": "Forbidden: instanceId is immutable",
        "field": "spec"}
    # What the rules allow passes.
    appended = await kube_cluster.admin.patch(f"{path}/o1", {"spec": {
        "events": [{"name": "e1"}, {"name": "e2"}], "cancel": True}})
    assert appended.ok()["metadata"]["generation"] == 2


async def test_rule_on_list_and_message(kube_cluster: StrictCluster) -> None:
    # maxItems 5 catches 6 tags first; the CEL rule is the same bound, reported too.
    answer = await kube_cluster.admin.create(cr_path("workerpools"),
                                             pool("p", tags=[f"t{i}" for i in range(6)]))
    causes = [c["message"] for c in answer.body["details"]["causes"]]
    assert causes == ["Too many: 6: must have at most 5 items",
                      'Invalid value: "array": a worker takes at most 5 tags']


async def test_message_expression_field_path_reason_functions_and_eval_errors(
        kube_cluster: StrictCluster) -> None:
    kube_cluster.server.install_crd(copy.deepcopy(GADGETS))
    assert (await kube_cluster.admin.create(GADGETS_PATH, gadget())).status == 201
    body = gadget("bad", min=5, name="NotLower", until="2019-05-05T00:00:00Z",
                  tags=["toolong", "x"])
    del body["spec"]["missing"]
    answer = await kube_cluster.admin.create(GADGETS_PATH, body)
    causes = [(c["field"], c["message"]) for c in answer.body["details"]["causes"]]
    assert causes == [
        ("<nil>", 'Invalid value: "object": name must start with g-'),
        ("spec.min", 'Invalid value: "object": min 5 exceeds max 2'),
        ("spec", 'Invalid value: "object": failed rule: self.name.lowerAscii() == self.name'),
        ("spec", 'Invalid value: "object": until must be after 2020'),
        ("spec", 'Invalid value: "object": tags: at most 3 chars, exactly one x'),
        ("spec", 'Invalid value: "object": no such key: missing evaluating rule: '
                 'self.missing == 1'),
    ]


async def test_rules_do_not_run_on_an_object_with_type_errors(
        kube_cluster: StrictCluster) -> None:
    (await kube_cluster.admin.create(cr_path("orchestrations"), orchestration())).ok()
    answer = await kube_cluster.admin.patch(cr_path("orchestrations", name="o1"), {
        "spec": {"orchestration": "Changed", "cancel": "yes"}})
    assert [c["message"] for c in answer.body["details"]["causes"]] == [
        'Invalid value: "string": spec.cancel in body must be of type boolean: "string"',
        'Invalid value: "null": some validation rules were not checked because the object '
        'was invalid; correct the existing errors to complete validation']


def test_rules_compile_once_per_crd_version() -> None:
    raw = copy.deepcopy(GADGETS["spec"]["versions"][0]["schema"]["openAPIV3Schema"])  # type: ignore[index]
    root = schema.compile_schema(raw)
    assert cel.attach_rules(root, raw)
    rules = list(cel.iter_rules(root))
    assert len(rules) == 6 and all(r.program is not None for r in rules)
    assert [r.transition for r in rules] == [False] * 6
    with pytest.raises(cel.RuleCompileError):
        cel.compile_rule({"rule": "self.a ==="})
