"""Built-in kinds are decoded against their OpenAPI schemas (kubernetes-validate's) and
validated as kube-apiserver does: wrong JSON types are 400s, unknown fields a warning (400
when strict), semantic errors 422; defaults are filled; quantities come back canonical."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kubeapi import quantity
from tests.kubeapi.fixtures import StrictCluster
from tests.kubeapi.support import apps_path, core_path, statefulset

STS = apps_path("statefulsets")


@pytest.mark.parametrize(("given", "canonical"), [
    (1, "1"), (0.5, "500m"), ("1024Mi", "1Gi"), ("1000m", "1"), ("1500m", "1500m"),
    ("100000", "100k"), ("1e3", "1e3"), ("1.5Gi", "1536Mi"), ("0.1Gi", "107374182400m"),
    ("12.5m", "12500u"), ("0.0000000001", "1n"), ("1023Ki", "1023Ki"), ("2048", "2048"),
])
def test_quantity_canonical_form(given: object, canonical: str) -> None:
    assert quantity.canonical(given) == canonical  # type: ignore[arg-type]


async def test_quantities_come_back_canonical(kube_cluster: StrictCluster) -> None:
    body = statefulset(resources={"requests": {"cpu": 0.5, "memory": "1024Mi"},
                                  "limits": {"cpu": 1, "memory": "2Gi"}})
    created = (await kube_cluster.admin.create(STS, body)).ok()
    resources = created["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "500m", "memory": "1Gi"},
                         "limits": {"cpu": "1", "memory": "2Gi"}}


async def test_invalid_quantity_and_wrong_types_are_400(kube_cluster: StrictCluster) -> None:
    bad = await kube_cluster.admin.create(STS, statefulset(resources={"limits": {"cpu": "1K"}}))
    assert (bad.status, bad.reason) == (400, "BadRequest")
    assert bad.message == ('StatefulSet in version "v1" cannot be handled as a StatefulSet: '
                           "unable to parse quantity's suffix")
    typed = await kube_cluster.admin.create(STS, statefulset(ports=[{"containerPort": "9464"}]))
    assert typed.status == 400
    assert typed.message.endswith(
        "json: cannot unmarshal string into Go struct field ContainerPort.spec.template.spec."
        "containers.ports.containerPort of type int32")


async def test_semantic_errors_are_422(kube_cluster: StrictCluster) -> None:
    body = statefulset(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}},
                       env=[{"name": "1BAD", "value": "x"}], imagePullPolicy="Sometimes")
    body["spec"]["replicas"] = -1
    body["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    answer = await kube_cluster.admin.create(STS, body)
    assert answer.status == 422
    causes = {c["field"]: c["message"] for c in answer.body["details"]["causes"]}
    assert causes["spec.replicas"] == "Invalid value: -1: must be greater than or equal to 0"
    assert causes["spec.template.metadata.labels"] == (
        'Invalid value: map[string]string{"app":"other"}: `selector` does not match template '
        '`labels`')
    assert causes["spec.template.spec.containers[0].resources.requests"] == (
        'Invalid value: "2": must be less than or equal to cpu limit of 1')
    assert causes["spec.template.spec.containers[0].env[0].name"].startswith(
        'Invalid value: "1BAD": a valid environment variable name must consist of')
    assert causes["spec.template.spec.containers[0].imagePullPolicy"] == (
        'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"')
    assert answer.message.startswith('StatefulSet.apps "web" is invalid: [')


async def test_unknown_fields_warn_or_fail_when_strict(kube_cluster: StrictCluster) -> None:
    body = statefulset(bogus=True)
    created = await kube_cluster.admin.create(STS, body)
    assert created.status == 201
    assert created.warnings == [
        '299 - "unknown field \\"spec.template.spec.containers[0].bogus\\""']
    assert "bogus" not in created.body["spec"]["template"]["spec"]["containers"][0]
    body["metadata"]["name"] = "web2"
    strict = await kube_cluster.admin.create(STS, body, fieldValidation="Strict")
    assert strict.status == 400
    assert strict.message == ('strict decoding error: unknown field '
                              '"spec.template.spec.containers[0].bogus"')


async def test_defaults_are_filled(kube_cluster: StrictCluster) -> None:
    sts = (await kube_cluster.admin.create(STS, statefulset(
        readinessProbe={"httpGet": {"path": "/readyz", "port": 9464}},
        ports=[{"containerPort": 9464}]))).ok()
    spec = sts["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady" and spec["revisionHistoryLimit"] == 10
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    pod = spec["template"]["spec"]
    assert (pod["restartPolicy"], pod["dnsPolicy"], pod["schedulerName"]) == (
        "Always", "ClusterFirst", "default-scheduler")
    container = pod["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["ports"] == [{"containerPort": 9464, "protocol": "TCP"}]
    assert container["readinessProbe"] == {
        "httpGet": {"path": "/readyz", "port": 9464, "scheme": "HTTP"}, "timeoutSeconds": 1,
        "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert sts["status"] == {"replicas": 0, "availableReplicas": 0}
    service = (await kube_cluster.admin.create(core_path("services"), {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})).ok()["spec"]
    assert service["type"] == "ClusterIP" and service["ports"][0] == {
        "port": 80, "protocol": "TCP", "targetPort": 80}
    assert service["clusterIP"] == service["clusterIPs"][0]


async def test_statefulset_spec_fields_are_immutable_but_template_is_not(
        kube_cluster: StrictCluster) -> None:
    (await kube_cluster.admin.create(STS, statefulset())).ok()
    answer = await kube_cluster.admin.patch(apps_path("statefulsets", name="web"),
                                            {"spec": {"serviceName": "other"}})
    assert answer.status == 422
    assert answer.body["details"]["causes"][0]["message"].startswith(
        "Forbidden: updates to statefulset spec for fields other than 'replicas'")
    ok = await kube_cluster.admin.patch(apps_path("statefulsets", name="web"), {
        "spec": {"replicas": 3, "template": {"metadata": {"annotations": {"x": "1"}}}}})
    assert ok.ok()["metadata"]["generation"] == 2


async def test_lease_micro_time_needs_six_fractional_digits(
        kube_cluster: StrictCluster) -> None:
    path = "/apis/coordination.k8s.io/v1/namespaces/ns1/leases"
    lease: dict[str, Any] = {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15,
                 "renewTime": "2026-01-01T00:00:00Z"}}
    answer = await kube_cluster.admin.create(path, lease)
    assert answer.status == 400
    assert answer.message == (
        'Lease in version "v1" cannot be handled as a Lease: parsing time '
        '"2026-01-01T00:00:00Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse '
        '"2026-01-01T00:00:00Z" as "2006-01-02T15:04:05.000000Z07:00"')
    lease["spec"]["renewTime"] = "2026-01-01T00:00:00.000000Z"
    lease["spec"]["leaseDurationSeconds"] = 0
    zero = await kube_cluster.admin.create(path, lease)
    assert zero.status == 422 and zero.body["details"]["causes"][0]["message"] == (
        "Invalid value: 0: must be greater than 0")


async def test_event_namespace_and_generate_name(kube_cluster: StrictCluster) -> None:
    event: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Event", "metadata": {"generateName": "o1-"},
        "involvedObject": {"kind": "Orchestration", "name": "o1", "namespace": "ns2"},
        "reason": "Started", "message": "m", "type": "Normal"}
    answer = await kube_cluster.admin.create(core_path("events"), event)
    assert answer.status == 422
    assert answer.body["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "involvedObject.namespace",
        "message": 'Invalid value: "ns2": does not match event.namespace'}]
    # generateName is validated as a name prefix: only a trailing '-' is forgiven. The
    # operator's Events use "<name>." (kube.py post_event): refused on a real cluster.
    event["metadata"]["generateName"] = "o1."
    event["involvedObject"]["namespace"] = "ns1"
    dotted = await kube_cluster.admin.create(core_path("events"), event)
    assert dotted.status == 422
    assert dotted.body["details"]["causes"][0]["field"] == "metadata.generateName"
    assert dotted.body["details"]["causes"][0]["message"].startswith(
        'Invalid value: "o1.": a lowercase RFC 1123 subdomain must consist of')


async def test_the_deprecated_service_account_mirrors_service_account_name(
        kube_cluster: StrictCluster) -> None:
    """The v1 PodSpec conversion: ``serviceAccount`` is written back as a copy of
    ``serviceAccountName`` and read when the name is empty; removing the name alone keeps
    the account (a client must remove both)."""
    body = statefulset()
    body["spec"]["template"]["spec"]["serviceAccountName"] = "workers"
    pod = (await kube_cluster.admin.create(STS, body)).ok()["spec"]["template"]["spec"]
    assert (pod["serviceAccountName"], pod["serviceAccount"]) == ("workers", "workers")
    path = apps_path("statefulsets", name="web")
    kept = (await kube_cluster.admin.patch(path, {"spec": {"template": {"spec": {
        "serviceAccountName": None}}}})).ok()["spec"]["template"]["spec"]
    assert kept["serviceAccountName"] == "workers"
    gone = (await kube_cluster.admin.patch(path, {"spec": {"template": {"spec": {
        "serviceAccountName": None, "serviceAccount": None}}}})).ok()["spec"]["template"]["spec"]
    assert "serviceAccountName" not in gone and "serviceAccount" not in gone
    old = statefulset("old")
    old["spec"]["template"]["spec"]["serviceAccount"] = "legacy"
    pod = (await kube_cluster.admin.create(STS, old)).ok()["spec"]["template"]["spec"]
    assert (pod["serviceAccountName"], pod["serviceAccount"]) == ("legacy", "legacy")
