"""Pure pieces of the operator: spec checks, status shaping, manifests, conditions, settings."""

from __future__ import annotations

import pytest
from duraflow_operator import OperatorSettings
from duraflow_operator import conditions as cond
from duraflow_operator.manifests import stateful_set
from duraflow_operator.spec import SpecError, parse_orchestration, parse_worker_pool
from duraflow_operator.status import Bounds, instance_status, truncate_text

from duraflow import OrchestrationResult

BOUNDS = Bounds(output=64, error=64, custom_status=32)


@pytest.mark.parametrize(("spec", "reason"), [
    (None, "MissingOrchestration"),
    ({}, "MissingOrchestration"),
    ({"orchestration": "A", "deletionPolicy": "Keep"}, "InvalidDeletionPolicy"),
    ({"orchestration": "A", "version": "v1"}, "InvalidVersion"),
    ({"orchestration": "A", "cancel": "yes"}, "InvalidSpec"),
    ({"orchestration": "A", "events": [{"data": 1}]}, "InvalidEvents"),
    ({"orchestration": "A", "input": "x" * 2000}, "InputTooLarge"),
])
def test_bad_orchestration_specs_have_specific_reasons(spec: object, reason: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_orchestration(spec, "ns", "n", max_input_bytes=1000)  # type: ignore[arg-type]
    assert info.value.reason == reason


def test_instance_id_defaults_to_namespace_and_name_and_cannot_change() -> None:
    spec = parse_orchestration({"orchestration": "A"}, "ns", "n", max_input_bytes=10)
    assert spec.instance_id == "ns/n" and spec.deletion_policy == "Cancel"
    with pytest.raises(SpecError) as info:
        parse_orchestration({"orchestration": "A", "instanceId": "other"}, "ns", "n",
                            max_input_bytes=10, started_instance_id="ns/n")
    assert info.value.reason == "InstanceIdChanged"


def test_large_values_are_truncated_with_a_marker_and_small_ones_kept() -> None:
    text, cut = truncate_text("é" * 100, 20)
    assert cut and len(text.split("…")[0].encode()) <= 20 and "200 bytes" in text
    status = instance_status(OrchestrationResult("Completed", {"k": "v" * 500}, None,
                                                 "s" * 100, 3), started=True, bounds=BOUNDS)
    assert status["outputTruncated"] is True and isinstance(status["output"], str)
    assert "truncated" in status["customStatus"] and status["customStatusVersion"] == 3
    small = instance_status(OrchestrationResult("Completed", [1, 2]), started=True,
                            bounds=BOUNDS)
    assert small["output"] == [1, 2] and small["outputTruncated"] is None


def test_phases_map_from_engine_states() -> None:
    def phase(result: OrchestrationResult, started: bool = True) -> str:
        return str(instance_status(result, started=started, bounds=BOUNDS)["phase"])

    assert phase(OrchestrationResult("NotFound"), started=False) == "Pending"
    assert phase(OrchestrationResult("NotFound")) == "Running"
    assert phase(OrchestrationResult("Running")) == "Running"
    assert phase(OrchestrationResult("Failed", error="canceled: x")) == "Canceled"
    assert phase(OrchestrationResult("Failed", error="boom")) == "Failed"


def test_conditions_keep_transition_time_unless_the_status_flips() -> None:
    first = cond.merge_conditions([], [cond.condition("Ready", False, "Running", "m", 1)])
    first[0]["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    same = cond.merge_conditions(first, [cond.condition("Ready", False, "Running", "m2", 2)])
    assert same[0]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    flipped = cond.merge_conditions(first, [cond.condition("Ready", True, "Completed", "m", 2)])
    assert flipped[0]["lastTransitionTime"] != "2020-01-01T00:00:00Z"


def test_worker_pods_run_restricted() -> None:
    body = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}}
    spec = parse_worker_pool({"image": "i", "app": "m:f",
                              "databaseSecretRef": {"name": "s", "key": "k"}})
    pod = stateful_set(body, spec)["spec"]["template"]["spec"]
    security = pod["containers"][0]["securityContext"]
    assert security["runAsNonRoot"] and security["runAsUser"] >= 10000
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec.replicas == 1 and spec.max_unavailable == 1


