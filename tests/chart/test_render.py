"""The chart renders offline for every values combination, every manifest is valid for the
oldest and newest Kubernetes we support (kubernetes-validate, strict: unknown fields fail), and
what the rendered objects say matches what an SRE is promised: restricted Pod Security, probes,
resources, the database URL only through secretKeyRef, the image tag = the Duraflow version."""

from __future__ import annotations

import base64
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.chart.support import (
    CHART_DIR,
    NAMESPACE,
    NEWEST_K8S,
    OLDEST_K8S,
    VALUES_MATRIX,
    chart_crds,
    chart_meta,
    pod_specs,
    project_version,
    render,
    render_files,
)

MONITORING_SCHEMA = json.loads(
    (Path(__file__).parent / "schemas" / "monitoring.coreos.com_v1.json").read_text()
)
CUSTOM_GROUPS = {"monitoring.coreos.com/v1", "duraflow.io/v1alpha1"}


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _one(docs: list[dict[str, Any]], kind: str, name_part: str = "") -> dict[str, Any]:
    found = [d for d in _by_kind(docs, kind) if name_part in d["metadata"]["name"]]
    assert len(found) == 1, f"expected one {kind} named *{name_part}*, got {found}"
    return found[0]


@pytest.mark.parametrize("case", sorted(VALUES_MATRIX))
@pytest.mark.parametrize("k8s", [OLDEST_K8S, NEWEST_K8S])
def test_every_rendered_manifest_is_valid_kubernetes(case: str, k8s: str) -> None:
    docs = render(VALUES_MATRIX[case])
    assert docs
    for doc in docs:
        if doc["apiVersion"] in CUSTOM_GROUPS:
            continue  # custom resources: validated against their own schemas below
        kubernetes_validate.validate(doc, k8s, strict=True)


@pytest.mark.parametrize("k8s", [OLDEST_K8S, NEWEST_K8S])
def test_the_crds_are_valid_kubernetes(k8s: str) -> None:
    for crd in chart_crds():
        kubernetes_validate.validate(crd, k8s, strict=True)


def test_strict_validation_catches_an_unknown_field() -> None:
    """The validator is not a rubber stamp: a misspelt field in a rendered Deployment fails."""
    deployment = _one(render({}), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, NEWEST_K8S, strict=True)


