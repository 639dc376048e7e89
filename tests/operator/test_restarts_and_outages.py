"""Nothing is lost or done twice when the operator dies, the database goes away, or the API
server answers errors."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import kmock
import pytest

from duraflow import AsyncClient, PostgresProvider
from tests.kubeapi.fixtures import StrictCluster

from .conftest import NS, Operators, eventually
from .k8s import Kubectl
from .proxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def _external_events(postgres_url: str, schema: str, instance_id: str) -> int:
    provider = await PostgresProvider.connect_async(postgres_url, schema)
    try:
        client = AsyncClient(provider)
        history = await client.read_execution_history(instance_id, 1)
        return [e.kind for e in history].count("ExternalEvent")
    finally:
        await provider.close()


async def test_event_appended_while_the_operator_is_down_is_raised_once(
    cluster: StrictCluster, operators: Operators, postgres_url: str, schema: str
) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    await kubectl.apply_orchestration("offline", {"orchestration": "Approval", "events": []})
    await eventually(lambda: kubectl.status("offline").get("customStatus"))
    await operators.stop()
    await kubectl.json_patch(kubectl.path("orchestrations", "offline"), [
        {"op": "add", "path": "/spec/events/-", "value": {"name": "approve", "data": 1}}])
    await operators.start()
    await eventually(lambda: kubectl.status("offline").get("phase") == "Completed")
    assert kubectl.status("offline")["raisedEvents"] == 1
    assert await _external_events(postgres_url, schema, f"{NS}/offline") == 1


async def test_operator_killed_between_raising_and_recording_raises_again_only_once(
    cluster: StrictCluster, operators: Operators, postgres_url: str, schema: str
) -> None:
    running = await operators.start()
    kubectl = Kubectl(cluster)
    await kubectl.apply_orchestration("crash", {"orchestration": "Approval", "events": []})
    await eventually(lambda: kubectl.status("crash").get("customStatus"))

    # The raise reaches the engine, then the operator dies before its status write.
    raised = asyncio.Event()
    real_raise = running.state.client.raise_event

    async def raise_then_die(*args: Any, **kwargs: Any) -> None:
        await real_raise(*args, **kwargs)
        raised.set()
        await asyncio.sleep(3600)  # the kill lands here, before anything is recorded

    running.state.client.raise_event = raise_then_die  # type: ignore[method-assign]
    await kubectl.json_patch(kubectl.path("orchestrations", "crash"), [
        {"op": "add", "path": "/spec/events/-", "value": {"name": "approve", "data": "once"}}])
    await asyncio.wait_for(raised.wait(), 20)
    await operators.kill()
    assert kubectl.status("crash").get("raisedEvents", 0) == 0  # nothing was recorded

    await operators.start()  # resumes: raises spec.events[0] again, with the same key
    await eventually(lambda: kubectl.status("crash").get("raisedEvents") == 1)
    await eventually(lambda: kubectl.status("crash").get("phase") == "Completed")
    assert kubectl.status("crash")["output"] == "once"
    assert await _external_events(postgres_url, schema, f"{NS}/crash") == 1


async def test_database_outage_sets_a_condition_and_loses_nothing(
    cluster: StrictCluster, operators: Operators, postgres_url: str
) -> None:
    parts = urlsplit(postgres_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    via_proxy = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    await operators.start(database_url=via_proxy)
    kubectl = Kubectl(cluster)
    await kubectl.apply_orchestration("before", {"orchestration": "Approval", "events": []})
    await eventually(lambda: kubectl.status("before").get("customStatus"))

    await proxy.stop()  # the database goes away
    await kubectl.apply_orchestration("during", {"orchestration": "Hello", "input": "outage"})
    await kubectl.json_patch(kubectl.path("orchestrations", "before"), [
        {"op": "add", "path": "/spec/events/-", "value": {"name": "approve", "data": "late"}}])
    await eventually(lambda: kubectl.condition("during", "DatabaseReachable").get("status")
                     == "False", timeout=30)
    assert kubectl.condition("during", "DatabaseReachable")["reason"] == "DatabaseUnavailable"
    assert "DatabaseUnavailable" in kubectl.reasons("during", "Warning")

    await proxy.start()  # ... and comes back on the same port
    await eventually(lambda: kubectl.status("during").get("phase") == "Completed", timeout=40)
    await eventually(lambda: kubectl.status("before").get("phase") == "Completed", timeout=40)
    assert kubectl.status("during")["output"] == "Hello, outage!"
    assert kubectl.status("before")["output"] == "late"
    assert kubectl.condition("during", "DatabaseReachable")["status"] == "True"
    await operators.kill()  # before its database goes for good
    await proxy.stop()


async def test_api_server_errors_are_retried(cluster: StrictCluster, operators: Operators) -> None:
    await operators.start()
    kubectl = Kubectl(cluster)
    cluster.server["patch", kmock.subresource("status"), kmock.name("flaky")][:2] << 500
    await kubectl.apply_orchestration("flaky", {"orchestration": "Hello", "input": "retry"})
    await eventually(lambda: kubectl.status("flaky").get("phase") == "Completed", timeout=30)
    assert kubectl.status("flaky")["output"] == "Hello, retry!"


async def test_a_cr_whose_started_status_lands_late_still_follows_its_instance(
    cluster: StrictCluster, operators: Operators
) -> None:
    """kopf's status write of the reconcile (instanceId, startedAt) is refused for a few
    seconds while the instance completes at once. The status loop's JSON patch then finds no
    status on the CR (422), it re-reads the CR, and the next notification found the CR "not
    started": the loop dropped the instance, and the CR stayed Running for good."""
    await operators.start()
    kubectl = Kubectl(cluster)
    kopfs = kmock.headers({"Content-Type": "application/merge-patch+json"})
    cluster.server["patch", kmock.subresource("status"), kmock.name("late"), kopfs][:2] << 500
    await kubectl.apply_orchestration("late", {"orchestration": "Hello", "input": "late"})
    await eventually(lambda: kubectl.status("late").get("phase") == "Completed", timeout=30)
    assert kubectl.status("late")["output"] == "Hello, late!"
    status_writes = [r for r in kubectl.operator_writes() if r.name == "late"
                     and r.subresource == "status"]
    codes = [r.code for r in status_writes]
    assert codes.count(500) == 2  # kopf's, refused
    assert 422 in codes  # the loop's, on a CR without that status