def test_settings_come_from_the_environment() -> None:
    settings = OperatorSettings.from_env({
        "DURAFLOW_DATABASE_URL": "postgresql://x/y", "DURAFLOW_SCHEMA": "s",
        "DURAFLOW_WATCH_NAMESPACES": "a, b", "DURAFLOW_OPERATOR_METRICS_PORT": "9999"})
    assert settings.namespaces == ("a", "b") and settings.metrics_port == 9999
    assert OperatorSettings.from_env({"DURAFLOW_DATABASE_URL": "u"}).namespaces == ()
    assert OperatorSettings.from_env({"DURAFLOW_DATABASE_URL": "u"}).metrics_port == 9465
    with pytest.raises(ValueError, match="DURAFLOW_DATABASE_URL"):
        OperatorSettings.from_env({})


def test_duraflow_operator_subcommand_is_registered() -> None:
    from duraflow.cli import build_parser
    from duraflow.config import given_flags

    args = build_parser().parse_args(["operator", "--namespaces", "a,b", "--metrics-port", "0",
                                      "--no-leader-election"])
    assert args.command == "operator"
    settings = OperatorSettings.from_env({"DURAFLOW_DATABASE_URL": "u",
                                          "DURAFLOW_LEADER_ELECTION": "true"},
                                         given_flags(args, "operator"))
    assert settings.namespaces == ("a", "b") and settings.metrics_port == 0
    assert settings.leader_election is False
    assert settings.kube_token_file is None


def test_the_kube_token_file_is_a_setting_beside_the_kube_url() -> None:
    """--kube-url to an API server that wants a token (not kubectl proxy) needs one."""
    from duraflow.cli import build_parser
    from duraflow.config import given_flags

    env = {"DURAFLOW_DATABASE_URL": "u", "DURAFLOW_KUBE_URL": "https://k:6443",
           "DURAFLOW_KUBE_TOKEN_FILE": "/var/run/token"}
    settings = OperatorSettings.from_env(env)
    assert (settings.kube_url, settings.kube_token_file) == ("https://k:6443", "/var/run/token")
    args = build_parser().parse_args(["operator", "--kube-token-file", "/other"])
    assert OperatorSettings.from_env(env, given_flags(args, "operator")).kube_token_file == \
        "/other"


def test_a_bad_operator_setting_names_its_variable() -> None:
    with pytest.raises(ValueError, match="DURAFLOW_LEADER_ELECTION must be true or false"):
        OperatorSettings.from_env({"DURAFLOW_DATABASE_URL": "u",
                                   "DURAFLOW_LEADER_ELECTION": "flase"})
    with pytest.raises(ValueError, match="DURAFLOW_OPERATOR_METRICS_PORT must be a whole "):
        OperatorSettings.from_env({"DURAFLOW_DATABASE_URL": "u",
                                   "DURAFLOW_OPERATOR_METRICS_PORT": "ninety"})
    settings = OperatorSettings.from_env({"DURAFLOW_DATABASE_URL": "u", "POD_NAME": "op-1",
                                          "HOSTNAME": "host", "POD_NAMESPACE": "ops"})
    assert (settings.identity, settings.lease_namespace) == ("op-1", "ops")


@pytest.mark.parametrize(("image", "policy"), [
    ("duraflow/duraflow:0.1.0", "IfNotPresent"), ("duraflow/duraflow", "Always"),
    ("duraflow/duraflow:latest", "Always"), ("registry:5000/team/app", "Always"),
    ("registry:5000/team/app:1.2", "IfNotPresent"), ("app@sha256:abc", "IfNotPresent"),
    ("app:latest@sha256:abc", "Always"),
])
def test_the_pull_policy_defaults_as_the_api_server_does(image: str, policy: str) -> None:
    from duraflow_operator.manifests import default_pull_policy

    assert default_pull_policy(image) == policy


def test_a_merge_patch_can_replace_a_map_whole() -> None:
    from duraflow_operator.manifests import replace_with

    assert replace_with({"a": 1, "b": {"c": 1, "d": 2}}, {"b": {"c": 1}}) == {
        "a": None, "b": {"c": 1, "d": None}}
    assert replace_with({"a": 1}, None) is None
    assert replace_with(None, {"a": 1}) == {"a": 1}
    assert replace_with([1, 2], [1]) == [1]


