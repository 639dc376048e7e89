"""Bad Orchestration CRs get a specific condition and a Warning Event, and harm nobody else.

The CRD refuses some of them (a missing orchestration, an unknown deletion policy, a changed
instance id); an older CRD (Helm never upgrades CRDs) may not, so they are sent here through
a CRD that validates nothing, as such an API server lets them through: the operator's own
checks are all that stands against them. An unknown orchestration or an input over 256 KiB
pass any CRD.
"""

from __future__ import annotations

import pytest

from tests.kubeapi.fixtures import StrictCluster

from .conftest import Operators, eventually, spawn_worker, stop_worker
from .k8s import Kubectl, lax_crd

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BAD = {
    "no-orch": ({"input": 1}, "MissingOrchestration", "spec.orchestration is required"),
    "bad-policy": ({"orchestration": "Hello", "deletionPolicy": "Destroy"},
                   "InvalidDeletionPolicy", "'Destroy'"),
    "unknown": ({"orchestration": "NoSuchThing"}, "UnknownOrchestration", "NoSuchThing"),
    "too-big": ({"orchestration": "Hello", "input": "x" * 300_000}, "InputTooLarge",
                "over the limit"),
}


async def test_each_bad_spec_gets_its_reason_and_a_warning_while_good_crs_run(
    cluster: StrictCluster, operators: Operators
) -> None:
    kubectl = Kubectl(cluster)
    for name, (spec, _, _) in BAD.items():
        if name in ("no-orch", "bad-policy"):  # the CRD refuses these ...
            refused = await cluster.admin.create(kubectl.path("orchestrations"), {
                "apiVersion": "duraflow.io/v1alpha1", "kind": "Orchestration",
                "metadata": {"name": name}, "spec": spec})
            assert refused.status == 422, (name, refused.body)
    cluster.server.install_crd(lax_crd("Orchestration"))  # ... an older one may not
    await operators.start()
    for name, (spec, _, _) in BAD.items():
        await kubectl.apply_orchestration(name, spec)
    await kubectl.apply_orchestration("good", {"orchestration": "Hello", "input": "ok"})
    for name, (_, reason, text) in BAD.items():
        await eventually(lambda n=name, r=reason: kubectl.condition(n, "Accepted").get("reason")
                         == r, message=f"{name}: Accepted=False {reason}")
        accepted = kubectl.condition(name, "Accepted")
        assert accepted["status"] == "False"
        assert text in accepted["message"]
        assert kubectl.status(name)["phase"] == "Pending"
        assert "instanceId" not in kubectl.status(name)
        await eventually(lambda n=name, r=reason: r in kubectl.reasons(n, "Warning"))
    await eventually(lambda: kubectl.status("good").get("phase") == "Completed")
    assert kubectl.status("good")["output"] == "Hello, ok!"
    assert not operators.task.done()  # type: ignore[union-attr]


async def test_changed_instance_id_is_refused_and_the_instance_keeps_its_id(
    cluster: StrictCluster, operators: Operators
) -> None:
    kubectl = Kubectl(cluster)
    await kubectl.apply_orchestration("moved", {"orchestration": "Approval",
                                                "instanceId": "first-id"})
    change = {"spec": {"instanceId": "second-id"}}
    refused = await cluster.admin.patch(kubectl.path("orchestrations", "moved"), change)
    assert refused.status == 422 and "instanceId is immutable" in refused.message
    cluster.server.install_crd(lax_crd("Orchestration"))  # an older CRD lets it through
    await operators.start()
    await eventually(lambda: kubectl.status("moved").get("customStatus"))
    await kubectl.merge_patch(kubectl.path("orchestrations", "moved"), change)
    await eventually(lambda: kubectl.condition("moved", "Accepted").get("reason")
                     == "InstanceIdChanged")
    assert "first-id" in kubectl.condition("moved", "Accepted")["message"]
    assert kubectl.status("moved")["instanceId"] == "first-id"
    assert kubectl.status("moved")["phase"] == "Running"
    await eventually(lambda: "InstanceIdChanged" in kubectl.reasons("moved", "Warning"))
    # Putting it back is accepted again, and the instance is still driven by the CR.
    await kubectl.merge_patch(kubectl.path("orchestrations", "moved"),
                              {"spec": {"instanceId": "first-id", "cancel": True}})
    await eventually(lambda: kubectl.status("moved").get("phase") == "Canceled")
    assert kubectl.condition("moved", "Accepted")["status"] == "True"


async def test_unknown_orchestration_starts_once_a_worker_registers_it(
    cluster: StrictCluster, operators: Operators, postgres_url: str, schema: str
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    await kubectl.apply_orchestration("late", {"orchestration": "Late", "input": 7})
    await eventually(lambda: kubectl.condition("late", "Accepted").get("reason")
                     == "UnknownOrchestration")
    assert kubectl.status("late")["phase"] == "Pending"
    late_worker = spawn_worker(postgres_url, schema, "tests.operator.app:register_late",
                               "late-0")
    try:
        # The module's own worker does not register 'Late' either, yet may take its turn
        # first and put it back with the unregistered backoff (1, 2, 4, 8, 16 s: duroxide's
        # rule): four such wins in a row add up to 15 s, five to 31 s, past the 30 s this had.
        await eventually(lambda: kubectl.status("late").get("phase") == "Completed",
                         timeout=75)
        assert kubectl.status("late")["output"] == {"late": 7}
        assert kubectl.condition("late", "Accepted")["status"] == "True"
    finally:
        stop_worker(late_worker)
