"""The operator's Events are accepted by kube-apiserver. Each used to be posted with
``generateName: "<cr name>."``, which is not a valid name prefix (only a trailing '-' is
allowed to end one): every Event was refused (422), logged, and lost. Posted here to the
strict test API server, with the operator's token under the chart's RBAC."""

from __future__ import annotations

from pathlib import Path

import pytest
from duraflow_operator.connection import Connection, TokenSource
from duraflow_operator.kube import KubeApi

from tests.kubeapi.fixtures import strict_cluster

NAMES = ["o1", "gpu.pool", "x" * 253]


@pytest.mark.parametrize("name", NAMES, ids=["short", "dotted", "longest"])
async def test_every_event_the_operator_posts_is_accepted(name: str, tmp_path: Path) -> None:
    async with strict_cluster("cluster-wide") as cluster:
        token = tmp_path / "token"
        token.write_text(cluster.operator_token)
        kube = KubeApi()
        kube.configure(Connection(server=cluster.url.rstrip("/"),
                                  token=TokenSource(path=str(token))))
        body = {"apiVersion": "duraflow.io/v1alpha1", "kind": "Orchestration",
                "metadata": {"name": name, "namespace": "ns1", "uid": "u-1"}}
        try:
            for reason in ("Started", "Completed"):
                await kube.post_event(body, "Normal", reason, f"the instance is {reason}")
        finally:
            await kube.close()
        posts = cluster.server.requests_of(resource="events", verb="create")
        assert [r.code for r in posts] == [201, 201]
        events = (await cluster.admin.get("/api/v1/namespaces/ns1/events")).ok()["items"]
        assert sorted(e["reason"] for e in events) == ["Completed", "Started"]
        assert {e["involvedObject"]["name"] for e in events} == {name}
