"""A WorkerPool becomes a StatefulSet (pod name = worker_node_id), a headless Service and a
PodDisruptionBudget, kept in sync with the spec; its status follows the StatefulSet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from duraflow_operator.spec import code_build

from tests.kubeapi.fixtures import StrictCluster, chart_rbac
from tests.kubeapi.support import statefulset
from tests.kubeapi.wire import Record

from .conftest import NS, Operators, eventually
from .k8s import WORKERPOOLS, Kubectl, lax_crd

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SPEC = {
    "image": "duraflow/duraflow:0.1.0",
    "replicas": 2,
    "app": "duraflow_example:register",
    "tags": ["gpu"],
    "includeUntagged": True,
    "orchestrationConcurrency": 8,
    "workerConcurrency": 4,
    "maxSessions": 3,
    "sessionIdleTimeoutSeconds": 60,
    "schema": "duraflow",
    "databaseSecretRef": {"name": "db", "key": "url"},
    "nodeSelector": {"nvidia.com/gpu.present": "true"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "priorityClassName": "high",
    "env": [{"name": "EXTRA", "value": "1"}],
}


def sts_name(pool: str, spec: dict[str, Any] = SPEC) -> str:
    """The StatefulSet of the pool's revision (its build: the hash of image and app)."""
    return f"{pool}-{code_build(spec['image'], spec['app'])}"


