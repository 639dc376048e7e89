"""The CRDs, checked statically (the emulator enforces no schema): every sample validates,
every invalid example is rejected, and ``kubectl get`` shows the columns users look at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD_FILES = {"Orchestration": ROOT / "crds/duraflow.io_orchestrations.yaml",
             "WorkerPool": ROOT / "crds/duraflow.io_workerpools.yaml"}
SAMPLES = sorted((ROOT / "crds/samples").glob("*.yaml"))
INVALID = sorted((Path(__file__).parent / "invalid_crs").glob("*.yaml"))


def _crd(kind: str) -> dict[str, Any]:
    return yaml.safe_load(CRD_FILES[kind].read_text())


def _version(kind: str) -> dict[str, Any]:
    versions = _crd(kind)["spec"]["versions"]
    assert len(versions) == 1
    return versions[0]


def _errors(doc: dict[str, Any]) -> list[str]:
    schema = _version(doc["kind"])["schema"]["openAPIV3Schema"]
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_validates_against_its_crd(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert doc["apiVersion"] == "duraflow.io/v1alpha1"
    assert _errors(doc) == []


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_every_invalid_example_is_rejected(path: Path) -> None:
    assert _errors(yaml.safe_load(path.read_text())), f"{path.name} should not validate"


def test_there_are_samples_of_both_kinds_and_invalid_examples() -> None:
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in SAMPLES}
    assert kinds == {"Orchestration", "WorkerPool"}
    assert len(INVALID) >= 8


def test_orchestration_printer_columns_and_names() -> None:
    crd, version = _crd("Orchestration"), _version("Orchestration")
    assert crd["spec"]["names"]["shortNames"] == ["orch"]
    assert crd["spec"]["group"] == "duraflow.io" and version["name"] == "v1alpha1"
    columns = [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]
               if not c.get("priority")]
    assert columns == [("Phase", ".status.phase"), ("Orchestration", ".spec.orchestration"),
                       ("Custom Status", ".status.customStatus"),
                       ("Age", ".metadata.creationTimestamp")]
    assert version["subresources"] == {"status": {}}


def test_workerpool_printer_columns_show_ready_over_desired_and_tags() -> None:
    version = _version("WorkerPool")
    columns = [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]
               if not c.get("priority")]
    assert columns[:2] == [("Ready", ".status.ready"), ("Tags", ".status.tags")]
    assert "status" in version["subresources"]


def test_cel_rules_guard_immutable_and_append_only_fields() -> None:
    spec = _version("Orchestration")["schema"]["openAPIV3Schema"]["properties"]["spec"]
    messages = {rule["message"] for rule in spec["x-kubernetes-validations"]}
    assert "instanceId is immutable" in messages
    assert any("append-only" in m for m in messages)
    tags = (_version("WorkerPool")["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["tags"])
    assert tags["maxItems"] == 5 and tags["x-kubernetes-validations"]


def test_status_fields_of_the_issue_are_in_the_schema() -> None:
    status = (_version("Orchestration")["schema"]["openAPIV3Schema"]["properties"]["status"]
              ["properties"])
    for name in ("phase", "instanceId", "executionId", "output", "error", "customStatus",
                 "customStatusVersion", "startedAt", "completedAt", "raisedEvents",
                 "observedGeneration", "conditions", "metrics"):
        assert name in status, name
    assert status["phase"]["enum"] == ["Pending", "Running", "Completed", "Failed", "Canceled"]
