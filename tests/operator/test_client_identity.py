"""Every client the operator builds (kopf's and its own) names the operator, names its field
manager on every write, and sends the ServiceAccount token as it is now, not as it was when
the operator started (projected tokens rotate about hourly)."""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from .conftest import NS, Operators, eventually
from .k8s import USER_AGENT, Kubectl, exists
from .test_workerpool import SPEC

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WRITES = {"POST", "PUT", "PATCH"}


def _operators_requests(cluster: Any, since: int = 0) -> list[Any]:
    return [r for r in list(cluster)[since:] if r.headers.get("User-Agent") != USER_AGENT]


async def test_every_request_names_the_operator_and_carries_the_current_token(
    cluster: Any, operators: Operators, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("first-token\n")
    await operators.start(kube_token_file=str(token), kube_token_reread_s=0.2)
    kubectl = Kubectl(cluster)
    await kubectl.apply_orchestration("who", {"orchestration": "Hello", "input": "a"})
    await kubectl.apply_pool("whopool", SPEC)
    await eventually(lambda: kubectl.status("who").get("phase") == "Completed")
    await eventually(lambda: exists(cluster, "policy/v1/poddisruptionbudgets", NS, "whopool"))

    requests = _operators_requests(cluster)
    agents = {r.headers.get("User-Agent") for r in requests}
    assert agents == {f"duraflow-operator/{version('duraflow')}"}
    writes = [r for r in requests if r.method.value in WRITES]
    assert {r.params.get("fieldManager") for r in writes} == {"duraflow-operator"}
    assert any(isinstance(r.data, list) for r in writes)  # kopf's finalizer JSON patch
    assert any(r.url.path.endswith("/events") for r in writes)  # the operator's own client
    assert {r.headers.get("Authorization") for r in requests} == {"Bearer first-token"}

    token.write_text("second-token\n")  # the kubelet rotated the projected token
    await asyncio.sleep(0.3)
    mark = len(list(cluster))
    await kubectl.apply_orchestration("who2", {"orchestration": "Hello", "input": "b"})
    await eventually(lambda: kubectl.status("who2").get("phase") == "Completed")
    later = _operators_requests(cluster, mark)
    assert any(isinstance(r.data, list) for r in later)  # kopf's requests among them
    assert {r.headers.get("Authorization") for r in later} == {"Bearer second-token"}


async def test_a_401_makes_the_client_reread_the_token_at_once(
    cluster: Any, tmp_path: Path
) -> None:
    from duraflow_operator.connection import Connection, TokenSource
    from duraflow_operator.kube import ApiError, KubeApi

    token = tmp_path / "token"
    token.write_text("old")
    kube = KubeApi()
    kube.configure(Connection(server=str(cluster.url).rstrip("/"),
                              token=TokenSource(path=str(token), reread_s=3600)))
    path = "/apis/coordination.k8s.io/v1/namespaces/ns1/leases/none"
    try:
        with pytest.raises(ApiError):
            await kube.request("GET", path)  # 404: reads the token once
        token.write_text("new")
        cluster.refuse("GET", "leases", 401, "Unauthorized", "token expired")
        with pytest.raises(ApiError) as missing:
            await kube.request("GET", path)  # 401, re-read, retried at once: 404
        assert missing.value.status == 404
    finally:
        await kube.close()
    sent = [r.headers.get("Authorization") for r in cluster if r.url.path == path]
    assert sent == ["Bearer old", "Bearer old", "Bearer new"]


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
