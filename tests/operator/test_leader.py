"""Leader election as client-go does it: a leader steps down on any client error and within
its renew deadline (shorter than the lease), and expiry is judged by the candidate's own
clock from when it last saw the Lease change, never by the holder's renewTime."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import aiohttp
import pytest
from duraflow_operator import LeaseLost
from duraflow_operator.connection import Connection, TokenSource
from duraflow_operator.kube import KubeApi
from duraflow_operator.leader import LeaderElector

from tests.kubeapi.fixtures import StrictCluster

from .conftest import Operators, eventually
from .k8s import Kubectl

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LEASE = {"lease_duration_s": 1.5, "lease_renew_deadline_s": 1.0, "lease_renew_s": 0.2,
         "leader_election": True}


def lease_path(cluster: StrictCluster) -> str:
    """The Lease lives in the release namespace (the chart's POD_NAMESPACE)."""
    return (f"/apis/coordination.k8s.io/v1/namespaces/{cluster.release_namespace}/leases/"
            "duraflow-operator")


def operator_api(cluster: StrictCluster, api: KubeApi | None = None) -> KubeApi:
    """A client with the operator's ServiceAccount token (RBAC: the chart's Lease rules)."""
    kube = api or KubeApi()
    kube.configure(Connection(server=cluster.url,
                              token=TokenSource(token=cluster.operator_token)))
    return kube


class FailingApi(KubeApi):
    """Serves the real API server until ``failure`` is set; then every request fails so."""

    def __init__(self) -> None:
        super().__init__()
        self.failure: str | None = None

    async def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        if self.failure == "disconnect":
            raise aiohttp.ServerDisconnectedError()
        if self.failure == "hang":
            await asyncio.sleep(3600)
        return await super().request(method, path, body, **kwargs)


async def _leader(operators: Operators, identity: str = "a") -> tuple[LeaderElector, FailingApi]:
    settings = operators.settings(identity=identity, **LEASE)
    kube = FailingApi()
    operator_api(operators.cluster, kube)
    elector = LeaderElector(kube, settings)
    assert await elector.try_acquire() is True
    return elector, kube


@pytest.mark.parametrize("failure", ["disconnect", "hang"])
async def test_a_leader_that_cannot_renew_steps_down_within_its_renew_deadline(
    cluster: StrictCluster, operators: Operators, failure: str
) -> None:
    """A disconnect (not an OSError) used to escape the renew loop while kopf kept acting;
    a hung request held one renewal for 6 x 30 s, far over the 15 s lease."""
    elector, kube = await _leader(operators)
    try:
        kube.failure = failure
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.wait_for(elector.keep(), 5)  # returns: steps down, raises nothing
        took = loop.time() - started
        assert elector.is_leader is False
        # The first renewal starts after lease_renew_s (0.2 s) and gives up at the renew
        # deadline (1.0 s later): before the lease (1.5 s) lets anyone else take over.
        assert took < LEASE["lease_duration_s"], took
    finally:
        await kube.close()


def _stamp(offset_s: float) -> str:
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=offset_s)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def _hold(kubectl: Kubectl, holder: str, skew_s: float) -> None:
    """Another replica whose clock is ``skew_s`` off renews the Lease once."""
    path = lease_path(kubectl.cluster)
    lease = await kubectl.get(path)
    lease["spec"].update({"holderIdentity": holder, "renewTime": _stamp(skew_s),
                          "leaseDurationSeconds": 1})
    await kubectl.replace(path, lease)


async def test_expiry_is_judged_by_the_candidates_clock_not_by_the_holders_renew_time(
    cluster: StrictCluster, operators: Operators
) -> None:
    kubectl = Kubectl(cluster)
    _, kube = await _leader(operators, "first")  # creates the Lease
    try:
        candidate = LeaderElector(kube, operators.settings(identity="b", **LEASE))
        # A holder whose clock runs an hour behind, renewing: its renewTime always looks
        # expired to us, yet its lease is alive.
        for _ in range(8):
            await _hold(kubectl, "slow-clock", -3600)
            assert await candidate.try_acquire() is False
            await asyncio.sleep(0.25)
        # A holder whose clock runs an hour ahead stops renewing: its renewTime looks fresh
        # for an hour, yet its lease ends a leaseDurationSeconds after its last renewal.
        await _hold(kubectl, "fast-clock", +3600)
        assert await candidate.try_acquire() is False
        await asyncio.sleep(1.2)
        assert await candidate.try_acquire() is True
        lease = await kubectl.get(lease_path(cluster))
        assert lease["spec"]["holderIdentity"] == "b"
    finally:
        await kube.close()


async def test_an_operator_that_loses_its_lease_stops_acting_at_once(
    cluster: StrictCluster, operators: Operators
) -> None:
    await operators.start(identity="op", **LEASE)
    kubectl = Kubectl(cluster)
    lease = await kubectl.get(lease_path(cluster))
    assert lease["spec"]["holderIdentity"] == "op"
    await _hold(kubectl, "other", 0)  # another replica took it over (say, after a pause)
    task = operators.task
    assert task is not None
    await eventually(task.done, timeout=LEASE["lease_renew_deadline_s"] + 2,
                     message="the operator stopped")
    with pytest.raises(LeaseLost):
        task.result()


async def test_a_graceful_stop_releases_the_lease_and_the_next_replica_leads_at_once(
    cluster: StrictCluster, operators: Operators
) -> None:
    """A rolling update stops the leader with SIGTERM: the next replica used to wait for the
    Lease to expire (15 s). And the stop itself took 5 s more than it needs: kopf waited for
    tasks the operator had created after starting it (it takes them for its own)."""
    await operators.start(identity="op", **LEASE)
    kubectl = Kubectl(cluster)
    loop = asyncio.get_running_loop()
    stopping = loop.time()
    await operators.stop()
    assert loop.time() - stopping < 3.0  # kopf's wait for "hung" tasks is 5 s
    lease = (await kubectl.get(lease_path(cluster)))["spec"]
    assert (lease["holderIdentity"], lease["leaseDurationSeconds"]) == ("", 1)
    kube = operator_api(cluster)
    try:
        successor = LeaderElector(kube, operators.settings(identity="next", **LEASE))
        assert await successor.try_acquire() is True  # at once, not a lease later
        assert (await kubectl.get(lease_path(cluster)))["spec"]["leaseTransitions"] == 0
    finally:
        await kube.close()


async def test_a_replica_releases_only_a_lease_it_still_holds(
    cluster: StrictCluster, operators: Operators
) -> None:
    elector, kube = await _leader(operators, "a")
    kubectl = Kubectl(cluster)
    try:
        await _hold(kubectl, "b", 0)  # b took over meanwhile (a paused, say)
        assert await elector.release() is False
        assert (await kubectl.get(lease_path(cluster)))["spec"]["holderIdentity"] == "b"
        await _hold(kubectl, "a", 0)  # a holds it again
        assert await elector.release() is True
        assert (await kubectl.get(lease_path(cluster)))["spec"]["holderIdentity"] == ""
    finally:
        await kube.close()
