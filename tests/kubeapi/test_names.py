"""Object names per kind, label keys and values, finalizer names: 422 with apimachinery's
messages; a StatefulSet the API accepts but whose pods can never exist gets the controller's
``FailedCreate`` Warning Event."""

from __future__ import annotations

from tests.kubeapi import names
from tests.kubeapi.fixtures import StrictCluster
from tests.kubeapi.support import core_path, cr_path, orchestration, statefulset

SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
             "'-' or '.', and must start and end with an alphanumeric character (e.g. "
             "'example.com', regex used for validation is "
             "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
DNS1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
           "with an alphabetic character, and end with an alphanumeric character (e.g. "
           "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")


def service(name: str) -> dict:  # type: ignore[type-arg]
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"clusterIP": "None", "selector": {"app": name}}}


async def test_custom_resource_names_are_dns_subdomains(kube_cluster: StrictCluster) -> None:
    answer = await kube_cluster.admin.create(cr_path("orchestrations"),
                                             orchestration("Bad_Name"))
    assert answer.status == 422
    assert answer.message == (f'Orchestration.duraflow.io "Bad_Name" is invalid: metadata.name: '
                              f'Invalid value: "Bad_Name": {SUBDOMAIN}')
    dotted = await kube_cluster.admin.create(cr_path("orchestrations"), orchestration("team.a"))
    assert dotted.status == 201  # a DNS subdomain may have dots (a WorkerPool's may not:
    # its CRD restricts it to what its Service can carry, test_schema.py) ...


async def test_service_names_are_dns1035_labels(kube_cluster: StrictCluster) -> None:
    # ... which a Service cannot have (issue 22, finding 2).
    for bad in ("team.a", "1pool"):
        answer = await kube_cluster.admin.create(core_path("services"), service(bad))
        assert answer.status == 422
        assert answer.message == (f'Service "{bad}" is invalid: metadata.name: Invalid value: '
                                  f'"{bad}": {DNS1035}')
    long = "p" * 64
    answer = await kube_cluster.admin.create(core_path("services"), service(long))
    assert "metadata.name: Invalid value: \"" + long + "\": must be no more than 63 characters" \
        in answer.message
    assert (await kube_cluster.admin.create(core_path("services"), service("ok-1"))).status == 201


async def test_label_keys_and_values(kube_cluster: StrictCluster) -> None:
    body = orchestration()
    body["metadata"]["labels"] = {"duraflow.io/workerpool": "v" * 64, "bad key": "x"}
    answer = await kube_cluster.admin.create(cr_path("orchestrations"), body)
    causes = [c["message"] for c in answer.body["details"]["causes"]]
    assert causes[0] == f'Invalid value: "{"v" * 64}": must be no more than 63 characters'
    assert causes[1].startswith('Invalid value: "bad key": name part must consist of '
                                "alphanumeric characters, '-', '_' or '.'")
    assert all(c["field"] == "metadata.labels" for c in answer.body["details"]["causes"])


async def test_finalizer_names(kube_cluster: StrictCluster) -> None:
    body = orchestration()
    body["metadata"]["finalizers"] = ["not-qualified"]
    answer = await kube_cluster.admin.create(cr_path("orchestrations"), body)
    assert answer.body["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "metadata.finalizers[0]",
        "message": 'Invalid value: "not-qualified": name is neither a standard finalizer name '
                   'nor is it fully qualified'}]


async def test_statefulset_whose_pods_cannot_exist_gets_a_failed_create_event(
        kube_cluster: StrictCluster) -> None:
    sts_path = "/apis/apps/v1/namespaces/ns1/statefulsets"
    long = "w" * 53  # <name>-<10-char hash> > 63: the controller-revision-hash label is invalid
    for name in (long, "team.a", "ok"):
        (await kube_cluster.admin.create(sts_path, statefulset(name))).ok()
    events = (await kube_cluster.admin.get(core_path("events"))).ok()["items"]
    failed = {e["involvedObject"]["name"]: e for e in events if e["reason"] == "FailedCreate"}
    assert set(failed) == {long, "team.a"}
    assert failed[long]["type"] == "Warning"
    assert failed[long]["message"] == (
        f'create Pod {long}-0 in StatefulSet {long} failed error: Pod "{long}-0" is invalid: '
        f'metadata.labels: Invalid value: "{long}-7c9d5b8f6d": must be no more than 63 '
        f'characters')
    assert "spec.hostname: Invalid value: \"team.a-0\": a lowercase RFC 1123 label" in \
        failed["team.a"]["message"]


def test_name_rules() -> None:
    assert names.dns1123_subdomain("a.b-c") == []
    assert names.dns1123_label("a.b") != [] and names.dns1035_label("1a") != []
    assert names.qualified_name("example.com/My_name") == []
    assert names.label_value("") == [] and names.label_value("-x") != []
