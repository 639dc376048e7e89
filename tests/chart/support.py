"""Shared helpers of the chart tests: offline rendering (helm-python-sdk, no helm binary, no
cluster), the values matrix the issue asks for, and the contract the chart must meet (operator
RBAC rules and metric names from the lead's interfaces)."""

from __future__ import annotations

import functools
import re
import tomllib
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "charts" / "duraflow"
CHART_CRDS = CHART_DIR / "crds"
TOP_CRDS = ROOT / "crds"
RELEASE = "demo"
NAMESPACE = "duraflow-system"

# Kubernetes versions the chart declares: the floor of Chart.yaml's kubeVersion and the newest
# release kubernetes-validate ships schemas for. Both are asserted against Chart.yaml.
OLDEST_K8S = "1.29.0"
NEWEST_K8S = "1.37.0"

# The values matrix of the issue: defaults, then each optional part on and off.
ALL_ON: dict[str, Any] = {
    "postgresql": {"enabled": True, "persistence": {"enabled": True}},
    "monitoring": {"enabled": True},
    "exampleWorkerPool": {"enabled": True},
    "grafanaDashboard": {"enabled": True},
}
VALUES_MATRIX: dict[str, dict[str, Any]] = {
    "defaults": {},
    "postgresql-on": {"postgresql": {"enabled": True}},
    "postgresql-on-persistent": {"postgresql": {"enabled": True, "persistence": {"enabled": True}}},
    "postgresql-off-existing-secret": {
        "database": {"existingSecret": "prod-db", "existingSecretKey": "dsn", "schema": "billing"}
    },
    "monitoring-on": {"monitoring": {"enabled": True}},
    "monitoring-off": {"monitoring": {"enabled": False}},
    "example-pool-on": {"exampleWorkerPool": {"enabled": True}},
    "example-pool-off": {"exampleWorkerPool": {"enabled": False}},
    "dashboard-on": {"grafanaDashboard": {"enabled": True}},
    "dashboard-off": {"grafanaDashboard": {"enabled": False}},
    "watch-namespaces": {"operator": {"watchNamespaces": ["team-a", "team-b"]}, **ALL_ON},
    "all-on": ALL_ON,
}

# The operator's API calls, as tests/operator/test_rbac_used.py records them (plus what the
# OwnerReferencesPermissionEnforcement admission plugin checks): the chart grants exactly these.
OPERATOR_RULES: frozenset[tuple[str, str, str]] = frozenset(
    [("duraflow.io", "orchestrations", v)
     for v in ("get", "list", "watch", "create", "patch", "delete")]
    + [("duraflow.io", "orchestrationschedules", v) for v in ("list", "watch", "patch")]
    + [("duraflow.io", "workerpools", v) for v in ("list", "watch")]
    + [("duraflow.io", r, "patch") for r in ("orchestrations/status", "workerpools/status",
                                             "orchestrationschedules/status")]
    + [("duraflow.io", f"{r}/finalizers", "update")
       for r in ("workerpools", "orchestrationschedules")]
    + [("apps", "statefulsets", v)
       for v in ("get", "list", "watch", "create", "patch", "delete")]
    + [(g, r, v) for g, r in (("", "services"), ("policy", "poddisruptionbudgets"))
       for v in ("get", "create", "patch", "delete")]
    + [("", "events", "create")]
    + [("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")]
)

# The metric names of interfaces.md (runtime and operator).
METRIC_NAMES: frozenset[str] = frozenset({
    "duraflow_orchestrations_started_total",
    "duraflow_orchestrations_finished_total",
    "duraflow_activity_executions_total",
    "duraflow_activity_retries_total",
    "duraflow_turn_duration_seconds",
    "duraflow_activity_duration_seconds",
    "duraflow_queue_depth",
    "duraflow_active_sessions",
    "duraflow_replay_cache_hits_total",
    "duraflow_replay_cache_misses_total",
    "duraflow_provider_errors_total",
    "duraflow_schedule_runs_started_total",
    "duraflow_instances_pruned_total",
    "duraflow_operator_reconciles_total",
    "duraflow_operator_reconcile_errors_total",
    "duraflow_operator_reconcile_duration_seconds",
    "duraflow_operator_orchestrations",
    "duraflow_operator_pool_demand",
    "duraflow_operator_pool_replicas",
})
HISTOGRAMS = frozenset(n for n in METRIC_NAMES if n.endswith("_duration_seconds"))


@functools.cache
def chart() -> Any:
    return helm.Chart.load(str(CHART_DIR))


def render_files(values: dict[str, Any]) -> dict[str, str]:
    """Template path -> rendered text, as `helm template` would print it."""
    rendered: dict[str, str] = chart().render(values, name=RELEASE, namespace=NAMESPACE)
    return rendered


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rendered manifest (CRDs excluded: helm installs crds/ separately)."""
    docs: list[dict[str, Any]] = []
    for path, text in sorted(render_files(values).items()):
        if path.endswith(".yaml"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def chart_crds() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text()) for p in sorted(CHART_CRDS.glob("*.yaml"))]


def chart_meta() -> dict[str, Any]:
    meta: dict[str, Any] = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    return meta


def project_version() -> str:
    version: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload in the rendered chart."""
    out = []
    for doc in docs:
        if doc["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            name = f"{doc['kind']}/{doc['metadata']['name']}"
            out.append((name, doc["spec"]["template"]["spec"]))
    return out


def metric_names_in(expr: str) -> set[str]:
    """The duraflow_* series names a PromQL expression reads."""
    return set(re.findall(r"\bduraflow_[a-z0-9_]+", expr))


def base_metric(series: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        stem = series.removesuffix(suffix)
        if stem != series and stem in HISTOGRAMS:
            return stem
    return series