async def test_the_worker_registry_loop_survives_an_api_server_that_drops_connections(
    cluster: StrictCluster, operators: Operators
) -> None:
    """A disconnect is an aiohttp.ClientError, not an OSError: it escaped the registry loop,
    which ended for good (pool statuses frozen, /healthz 503 until a restart)."""
    import aiohttp

    from .test_workerpool import SPEC

    running = await operators.start()
    kubectl = Kubectl(cluster)
    await kubectl.apply_pool("dropped", {**SPEC, "tags": []})
    await eventually(lambda: "liveWorkers" in kubectl.pool("dropped")["status"])
    real_request = running.state.kube.request
    dropped: list[str] = []

    async def request(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        if path.endswith("/workerpools/dropped/status") and len(dropped) < 3:
            dropped.append(path)  # the connection drops (after the client's own retries)
            raise aiohttp.ServerDisconnectedError()
        return await real_request(method, path, *args, **kwargs)

    running.state.kube.request = request  # type: ignore[method-assign]
    running.state.pools[(NS, "dropped")]["status"]["backlog"] = -1  # something to write
    await eventually(lambda: len(dropped) == 3, message="three writes dropped")
    await eventually(lambda: running.state.pools[(NS, "dropped")]["status"]["backlog"] == 0,
                     message="written after all")
    registry = next(t for t in asyncio.all_tasks() if t.get_name() == "duraflow-registry")
    assert not registry.done()
