"""kubectl (a Go client: discovery, REST mapping, Status decoding, the scale subresource)
works against the strict server and shows its refusals as it shows kube-apiserver's."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.kubeapi.fixtures import ROOT, StrictCluster

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None,
    reason="kubectl is not installed: the Go client's view is checked only where it is (the"
    " server's rules have their own tests in tests/kubeapi without it)")


async def test_apply_get_patch_scale_delete(kube_cluster: StrictCluster, tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig(tmp_path / "config"))}

    async def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(subprocess.run, ["kubectl", "-n", "ns1", *args], env=env,
                                       capture_output=True, text=True, timeout=60, cwd=ROOT)

    applied = await kubectl("apply", "--validate=false", "-f", "crds/samples/hello.yaml")
    assert applied.returncode == 0, applied.stderr
    spec = await kubectl("get", "orch", "hello", "-o", "jsonpath={.spec.deletionPolicy}")
    assert spec.stdout == "Cancel"  # the CRD's default
    refused = await kubectl("patch", "orch", "hello", "--type=merge",
                            "-p", '{"spec":{"orchestration":"Other"}}')
    assert refused.returncode == 1
    assert refused.stderr.strip() == ('The Orchestration "hello" is invalid: spec: Forbidden: '
                                      'orchestration is immutable')
    assert (await kubectl("apply", "--validate=false", "-f",
                          "crds/samples/workerpool.yaml")).returncode == 0
    scaled = await kubectl("scale", "wp", "workers", "--replicas=3")
    assert scaled.returncode == 0, scaled.stderr
    replicas = await kubectl("get", "wp", "workers", "-o", "jsonpath={.spec.replicas}")
    assert replicas.stdout == "3"
    assert (await kubectl("delete", "orch", "hello")).returncode == 0
    missing = await kubectl("get", "orch", "hello")
    assert 'orchestrations.duraflow.io "hello" not found' in missing.stderr
