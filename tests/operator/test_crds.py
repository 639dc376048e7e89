"""The CRDs, checked statically, with jsonschema and cel-python directly (so the strict test
API server's own schema and CEL engines are not the only judge of them): every sample
validates, every invalid example is rejected, the CEL rules refuse what they are meant to,
and ``kubectl get`` shows the columns users look at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import celpy
import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD_FILES = {"Orchestration": ROOT / "crds/duraflow.io_orchestrations.yaml",
             "WorkerPool": ROOT / "crds/duraflow.io_workerpools.yaml",
             "OrchestrationSchedule": ROOT / "crds/duraflow.io_orchestrationschedules.yaml"}
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


def test_there_are_samples_of_every_kind_and_invalid_examples() -> None:
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in SAMPLES}
    assert kinds == set(CRD_FILES)
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
    assert columns[:4] == [("Ready", ".status.ready"), ("Tags", ".status.tags"),
                           ("Build", ".status.currentBuild"), ("Draining", ".status.draining")]
    assert "status" in version["subresources"]


def test_schedule_printer_columns_answer_cronjobs_questions() -> None:
    crd, version = _crd("OrchestrationSchedule"), _version("OrchestrationSchedule")
    assert crd["spec"]["names"]["shortNames"] == ["osched"]
    columns = [c["name"].upper() for c in version["additionalPrinterColumns"]
               if not c.get("priority")]
    assert columns == ["SCHEDULE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "NEXT", "AGE"]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    for name in ("lastScheduleTime", "nextScheduleTime", "active", "lastSuccessfulTime",
                 "missedRuns", "conditions", "observedGeneration"):
        assert name in status, name


@pytest.mark.parametrize(("schedule", "refused"), [
    ("0 9 * * MON-FRI", False), ("@every 90s", False), ("@daily", False),
    ("CRON_TZ=Europe/Berlin 0 9 * * *", True), ("TZ=UTC @daily", True),
])
def test_the_zone_of_a_schedule_goes_in_its_own_field(schedule: str, refused: bool) -> None:
    spec = (_version("OrchestrationSchedule")["schema"]["openAPIV3Schema"]["properties"]
            ["spec"])
    new = {"schedule": schedule, "orchestration": "Hello"}
    assert bool(_refusals(spec, new, new)) == refused


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


def _refusals(node: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The messages of the CEL rules of ``node`` that refuse the update old -> new (the
    transition rules run on updates only, as kube-apiserver runs them)."""
    env = celpy.Environment()
    refused = []
    for rule in node.get("x-kubernetes-validations", []):
        program = env.program(env.compile(rule["rule"]))
        verdict = program.evaluate({"self": celpy.json_to_cel(new),
                                    "oldSelf": celpy.json_to_cel(old)})
        if not (isinstance(verdict, celpy.celtypes.BoolType) and bool(verdict)):
            refused.append(str(rule["message"]))
    return refused


def _orchestration_spec_schema() -> dict[str, Any]:
    schema: dict[str, Any] = _version("Orchestration")["schema"]["openAPIV3Schema"]
    return dict(schema["properties"]["spec"])


def _events(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "data": {"i": i}} for i, n in enumerate(names)]


@pytest.mark.parametrize(("old_events", "new_events", "allowed"), [
    pytest.param(None, _events("a"), True, id="first-entries"),
    pytest.param(_events("a"), _events("a", "b"), True, id="append"),
    pytest.param(_events("a", "b"), _events("a", "b"), True, id="unchanged"),
    pytest.param(_events("a", "b"), _events("a"), False, id="remove-last"),
    pytest.param(_events("a", "b"), None, False, id="remove-all"),
    pytest.param(_events("a", "b"), _events("x", "b"), False, id="rename-first"),
    pytest.param(_events("a", "b"), _events("x", "b", "c"), False, id="rename-and-append"),
    pytest.param(_events("a", "b"), _events("b", "a"), False, id="reorder"),
    pytest.param(_events("a", "b"), _events("x", "a", "b"), False, id="insert-in-front"),
    pytest.param(_events(*"abcdefgh" * 32), _events(*"abcdefgh" * 32, "z"), True,
                 id="append-to-256"),
])
def test_events_are_append_only(old_events: list[Any] | None, new_events: list[Any] | None,
                                allowed: bool) -> None:
    old: dict[str, Any] = {"orchestration": "A"}
    new: dict[str, Any] = {"orchestration": "A"}
    if old_events is not None:
        old["events"] = old_events
    if new_events is not None:
        new["events"] = new_events
    refused = _refusals(_orchestration_spec_schema(), old, new)
    assert (refused == []) is allowed, refused
    if not allowed:
        assert refused == ["events are append-only: entries cannot be removed, renamed or "
                           "reordered"]


def test_events_max_items_bounds_the_append_only_rule() -> None:
    """The rule checks indices 0..255 literally: it is exact only while maxItems is 256."""
    spec = _orchestration_spec_schema()
    rule = next(r["rule"] for r in spec["x-kubernetes-validations"]
                if "events" in r["rule"])
    assert spec["properties"]["events"]["maxItems"] == 256
    assert ", ".join(map(str, range(256))) in rule


@pytest.mark.parametrize(("old", "new", "allowed"), [
    pytest.param({}, {}, True, id="never-set"),
    pytest.param({"version": "1.0.0"}, {"version": "1.0.0"}, True, id="unchanged"),
    pytest.param({}, {"version": "1.0.0"}, False, id="set-after-creation"),
    pytest.param({"version": "1.0.0"}, {"version": "2.0.0"}, False, id="changed"),
    pytest.param({"version": "1.0.0"}, {}, False, id="removed"),
])
def test_version_is_set_at_creation_only(old: dict[str, Any], new: dict[str, Any],
                                         allowed: bool) -> None:
    """The operator reads spec.version only when it starts the instance."""
    refused = _refusals(_orchestration_spec_schema(), {"orchestration": "A", **old},
                        {"orchestration": "A", **new})
    assert (refused == []) is allowed, refused


def test_the_crd_documents_the_instance_id_the_operator_uses() -> None:
    from duraflow_operator.spec import default_instance_id

    described = _orchestration_spec_schema()["properties"]["instanceId"]["description"]
    assert f'"{default_instance_id("<namespace>", "<name>")}"' in described


def test_every_status_field_of_the_crd_is_one_the_operator_writes() -> None:
    """No dead fields: pendingEvent was declared and never written."""
    status = (_version("Orchestration")["schema"]["openAPIV3Schema"]["properties"]["status"]
              ["properties"])
    assert "pendingEvent" not in status
