"""Every client the operator builds (kopf's and its own) names the operator, names its field
manager on every write, and sends the ServiceAccount token as it is now, not as it was when
the operator started (projected tokens rotate about hourly; the old one then expires)."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

from tests.kubeapi.fixtures import StrictCluster

from .conftest import Operators, eventually
from .k8s import Kubectl
from .test_workerpool import SPEC

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WRITES = {"create", "update", "patch"}


def _kopf_finalizer_patch(kubectl: Kubectl, since: int = 0) -> bool:
    """kopf's own requests are among them: its finalizer JSON patch (the operator's client
    patches CRs' status only)."""
    return any(r.resource == "orchestrations" and r.verb == "patch" and not r.subresource
               and r.content_type == "application/json-patch+json"
               for r in kubectl.operator_requests(since))


async def test_every_request_names_the_operator_and_carries_the_current_token(
    cluster: StrictCluster, operators: Operators, tmp_path: Path
) -> None:
    server = cluster.server
    token = tmp_path / "token"
    token.write_text("first-token\n")
    server.add_token("first-token", cluster.operator_user)
    # Re-read at every request here (the period: test_a_token_file_is_reread_when_...).
    await operators.start(kube_token_file=str(token), kube_token_reread_s=0)
    kubectl = Kubectl(cluster)
    await kubectl.apply_orchestration("who", {"orchestration": "Hello", "input": "a"})
    await kubectl.apply_pool("whopool", SPEC)
    await eventually(lambda: kubectl.status("who").get("phase") == "Completed")
    await eventually(lambda: kubectl.exists("policy/v1/poddisruptionbudgets", "whopool"))

    requests = kubectl.operator_requests()
    assert {r.user_agent for r in requests} == {f"duraflow-operator/{version('duraflow')}"}
    assert {r.manager for r in requests} == {"duraflow-operator"}  # managedFields' name
    writes = [r for r in requests if r.verb in WRITES]
    assert {r.field_manager for r in writes} == {"duraflow-operator"}
    assert _kopf_finalizer_patch(kubectl)
    assert any(r.resource == "events" for r in writes)  # the operator's own client
    assert {r.token for r in requests} == {"first-token"}

    # The kubelet rotates the projected token, and the old one expires.
    token.write_text("second-token\n")
    server.add_token("second-token", cluster.operator_user)
    server.revoke_token("first-token")
    mark = kubectl.mark()
    await kubectl.apply_orchestration("who2", {"orchestration": "Hello", "input": "b"})
    await eventually(lambda: kubectl.status("who2").get("phase") == "Completed")
    later = kubectl.operator_requests(mark)
    assert _kopf_finalizer_patch(kubectl, mark)  # kopf's requests among them
    assert {(r.token, r.code < 400) for r in later} == {("second-token", True)}


async def test_a_401_makes_the_client_reread_the_token_at_once(
    cluster: StrictCluster, tmp_path: Path
) -> None:
    from duraflow_operator.connection import Connection, TokenSource
    from duraflow_operator.kube import ApiError, KubeApi

    server = cluster.server
    token = tmp_path / "token"
    token.write_text("old")
    server.add_token("old", cluster.operator_user)
    kube = KubeApi()
    kube.configure(Connection(server=cluster.url, token=TokenSource(path=str(token),
                                                                    reread_s=3600)))
    path = f"/apis/coordination.k8s.io/v1/namespaces/{cluster.release_namespace}/leases/none"
    try:
        with pytest.raises(ApiError):
            await kube.request("GET", path)  # 404: reads the token once
        token.write_text("new")  # rotated, and the old one expired
        server.add_token("new", cluster.operator_user)
        server.revoke_token("old")
        with pytest.raises(ApiError) as missing:
            await kube.request("GET", path)  # 401, re-read, retried at once: 404
        assert missing.value.status == 404
    finally:
        await kube.close()
    sent = [(r.token, r.code) for r in server.records if r.path == path]
    assert sent == [("old", 404), ("old", 401), ("new", 404)]


def test_a_token_file_is_reread_when_its_period_passed(tmp_path: Path) -> None:
    from duraflow_operator.connection import TokenSource

    token = tmp_path / "token"
    token.write_text("one\n")
    source = TokenSource(path=str(token), reread_s=3600)
    assert source.header() == "Bearer one"
    token.write_text("two\n")
    assert source.header() == "Bearer one"  # within the period
    source.invalidate()
    assert source.header() == "Bearer two"
    token.unlink()
    source.invalidate()
    assert source.header() == "Bearer two"  # a failed read keeps the last token
    fresh = TokenSource(path=str(tmp_path / "t2"), reread_s=0)
    (tmp_path / "t2").write_text("a")
    assert fresh.header() == "Bearer a"
    (tmp_path / "t2").write_text("b")
    assert fresh.header() == "Bearer b"