def test_status_writes_keep_nulls_and_remove_only_what_is_there() -> None:
    from duraflow_operator.status import status_ops

    current = {"phase": "Running", "customStatus": "x", "output": {"a": 1}}
    ops = status_ops(current, {"phase": "Completed", "output": {"a": None},
                               "customStatus": None, "error": None, "a/b": 1})
    assert ops == [{"op": "add", "path": "/status/phase", "value": "Completed"},
                   {"op": "add", "path": "/status/output", "value": {"a": None}},
                   {"op": "remove", "path": "/status/customStatus"},
                   {"op": "add", "path": "/status/a~1b", "value": 1}]
    assert status_ops(current, {"phase": "Running", "customStatus": "x"}) == []


async def test_the_status_loop_waits_for_the_reconciles_write_instead_of_dropping_it() -> None:
    """The handler shows its outcome (instanceId, startedAt) in memory before kopf's status
    write lands; when that write is refused for a while, a re-read of the CR shows it
    without them. The loop then dropped the instance (its retry included), and the CR stayed
    behind its instance for good. It must come back to it."""
    from duraflow_operator.metrics import OperatorMetrics
    from duraflow_operator.state import OperatorState
    from duraflow_operator.status_sync import StatusSync

    state = OperatorState(settings=OperatorSettings(database_url="x"), client=None,  # type: ignore[arg-type]
                          kube=None, metrics=OperatorMetrics())  # type: ignore[arg-type]
    meta = {"namespace": "ns", "name": "n", "uid": "u"}
    state.observe({"metadata": meta, "status": {"instanceId": "ns/n", "startedAt": "now"}})
    state.observe({"metadata": meta})  # re-read: kopf's write has not landed
    sync = StatusSync(state)
    await sync._sync_one("ns/n")
    assert "ns/n" in sync._deferred  # checked again shortly (no I/O meanwhile)
    state.observe({"metadata": meta, "status": {"instanceId": "other", "startedAt": "now"}})
    sync._deferred.clear()
    await sync._sync_one("ns/n")
    assert sync._deferred == {}  # a CR that follows another instance is left alone


async def test_an_instance_that_ends_before_the_reconcile_records_it_still_reaches_its_cr() -> None:
    """The status sync follows indexed instances only, and the reconcile indexes the one it
    started when it returns. A fast instance can end before that, with its one change
    announced to the sync and ignored: the CR stayed Running (one of 1,000 in an O1 run).
    Recording the outcome (``state.follow``) has the sync read the instance once more."""
    from duraflow_operator.metrics import OperatorMetrics
    from duraflow_operator.state import OperatorState
    from duraflow_operator.status_sync import StatusSync

    from duraflow import InstanceInfo

    class Client:
        async def get_status(self, _: str) -> OrchestrationResult:
            return OrchestrationResult("Completed", "done")

        async def get_instance_info(self, instance_id: str) -> InstanceInfo:
            return InstanceInfo(instance_id, "Hello", None, 1, "Completed", '"done"', 0, 1)

        async def read_execution_history(self, *_: object) -> list[object]:
            return []

    class Kube:
        def __init__(self) -> None:
            self.patches: list[list[dict[str, object]]] = []

        async def json_patch_status(self, _: str, ops: list[dict[str, object]]) -> None:
            self.patches.append(ops)

        async def post_event(self, *_: object) -> None:
            pass

    kube = Kube()
    state = OperatorState(settings=OperatorSettings(database_url="x"), client=Client(),  # type: ignore[arg-type]
                          kube=kube, metrics=OperatorMetrics())  # type: ignore[arg-type]
    sync = StatusSync(state)
    await sync._sync_one("ns/n")  # its completion, announced before the CR was indexed
    assert kube.patches == [] and sync._deferred == {}
    body = {"metadata": {"namespace": "ns", "name": "n", "uid": "u"}}
    state.follow(body, {"instanceId": "ns/n", "startedAt": "now", "phase": "Running"})
    assert state.dirty == {"ns/n"}
    for instance in list(state.dirty):
        await sync._sync_one(instance)
    (ops,) = kube.patches
    assert {(op["path"], str(op.get("value"))) for op in ops} >= {("/status/phase", "Completed")}
