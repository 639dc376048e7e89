"""The operator's /metrics and /healthz, and its Lease: one replica acts, the other waits."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest
from duraflow_operator.leader import LeaderElector
from prometheus_client.parser import text_string_to_metric_families

from tests.kubeapi.fixtures import StrictCluster

from .conftest import Operators, eventually, token_file
from .k8s import Kubectl
from .test_leader import operator_api

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_metrics_and_health_are_served_without_per_cr_labels(
    cluster: StrictCluster, operators: Operators
) -> None:
    port = _free_port()
    await operators.start(metrics_port=port, metrics_host="127.0.0.1")
    kubectl = Kubectl(cluster)
    await kubectl.apply_orchestration("m1", {"orchestration": "Hello", "input": "m"})
    await eventually(lambda: kubectl.status("m1").get("phase") == "Completed")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200
            health = await response.json()
            assert health["ok"] is True and health["database"] == "ok"
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    reconciles = families["duraflow_operator_reconciles"]
    totals = [s for s in reconciles.samples if s.name.endswith("_total")
              and s.labels.get("kind") == "Orchestration"]
    assert sum(s.value for s in totals) >= 1
    assert {s.labels["result"] for s in totals} <= {"ok", "rejected", "database_unavailable"}
    assert "duraflow_operator_reconcile_duration_seconds" in families
    assert "duraflow_operator_reconcile_errors" in families
    phases = {s.labels["phase"]: s.value for s in families["duraflow_operator_orchestrations"]
              .samples}
    assert phases["Completed"] == 1
    for family in families.values():
        for sample in family.samples:
            assert not {"name", "namespace", "instance_id"} & set(sample.labels)


async def test_only_one_of_two_replicas_leads_and_the_other_takes_over_when_it_stops(
    cluster: StrictCluster, operators: Operators
) -> None:
    lease = {"lease_duration_s": 1.0, "lease_renew_deadline_s": 0.6, "lease_renew_s": 0.2,
             "leader_election": True}
    settings_a = operators.settings(identity="a", **lease)
    settings_b = operators.settings(identity="b", **lease)
    kube = operator_api(cluster)
    try:
        a, b = LeaderElector(kube, settings_a), LeaderElector(kube, settings_b)
        assert await a.try_acquire() is True
        assert await b.try_acquire() is False  # a holds a live lease
        assert await a.try_acquire() is True  # renewing
        # a stops renewing. b saw the record change just now (a's renewal): the lease runs
        # for a full leaseDurationSeconds on b's clock from that moment.
        assert await b.try_acquire() is False
        await asyncio.sleep(1.3)
        assert await b.try_acquire() is True
        assert await a.try_acquire() is False
        lease = cluster.server.objects["coordination.k8s.io/v1/leases",
                                       cluster.release_namespace, "duraflow-operator"]
        assert lease["spec"]["holderIdentity"] == "b"
        assert lease["spec"]["leaseTransitions"] == 1
    finally:
        await kube.close()


async def test_duraflow_operator_command_runs_from_env_takes_the_lease_and_stops_on_sigterm(
    cluster: StrictCluster, operators: Operators, postgres_url: str, schema: str,
    tmp_path: Path
) -> None:
    """The real entry point in its own process: env config (the API server and the
    ServiceAccount token as the chart's pod has them), Lease, /healthz, SIGTERM."""
    import os
    import signal
    import subprocess
    import sys

    from .conftest import ROOT

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DURAFLOW_DATABASE_URL": postgres_url,
           "DURAFLOW_SCHEMA": schema, "DURAFLOW_OPERATOR_METRICS_PORT": str(port),
           "POD_NAME": "op-0", "POD_NAMESPACE": cluster.release_namespace,
           "DURAFLOW_KUBE_URL": cluster.url,
           "DURAFLOW_KUBE_TOKEN_FILE": str(token_file(cluster, tmp_path))}
    env.pop("DURAFLOW_WATCH_NAMESPACES", None)  # all namespaces, as the ClusterRole allows
    proc = subprocess.Popen([sys.executable, "-m", "duraflow.cli", "operator"], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        lease_key = ("coordination.k8s.io/v1/leases", cluster.release_namespace,
                     "duraflow-operator")
        await eventually(lambda: cluster.server.objects[lease_key]["spec"]["holderIdentity"]
                         == "op-0", timeout=30, message="the operator took the Lease")

        async def healthy() -> bool:
            try:
                async with aiohttp.ClientSession() as session, session.get(
                        f"http://127.0.0.1:{port}/healthz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        for _ in range(200):
            if await healthy():
                break
            await asyncio.sleep(0.1)
        assert await healthy()
        kubectl = Kubectl(cluster)
        await kubectl.apply_orchestration("cli", {"orchestration": "Hello", "input": "cli"})
        await eventually(lambda: kubectl.status("cli").get("phase") == "Completed", timeout=30)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        assert code == 0
        # Released on the way out: the next replica need not wait for it to expire.
        assert cluster.server.objects[lease_key]["spec"]["holderIdentity"] == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