def _env(sts: Any) -> dict[str, Any]:
    container = sts["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


async def test_pool_creates_children_with_env_owner_and_follows_changes(
    cluster: StrictCluster, operators: Operators
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    created = await kubectl.apply_pool("gpu", SPEC)
    gpu = sts_name("gpu")
    sts = await eventually(lambda: kubectl.obj("apps/v1/statefulsets", gpu))
    service = await eventually(lambda: kubectl.obj("v1/services", "gpu"))
    pdb = await eventually(lambda: kubectl.obj("policy/v1/poddisruptionbudgets", "gpu"))
    for child in (sts, service, pdb):
        owner = child["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "WorkerPool" and owner["controller"] is True
        assert owner["uid"] == created["metadata"]["uid"]
    env = _env(sts)
    assert env["DURAFLOW_WORKER_NODE_ID"] == {  # apiVersion: the API server's default
        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}
    assert env["DURAFLOW_DATABASE_URL"] == {"secretKeyRef": {"name": "db", "key": "url"}}
    assert env["DURAFLOW_APP"] == "duraflow_example:register"
    assert env["DURAFLOW_TAGS"] == "gpu" and env["DURAFLOW_INCLUDE_UNTAGGED"] == "true"
    assert env["DURAFLOW_ORCHESTRATION_CONCURRENCY"] == "8"
    assert env["DURAFLOW_WORKER_CONCURRENCY"] == "4"
    assert env["DURAFLOW_MAX_SESSIONS"] == "3"
    assert env["DURAFLOW_SESSION_IDLE_TIMEOUT_MS"] == "60000"
    assert env["DURAFLOW_SCHEMA"] == "duraflow" and env["EXTRA"] == "1"
    build = code_build(SPEC["image"], SPEC["app"])
    assert env["DURAFLOW_BUILD_ID"] == build  # the operator promotes it, not the pods:
    assert sts["metadata"]["labels"]["duraflow.io/build"] == build
    pod = sts["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == SPEC["nodeSelector"]
    assert pod["tolerations"] == SPEC["tolerations"] and pod["priorityClassName"] == "high"
    container = pod["containers"][0]
    assert container["args"] == ["worker", "--no-auto-promote"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"][0]["containerPort"] == 9464
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert sts["spec"]["replicas"] == 2 and sts["spec"]["serviceName"] == "gpu"
    assert sts["spec"]["selector"]["matchLabels"] == {"duraflow.io/workerpool": "gpu",
                                                      "duraflow.io/build": build}
    assert service["spec"]["clusterIP"] == "None"
    assert pdb["spec"]["maxUnavailable"] == 1

    # Replicas (like resources and scheduling fields) change the revision in place.
    await kubectl.merge_patch(kubectl.path("workerpools", "gpu"), {"spec": {"replicas": 3}})
    await eventually(lambda: kubectl.obj("apps/v1/statefulsets", gpu)["spec"]["replicas"] == 3)

    # The StatefulSet controller reports readiness; the pool follows it.
    await kubectl.merge_patch(f"/apis/apps/v1/namespaces/ns1/statefulsets/{gpu}/status",
                              {"status": {"replicas": 3, "readyReplicas": 2}})
    pool = lambda: kubectl.pool("gpu")  # noqa: E731
    await eventually(lambda: pool()["status"]["readyReplicas"] == 2)
    assert pool()["status"]["ready"] == "2/3"
    assert pool()["status"]["tags"] == "gpu"
    ready = {c["type"]: c for c in pool()["status"]["conditions"]}["Ready"]
    assert ready["status"] == "False"
    await kubectl.merge_patch(f"/apis/apps/v1/namespaces/ns1/statefulsets/{gpu}/status",
                              {"status": {"readyReplicas": 3}})
    await eventually(lambda: pool()["status"]["ready"] == "3/3")
    assert {c["type"]: c for c in pool()["status"]["conditions"]}["Ready"]["status"] == "True"

    # The image (or app) is the code: a new build, a new revision beside the first.
    await kubectl.merge_patch(kubectl.path("workerpools", "gpu"),
                              {"spec": {"image": "duraflow/duraflow:0.2.0"}})
    newer = sts_name("gpu", {**SPEC, "image": "duraflow/duraflow:0.2.0"})
    sts = await eventually(lambda: kubectl.obj("apps/v1/statefulsets", newer))
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == "duraflow/duraflow:0.2.0"
    assert kubectl.exists("apps/v1/statefulsets", gpu)


async def test_pool_status_reports_its_live_workers_from_the_registry(
    cluster: StrictCluster, operators: Operators
) -> None:
    """The module's worker process runs with worker_node_id 'workers-0', i.e. pod 0 of a
    pool named 'workers'."""
    await operators.start()
    kubectl = Kubectl(cluster)
    await kubectl.apply_pool("workers", {**SPEC, "tags": []})
    pool = lambda: kubectl.pool("workers")  # noqa: E731
    # The registry's figures may reach the status in more than one write (the reconcile's
    # and the registry loop's): wait for the last of them, then read them together.
    await eventually(lambda: pool()["status"].get("liveWorkers") == 1
                     and "tags" in pool()["status"])
    status = pool()["status"]
    assert {"Hello", "Approval", "Fails"} <= set(status["orchestrations"])
    assert status["sessionsHeld"] == 0
    assert status["backlog"] == 0
    assert status["tags"] == "(untagged)"


async def test_bad_pool_spec_gets_a_condition_and_a_warning(
    cluster: StrictCluster, operators: Operators
) -> None:
    kubectl = Kubectl(cluster)
    bad = {**SPEC, "tags": ["a", "b", "c", "d", "e", "f"]}
    refused = await cluster.admin.create(kubectl.path("workerpools"), {
        "apiVersion": "duraflow.io/v1alpha1", "kind": "WorkerPool",
        "metadata": {"name": "bad"}, "spec": bad})
    assert refused.status == 422  # the CRD refuses it; an older one may not:
    cluster.server.install_crd(lax_crd("WorkerPool"))
    await operators.start()
    await kubectl.apply_pool("bad", bad)
    pool = lambda: kubectl.pool("bad")  # noqa: E731
    await eventually(lambda: any(c["reason"] == "TooManyTags"
                                 for c in pool()["status"]["conditions"]))
    await eventually(lambda: "TooManyTags" in kubectl.reasons("bad", "Warning"))
    assert not kubectl.exists("apps/v1/statefulsets", sts_name("bad", bad))


async def test_a_pool_name_its_children_cannot_carry_is_refused_before_any_child_exists(
    cluster: StrictCluster, operators: Operators
) -> None:
    """The CRD refuses these names; an API server with an older CRD does not, and then the
    StatefulSet was created and the Service failed (or no pod could start)."""
    kubectl = Kubectl(cluster)
    names = ["gpu.pool", "1pool", "p" * 41]
    refused = await cluster.admin.create(kubectl.path("workerpools"), {
        "apiVersion": "duraflow.io/v1alpha1", "kind": "WorkerPool",
        "metadata": {"name": names[0]}, "spec": SPEC})
    assert refused.status == 422 and "metadata.name" in refused.message
    cluster.server.install_crd(lax_crd("WorkerPool"))
    await operators.start()
    for name in names:
        await kubectl.apply_pool(name, SPEC)
    for name in names:
        await eventually(lambda n=name: kubectl.condition(n, "Accepted", WORKERPOOLS)
                         .get("reason") == "InvalidName")
        accepted = kubectl.condition(name, "Accepted", WORKERPOOLS)
        assert accepted["status"] == "False" and "at most 40" in accepted["message"]
        await eventually(lambda n=name: "InvalidName" in kubectl.reasons(n, "Warning"))
        for resource in ("apps/v1/statefulsets", "v1/services",
                         "policy/v1/poddisruptionbudgets"):
            assert not kubectl.exists(resource, name)


async def test_fields_removed_from_the_pool_are_removed_from_the_statefulset(
    cluster: StrictCluster, operators: Operators
) -> None:
    """A merge patch keeps what it does not mention, and the drift check looked only at
    what the pool sets: a removed field stayed on the StatefulSet for good."""
    await operators.start()
    kubectl = Kubectl(cluster)
    full = {**SPEC,
            "nodeSelector": {"nvidia.com/gpu.present": "true", "zone": "a"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "gpu", "operator": "In", "values": ["a100"]}]}]}}},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                           "whenUnsatisfiable": "ScheduleAnyway"}],
            "serviceAccountName": "workers", "imagePullPolicy": "Always",
            "resources": {"limits": {"memory": "1Gi"}}}
    await kubectl.apply_pool("trim", full)
    trim = sts_name("trim", full)
    pod = lambda: kubectl.obj("apps/v1/statefulsets", trim)["spec"]["template"]["spec"]  # noqa: E731
    await eventually(lambda: pod()["serviceAccountName"] == "workers")
    assert pod()["serviceAccount"] == "workers"  # the API server's deprecated alias
    await kubectl.merge_patch(kubectl.path("workerpools", "trim"), {"spec": {
        "nodeSelector": {"zone": None}, "tolerations": None, "affinity": None,
        "topologySpreadConstraints": None, "priorityClassName": None,
        "serviceAccountName": None, "imagePullPolicy": None, "resources": None}})
    await eventually(lambda: "tolerations" not in pod(), message="tolerations removed")
    removed = ("tolerations", "affinity", "topologySpreadConstraints", "priorityClassName",
               "serviceAccountName", "serviceAccount")
    assert not set(removed) & set(pod()), pod()
    assert pod()["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    container = pod()["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"  # the default for a tagged image
    assert not container.get("resources")


def _accepted(kubectl: Kubectl, name: str) -> dict[str, Any]:
    return kubectl.condition(name, "Accepted", WORKERPOOLS)


async def _refused_and_retried(kubectl: Kubectl, reason: str, message: str) -> \
        Callable[[], list[Record]]:
    """The pool ``limits`` shows the API server's refusal of its StatefulSet (``reason``,
    ``message``) and the create is retried with backoff; its creates so far, as a callable."""
    await eventually(lambda: _accepted(kubectl, "limits").get("reason") == reason)
    accepted = _accepted(kubectl, "limits")
    assert accepted["status"] == "False"
    assert message in accepted["message"]
    assert f"creating StatefulSet ns1/{sts_name('limits')}" in accepted["message"]

    def creates() -> list[Record]:
        return [r for r in kubectl.operator_writes()
                if r.resource == "statefulsets" and r.verb == "create"]

    await eventually(lambda: len(creates()) >= 3, message="retried with backoff")
    return creates


async def test_a_child_the_api_server_refuses_as_invalid_is_reported_until_the_spec_is_fixed(
    cluster: StrictCluster, operators: Operators
) -> None:
    """It used to be a silent retry every 5 s forever: no condition, no Event. (The CRD
    keeps ``resources`` open; the StatefulSet's validation refuses requests over limits.)"""
    operators.refusals_expected = True
    await operators.start(child_retry_min_s=0.2, child_retry_max_s=1.0)
    kubectl = Kubectl(cluster)
    await kubectl.apply_pool("limits", {**SPEC, "resources": {"requests": {"cpu": "2"},
                                                               "limits": {"cpu": "1"}}})
    await _refused_and_retried(kubectl, "Invalid", (
        f'StatefulSet.apps "{sts_name("limits")}" is invalid: '
        'spec.template.spec.containers[0].resources.requests: Invalid value: "2": '
        'must be less than or equal to cpu limit of 1'))
    await kubectl.merge_patch(kubectl.path("workerpools", "limits"),
                              {"spec": {"resources": {"requests": {"cpu": "1"}}}})
    await eventually(lambda: _accepted(kubectl, "limits")["reason"] == "Reconciled")
    assert kubectl.exists("apps/v1/statefulsets", sts_name("limits"))
    assert kubectl.reasons("limits", "Warning") == ["Invalid"]  # one Event, not one per retry


def _without_the_finalizers_grant(mode: str) -> list[dict[str, Any]]:
    objects = chart_rbac(mode)[0]
    for rule in [r for o in objects for r in o.get("rules", [])]:
        if "workerpools/finalizers" in rule["resources"]:
            rule["resources"].remove("workerpools/finalizers")
    return objects


async def test_a_child_rbac_forbids_is_reported_and_heals_once_the_rule_is_granted(
    cluster: StrictCluster, operators: Operators
) -> None:
    """A cluster whose role lacks ``update`` on ``workerpools/finalizers`` (an older chart
    under OwnerReferencesPermissionEnforcement): the children's blockOwnerDeletion is a 403.
    Once the rule is granted, the retry with backoff heals the pool by itself."""
    operators.refusals_expected = True
    cluster.server.load_rbac(_without_the_finalizers_grant(cluster.mode))
    await operators.start(child_retry_min_s=0.2, child_retry_max_s=1.0)
    kubectl = Kubectl(cluster)
    await kubectl.apply_pool("limits", SPEC)
    creates = await _refused_and_retried(kubectl, "Forbidden", (
        f'statefulsets.apps "{sts_name("limits")}" is forbidden: cannot set '
        "blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on"))
    cluster.server.load_rbac(chart_rbac(cluster.mode)[0])
    await eventually(lambda: _accepted(kubectl, "limits")["reason"] == "Reconciled")
    assert kubectl.exists("apps/v1/statefulsets", sts_name("limits"))
    assert [r.code for r in creates()][-1] == 201 and {r.code for r in creates()[:-1]} == {403}
    assert kubectl.reasons("limits", "Warning") == ["Forbidden"]  # one Event, not one per retry


def test_the_retry_delay_doubles_up_to_the_max() -> None:
    from duraflow_operator import OperatorSettings
    from duraflow_operator.handlers import retry_delay

    s = OperatorSettings(database_url="x", child_retry_min_s=5, child_retry_max_s=300)
    assert [retry_delay(s, n) for n in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert retry_delay(s, 10_000) == 300


async def test_a_child_controlled_by_someone_else_is_not_taken_over(
    cluster: StrictCluster, operators: Operators
) -> None:
    await operators.start(child_retry_min_s=0.2, child_retry_max_s=0.5)
    kubectl = Kubectl(cluster)
    deployment = statefulset("other")
    deployment.update(apiVersion="apps/v1", kind="Deployment")
    del deployment["spec"]["serviceName"]
    other = await kubectl.create("/apis/apps/v1/namespaces/ns1/deployments", deployment)
    taken = sts_name("taken")
    foreign = statefulset(taken)
    foreign["metadata"]["labels"] = {"app": "other"}
    foreign["metadata"]["ownerReferences"] = [{
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "other",
        "uid": other["metadata"]["uid"], "controller": True}]
    await kubectl.create("/apis/apps/v1/namespaces/ns1/statefulsets", foreign)
    orphan = {"apiVersion": "v1", "kind": "Service",
              "metadata": {"name": "taken", "namespace": NS},
              "spec": {"clusterIP": "None", "ports": [{"port": 9464}]}}
    await kubectl.create("/api/v1/namespaces/ns1/services", orphan)
    await kubectl.apply_pool("taken", SPEC)
    await eventually(lambda: _accepted(kubectl, "taken").get("reason") == "ChildConflict")
    assert "controlled by Deployment other" in _accepted(kubectl, "taken")["message"]
    sts = kubectl.obj("apps/v1/statefulsets", taken)
    assert sts["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert sts["metadata"]["labels"] == {"app": "other"}  # untouched
    # The other controller's StatefulSet goes away: the pool creates its own, and adopts
    # the Service nobody controlled.
    await kubectl.delete(f"/apis/apps/v1/namespaces/ns1/statefulsets/{taken}")
    await eventually(lambda: _accepted(kubectl, "taken")["reason"] == "Reconciled")
    for resource, name in (("apps/v1/statefulsets", taken), ("v1/services", "taken")):
        owner = kubectl.obj(resource, name)["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "WorkerPool" and owner["name"] == "taken"


async def test_the_scale_subresource_reports_existing_pods_and_their_selector(
    cluster: StrictCluster, operators: Operators
) -> None:
    """An HPA needs the pods' selector and the current count; status.replicas used to be
    the desired count and there was no selector. (The server builds the Scale from the
    CRD's paths, as kube-apiserver does.)"""
    await operators.start()
    kubectl = Kubectl(cluster)
    await kubectl.apply_pool("scaled", {**SPEC, "replicas": 3})
    scaled = sts_name("scaled")
    await eventually(lambda: kubectl.exists("apps/v1/statefulsets", scaled))
    await kubectl.merge_patch(f"/apis/apps/v1/namespaces/ns1/statefulsets/{scaled}/status",
                              {"status": {"replicas": 1, "readyReplicas": 1}})
    await eventually(lambda: kubectl.pool("scaled")["status"]["readyReplicas"] == 1)
    scale = await kubectl.get(kubectl.path("workerpools", "scaled") + "/scale")
    assert scale["spec"]["replicas"] == 3
    build = scaled.removeprefix("scaled-")
    assert scale["status"] == {
        "replicas": 1, "selector": f"duraflow.io/workerpool=scaled,duraflow.io/build={build}"}
    assert kubectl.pool("scaled")["status"]["ready"] == "1/3"
    # The selector selects exactly the pods of the pool's revision (of its StatefulSet).
    sts = kubectl.obj("apps/v1/statefulsets", scaled)
    wanted = dict(pair.split("=") for pair in scale["status"]["selector"].split(","))
    assert wanted.items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    assert sts["spec"]["selector"]["matchLabels"] == wanted
    # kubectl scale (as its user, through the subresource) reaches the StatefulSet.
    await kubectl.merge_patch(kubectl.path("workerpools", "scaled") + "/scale",
                              {"spec": {"replicas": 5}})
    await eventually(lambda: kubectl.obj("apps/v1/statefulsets", scaled)["spec"]["replicas"]
                     == 5)


async def test_the_statefulset_watch_is_filtered_by_the_api_server(
    cluster: StrictCluster, operators: Operators
) -> None:
    """kopf's labels= on a handler filters client-side, after listing and watching every
    StatefulSet the operator can see; the selector must reach the API server."""
    kubectl = Kubectl(cluster)
    await operators.start()
    reads = [r for r in kubectl.operator_requests()
             if r.resource == "statefulsets" and r.verb in ("list", "watch")]
    assert {r.verb for r in reads} == {"list", "watch"}
    assert {r.params.get("labelSelector") for r in reads} == {
        "app.kubernetes.io/managed-by=duraflow-operator"}


def _status_patches(kubectl: Kubectl, name: str) -> int:
    return sum(1 for r in kubectl.operator_writes() if r.name == name
               and r.subresource == "status")


def delete_unseen(cluster: StrictCluster, name: str) -> None:
    """Delete a pool while the operator's watches are down: the streams drop, the pool goes,
    the event window is compacted; kopf reconnects, gets 410 Gone and re-lists, and no
    DELETED event ever reaches it (all synchronous: no watch can reconnect in between)."""
    server = cluster.server
    server.interrupt_watches()
    server.internal_delete(WORKERPOOLS, server.store.get(WORKERPOOLS, NS, name) or {})
    server.compact()


async def _deleted_unseen(cluster: StrictCluster, operators: Operators, pools: list[str],
                          **settings: Any) -> Any:
    """Start an operator, let it see ``pools``, then delete the last one without a watch
    event (as if it went while the watch was down); the operator's handles."""
    running = await operators.start(**settings)
    kubectl = Kubectl(cluster)
    for name in pools:
        await kubectl.apply_pool(name, SPEC)
    await eventually(lambda: all("liveWorkers" in running.state.pools[(NS, n)]["status"]
                                 and "liveWorkers" in kubectl.pool(n)["status"] for n in pools))
    delete_unseen(cluster, pools[-1])
    return running


async def test_a_pool_whose_status_write_finds_it_gone_is_forgotten(
    cluster: StrictCluster, operators: Operators
) -> None:
    """Deleted while no watch told the operator: it was patched every tick, forever, 404."""
    running = await _deleted_unseen(cluster, operators, ["ghost"], pool_resync_s=3600)
    kubectl = Kubectl(cluster)
    key = (NS, "ghost")
    def forgotten_after_a_write() -> bool:
        pool = running.state.pools.get(key)
        if pool is None:
            return True
        # Give the loop something to write, again if a late watch event put the stored
        # status back (the pool's last MODIFIED may arrive after it went unseen).
        pool.setdefault("status", {})["backlog"] = -1
        return False

    await eventually(forgotten_after_a_write, message="forgotten")
    forgotten = _status_patches(kubectl, "ghost")
    ticks = running.registry.ticks
    await eventually(lambda: running.registry.ticks >= ticks + 3)  # every 0.3 s
    assert _status_patches(kubectl, "ghost") == forgotten  # no more 404s, tick after tick


async def test_a_pool_deleted_while_the_watch_was_down_is_forgotten_by_the_next_list(
    cluster: StrictCluster, operators: Operators
) -> None:
    running = await _deleted_unseen(cluster, operators, ["kept", "ghost"], pool_resync_s=0.5)
    await eventually(lambda: (NS, "ghost") not in running.state.pools, message="forgotten")
    assert (NS, "kept") in running.state.pools
