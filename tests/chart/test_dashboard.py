"""The Grafana dashboard is valid JSON, reads only metrics the runtime and operator export
(interfaces.md), and covers what the issue lists: throughput, failures, latency percentiles,
queue depths, sessions, a per-orchestration breakdown and the operator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.chart.support import CHART_DIR, METRIC_NAMES, base_metric, metric_names_in

DASHBOARD = CHART_DIR / "dashboards" / "duraflow.json"


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return [p for p in out if p["type"] != "row"]


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in _panels(dashboard) for t in p["targets"]]


def test_every_expression_reads_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    queries = _exprs(dashboard) + [v["definition"] for v in dashboard["templating"]["list"]
                                   if v["type"] == "query"]
    assert queries
    for expr in queries:
        names = metric_names_in(expr)
        assert names, f"no duraflow metric in {expr!r}"
        unknown = {n for n in names if base_metric(n) not in METRIC_NAMES}
        assert not unknown, f"{expr!r} reads metrics nobody exports: {unknown}"


def test_metric_check_spots_a_misspelt_metric() -> None:
    names = metric_names_in('sum(rate(duraflow_orchestration_started_total[5m]))')
    unknown = {base_metric(n) for n in names} - METRIC_NAMES
    assert unknown == {"duraflow_orchestration_started_total"}


def test_histograms_are_read_through_histogram_quantile(dashboard: dict[str, Any]) -> None:
    for expr in _exprs(dashboard):
        if "_bucket" in expr:
            assert expr.startswith("histogram_quantile(") and "by (le" in expr, expr


def test_every_exported_metric_is_on_the_dashboard(dashboard: dict[str, Any]) -> None:
    used = {base_metric(n) for e in _exprs(dashboard) for n in metric_names_in(e)}
    assert used == METRIC_NAMES


def test_panels_cover_the_promised_views(dashboard: dict[str, Any]) -> None:
    titles = " | ".join(p["title"].lower() for p in _panels(dashboard))
    rows = {p["title"] for p in dashboard["panels"] if p["type"] == "row"}
    assert {"Overview", "Failures", "Latency", "Queues and sessions", "Per orchestration",
            "Operator"} <= rows
    for word in ("throughput", "failure", "turn duration", "activity duration", "queue depths",
                 "sessions", "by orchestration", "reconcile"):
        assert word in titles, word
    quantiles = [e for e in _exprs(dashboard) if e.startswith("histogram_quantile(0.99")]
    assert len(quantiles) >= 2  # turn and activity p99


def test_panels_use_the_datasource_variable_and_do_not_overlap(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] and dashboard["title"] == "Duraflow"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, panel["title"]
                cells.add((x, y))
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
