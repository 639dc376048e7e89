"""The chart ships byte-identical copies of the top-level crds/ (the operator's source of truth);
`make sync-crds` copies them. A CRD edited in one place only fails here."""

from __future__ import annotations

from pathlib import Path

from tests.chart.support import CHART_CRDS, TOP_CRDS


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.yaml"))}


def test_chart_crds_are_byte_identical_to_top_level_crds() -> None:
    top, chart = _files(TOP_CRDS), _files(CHART_CRDS)
    assert sorted(chart) == sorted(top), "run `make sync-crds`"
    for name, content in top.items():
        assert chart[name] == content, f"charts/duraflow/crds/{name} differs: run `make sync-crds`"


def test_crds_are_kept_on_uninstall() -> None:
    """Helm never deletes what it installs from a chart's crds/ directory; a CRD under
    templates/ would be deleted with every Orchestration in the cluster, unless annotated."""
    templates = CHART_CRDS.parent / "templates"
    for template in templates.glob("*.yaml"):
        text = template.read_text()
        if "kind: CustomResourceDefinition" in text:
            assert "helm.sh/resource-policy: keep" in text, template.name
