"""The operator gets exactly the permissions it uses (tests/operator/test_rbac_used.py records
them), no wildcards, nothing on Secrets, nothing cluster-scoped, and with watchNamespaces the
permissions shrink to Roles in those namespaces."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.support import (
    NAMESPACE,
    OPERATOR_RULES,
    VALUES_MATRIX,
    render,
)


def _grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(group, resource, verb)
            for rule in role["rules"]
            for group in rule["apiGroups"]
            for resource in rule["resources"]
            for verb in rule["verbs"]}


def _roles(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_cluster_role_grants_exactly_the_operator_rules() -> None:
    (cluster_role,) = _roles(render({}), "ClusterRole")
    assert _grants(cluster_role) == OPERATOR_RULES
    assert not _roles(render({}), "Role")


@pytest.mark.parametrize("case", sorted(VALUES_MATRIX))
def test_no_wildcards_no_secrets_no_escalation(case: str) -> None:
    for role in _roles(render(VALUES_MATRIX[case]), "ClusterRole") + _roles(
            render(VALUES_MATRIX[case]), "Role"):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], (role["metadata"]["name"], rule)
            assert "secrets" not in rule["resources"]
            assert not {"bind", "escalate", "impersonate"} & set(rule["verbs"])
            assert "resourceNames" not in rule and "nonResourceURLs" not in rule


def test_watch_namespaces_turns_namespaced_rules_into_roles() -> None:
    docs = render({"operator": {"watchNamespaces": ["team-a", "team-b"]}})
    assert not _roles(docs, "ClusterRole")  # nothing the operator uses is cluster-scoped
    assert not [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]): r for r in _roles(docs, "Role")}
    assert {ns for ns, _ in roles} == {"team-a", "team-b", NAMESPACE}
    for ns in ("team-a", "team-b"):
        (role,) = [r for (n, _), r in roles.items() if n == ns]
        assert _grants(role) == {g for g in OPERATOR_RULES if g[1] != "leases"}
    (lease_role,) = [r for (n, _), r in roles.items() if n == NAMESPACE]
    assert _grants(lease_role) == {g for g in OPERATOR_RULES if g[1] == "leases"}
    union = set().union(*(_grants(r) for r in roles.values()))
    assert union == OPERATOR_RULES


def test_every_role_is_bound_to_the_operator_service_account_only() -> None:
    docs = render({"operator": {"watchNamespaces": ["team-a"]}})
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
             for d in _roles(docs, "ClusterRole") + _roles(docs, "Role")}
    bound = set()
    for binding in [d for d in docs if d["kind"] in {"ClusterRoleBinding", "RoleBinding"}]:
        assert binding["subjects"] == [{"kind": "ServiceAccount",
                                        "name": account["metadata"]["name"],
                                        "namespace": NAMESPACE}]
        ref = binding["roleRef"]
        namespace = None if ref["kind"] == "ClusterRole" else binding["metadata"]["namespace"]
        bound.add((ref["kind"], namespace, ref["name"]))
    assert bound == roles
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert account["automountServiceAccountToken"] is False


def test_the_chart_lets_the_operator_set_its_childrens_owner_references() -> None:
    """OwnerReferencesPermissionEnforcement (on by default in OpenShift): an ownerReference
    with blockOwnerDeletion needs "update" on the owner's finalizers subresource, and setting
    ownerReferences on an existing object (adopting it) needs "delete" on that object.
    Without them every child create was a 403."""
    from duraflow_operator.manifests import disruption_budget, service, stateful_set
    from duraflow_operator.spec import parse_worker_pool
    from duraflow_operator.workerpools import child_paths

    body = {"metadata": {"name": "pool", "namespace": "ns", "uid": "u"}}
    spec = parse_worker_pool({"image": "i", "app": "m:f",
                              "databaseSecretRef": {"name": "s", "key": "k"}})
    children = {"StatefulSet": stateful_set(body, spec), "Service": service(body),
                "PodDisruptionBudget": disruption_budget(body, spec)}
    needed = set()
    for kind, path in child_paths("ns", "pool").items():
        parts = path.split("/")
        group = "" if parts[1] == "api" else parts[2]
        needed.add((group, parts[-2], "delete"))  # adoption rewrites ownerReferences
        for ref in children[kind]["metadata"]["ownerReferences"]:
            if ref.get("blockOwnerDeletion"):
                plural = ref["kind"].lower() + "s"
                needed.add((ref["apiVersion"].split("/")[0], f"{plural}/finalizers", "update"))
    assert ("duraflow.io", "workerpools/finalizers", "update") in needed
    (cluster_role,) = _roles(render({}), "ClusterRole")
    assert needed <= _grants(cluster_role)
    docs = render({"operator": {"watchNamespaces": ["team-a"]}})
    (role,) = [r for r in _roles(docs, "Role") if r["metadata"]["namespace"] == "team-a"]
    assert needed <= _grants(role)