def test_declared_kubernetes_range_matches_what_is_tested() -> None:
    meta = chart_meta()
    floor = re.fullmatch(r">=(\d+\.\d+\.\d+)-0", meta["kubeVersion"])
    assert floor and floor.group(1) == OLDEST_K8S
    tested = meta["annotations"]["duraflow.io/tested-kubernetes-versions"]
    assert tested == f"{OLDEST_K8S.rsplit('.', 1)[0]}, {NEWEST_K8S.rsplit('.', 1)[0]}"


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PodMonitor"])
def test_prometheus_operator_resources_match_their_schema(kind: str) -> None:
    docs = render({"monitoring": {"enabled": True, "labels": {"release": "prom"}}})
    monitor = _one(docs, kind)
    schema = {**MONITORING_SCHEMA, **MONITORING_SCHEMA["definitions"][kind]}
    jsonschema.validate(monitor, schema)
    assert monitor["metadata"]["labels"]["release"] == "prom"
    bad = {**monitor, "spec": {**monitor["spec"], "endpoint": []}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_service_monitor_selects_the_operator_metrics_service() -> None:
    docs = render({"monitoring": {"enabled": True}})
    monitor = _one(docs, "ServiceMonitor")
    service = _one(docs, "Service", "operator-metrics")
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert service["spec"]["ports"][0]["port"] == 9465


def _crd_validator(kind: str) -> jsonschema.Draft7Validator:
    """jsonschema over the CRD's openAPIV3Schema: types, required, enums, patterns (no CEL)."""
    crds = {c["spec"]["names"]["kind"]: c for c in chart_crds()}
    assert kind in crds, f"no {kind} CRD in charts/duraflow/crds (run make sync-crds)"
    version = next(v for v in crds[kind]["spec"]["versions"] if v["name"] == "v1alpha1")
    return jsonschema.Draft7Validator(version["schema"]["openAPIV3Schema"])


def test_example_worker_pool_matches_the_workerpool_crd() -> None:
    validator = _crd_validator("WorkerPool")
    for values in ({}, {"database": {"schema": "billing"}},
                   {"exampleWorkerPool": {"enabled": True, "autoscaling": AUTOSCALING}}):
        pool = _one(render({"exampleWorkerPool": {"enabled": True}, **values}), "WorkerPool")
        validator.validate(pool)


AUTOSCALING = {"minReplicas": 0, "maxReplicas": 5, "scaleDownDelaySeconds": 120}


def test_example_worker_pool_autoscaling_is_passed_through() -> None:
    assert "autoscaling" not in _one(render({"exampleWorkerPool": {"enabled": True}}),
                                     "WorkerPool")["spec"]
    pool = _one(render({"exampleWorkerPool": {"enabled": True, "autoscaling": AUTOSCALING}}),
                "WorkerPool")
    assert pool["spec"]["autoscaling"] == AUTOSCALING


def test_example_worker_pool_retention_is_passed_through_and_valid() -> None:
    assert "retention" not in _one(render({"exampleWorkerPool": {"enabled": True}}),
                                   "WorkerPool")["spec"]
    pool = _one(render({"exampleWorkerPool": {"enabled": True, "retention": "30d"}}),
                "WorkerPool")
    assert pool["spec"]["retention"] == "30d"
    _crd_validator("WorkerPool").validate(pool)


@pytest.mark.parametrize("postgresql", [False, True])
def test_example_worker_pool_runs_the_example_app_on_the_chart_database(postgresql: bool) -> None:
    docs = render({"exampleWorkerPool": {"enabled": True}, "postgresql": {"enabled": postgresql}})
    pool = _one(docs, "WorkerPool")
    assert pool["spec"]["app"] == "duraflow_example:register"
    assert pool["spec"]["image"] == f"duraflow/duraflow:{project_version()}"
    assert pool["spec"]["imagePullPolicy"] == "IfNotPresent"
    env = {e["name"]: e for e in _one(docs, "Deployment")["spec"]["template"]["spec"]
           ["containers"][0]["env"]}
    url_ref = env["DURAFLOW_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert pool["spec"]["databaseSecretRef"] == url_ref
    assert "schema" not in pool["spec"]
    with_schema = render({"exampleWorkerPool": {"enabled": True}, "database": {"schema": "wf"}})
    assert _one(with_schema, "WorkerPool")["spec"]["schema"] == "wf"


def test_optional_parts_are_off_by_default() -> None:
    kinds = {d["kind"] for d in render({})}
    assert kinds == {"Deployment", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"}


@pytest.mark.parametrize("part, kinds", [
    ("postgresql", {"StatefulSet", "Secret"}),
    ("monitoring", {"ServiceMonitor", "PodMonitor"}),
    ("exampleWorkerPool", {"WorkerPool"}),
    ("grafanaDashboard", {"ConfigMap"}),
])
def test_each_option_adds_its_objects(part: str, kinds: set[str]) -> None:
    assert not kinds & {d["kind"] for d in render({part: {"enabled": False}})}
    assert kinds <= {d["kind"] for d in render({part: {"enabled": True}})}


def test_app_version_is_the_duraflow_version_and_the_image_tag() -> None:
    assert chart_meta()["appVersion"] == project_version()
    container = _one(render({}), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"duraflow/duraflow:{project_version()}"
    override = _one(render({"image": {"tag": "9.9.9"}}), "Deployment")
    assert override["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":9.9.9")


def test_operator_deployment_shape() -> None:
    deployment = _one(render({}), "Deployment")
    assert deployment["metadata"]["namespace"] == NAMESPACE
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    container = spec["template"]["spec"]["containers"][0]
    assert container["args"] == ["operator"]
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        port = next(p for p in container["ports"] if p["name"] == get["port"])
        assert (get["path"], port["containerPort"]) == ("/healthz", 9465)
    env = {e["name"]: e for e in container["env"]}
    assert env["DURAFLOW_OPERATOR_METRICS_PORT"]["value"] == "9465"
    assert env["DURAFLOW_WATCH_NAMESPACES"]["value"] == ""
    assert env["DURAFLOW_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "duraflow-database", "key": "url"}


def test_operator_settings_reach_its_environment() -> None:
    docs = render({"operator": {"watchNamespaces": ["a", "b"], "metricsPort": 9999},
                   "database": {"existingSecret": "db", "existingSecretKey": "dsn",
                                "schema": "wf"}})
    env = {e["name"]: e for e in _one(docs, "Deployment")["spec"]["template"]["spec"]
           ["containers"][0]["env"]}
    assert env["DURAFLOW_WATCH_NAMESPACES"]["value"] == "a,b"
    assert env["DURAFLOW_OPERATOR_METRICS_PORT"]["value"] == "9999"
    assert env["DURAFLOW_SCHEMA"]["value"] == "wf"
    assert env["DURAFLOW_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "db", "key": "dsn"}


def test_bundled_postgresql_wires_its_generated_secret() -> None:
    docs = render({"postgresql": {"enabled": True}})
    secret = _one(docs, "Secret")
    url = base64.b64decode(secret["data"]["url"]).decode()
    password = base64.b64decode(secret["data"]["password"]).decode()
    assert len(password) == 32
    service = _one(docs, "Service", "postgresql")["metadata"]["name"]
    assert url == f"postgresql://duraflow:{password}@{service}.{NAMESPACE}.svc:5432/duraflow"
    env = {e["name"]: e for e in _one(docs, "Deployment")["spec"]["template"]["spec"]
           ["containers"][0]["env"]}
    assert env["DURAFLOW_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": secret["metadata"]["name"], "key": "url"}
    sts = _one(docs, "StatefulSet")["spec"]["template"]["spec"]
    mounts = {m["mountPath"] for m in sts["containers"][0]["volumeMounts"]}
    assert {"/var/lib/postgresql/data", "/var/run/postgresql", "/tmp"} <= mounts


def test_no_secret_value_or_database_url_is_written_in_plain_env() -> None:
    for _, pod in pod_specs(render(VALUES_MATRIX["all-on"])):
        for container in pod["containers"]:
            for env in container.get("env", []):
                if env["name"] in {"DURAFLOW_DATABASE_URL", "POSTGRES_PASSWORD"}:
                    assert "secretKeyRef" in env["valueFrom"], env


@pytest.mark.parametrize("case", sorted(VALUES_MATRIX))
def test_restricted_pod_security_everywhere(case: str) -> None:
    for name, pod in pod_specs(render(VALUES_MATRIX[case])):
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True, name
        assert psc["runAsUser"] >= 10000, name
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        token = pod.get("automountServiceAccountToken")
        assert token is (name.startswith("Deployment/") and "operator" in name), name
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
        for container in pod["containers"] + pod.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] >= 10000, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
            resources = container["resources"]
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[part]), (name, part)
            assert container["livenessProbe"] and container["readinessProbe"], name


def test_dashboard_config_map_carries_the_dashboard_with_the_sidecar_label() -> None:
    docs = render({"grafanaDashboard": {"enabled": True, "namespace": "monitoring"}})
    config_map = _one(docs, "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "monitoring"
    shipped = json.loads((CHART_DIR / "dashboards" / "duraflow.json").read_text())
    assert json.loads(config_map["data"]["duraflow.json"]) == shipped


def test_notes_tell_how_to_reach_the_database_and_run_a_sample() -> None:
    notes = render_files({"exampleWorkerPool": {"enabled": True}})["duraflow/templates/NOTES.txt"]
    assert "create secret generic duraflow-database" in notes
    assert "kubectl -n duraflow-system get orch" in notes
    bundled = render_files({"postgresql": {"enabled": True}})["duraflow/templates/NOTES.txt"]
    assert "not for production" in bundled.lower() or "no backups" in bundled


@pytest.mark.parametrize("case", ["defaults", "all-on", "watch-namespaces"])
@pytest.mark.parametrize("k8s", [OLDEST_K8S, NEWEST_K8S])
def test_helm_lint_strict_reports_nothing_above_info(case: str, k8s: str) -> None:
    report = helm.lint(str(CHART_DIR), VALUES_MATRIX[case], strict=True, kube_version=f"v{k8s}")
    assert report["errors"] == []
    above_info = [m for m in report["messages"] if m["severity"] > 1]
    assert above_info == []


def _sample_orchestrations() -> list[tuple[str, dict[str, Any]]]:
    """The Orchestration that `make e2e-kind` and the chart's NOTES tell people to apply."""
    script = (CHART_DIR.parents[1] / "scripts" / "e2e-kind.sh").read_text()
    notes = render_files({"exampleWorkerPool": {"enabled": True}})["duraflow/templates/NOTES.txt"]
    found = []
    for where, text in (("e2e-kind.sh", script), ("NOTES.txt", notes)):
        block = re.search(r"<<'YAML'\n(.*?)\n\s*YAML\n", text, re.S)
        assert block, where
        found.append((where, yaml.safe_load(textwrap.dedent(block.group(1)))))
    return found


def test_documented_sample_orchestration_matches_the_crd() -> None:
    validator = _crd_validator("Orchestration")
    for where, sample in _sample_orchestrations():
        assert sample["spec"]["orchestration"] == "Hello", where
        validator.validate(sample)
