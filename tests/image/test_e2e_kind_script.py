"""`make e2e-kind` needs Docker, kind, kubectl and helm; where one is missing it stops at once
with a message naming it (it never half-creates a cluster)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "e2e-kind.sh"
TOOLS = ("docker", "kind", "kubectl", "helm")
BASICS = ("bash", "sed", "dirname", "cat", "cmp", "ls", "date", "grep")


def _path_with(tmp_path: Path, present: dict[str, str]) -> str:
    """A PATH holding only the shell basics plus fake tools (name -> script body)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in BASICS:
        real = shutil.which(tool)
        assert real, tool
        (bin_dir / tool).symlink_to(real)
    for name, body in present.items():
        fake = bin_dir / name
        fake.write_text(f"#!/bin/sh\n{body}\n")
        fake.chmod(0o755)
    return str(bin_dir)


def _run(path: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PATH", "KUBECONFIG"}}
    return subprocess.run([shutil.which("bash") or "bash", str(SCRIPT)], capture_output=True,
                          text=True, env={**env, "PATH": path}, timeout=60, check=False)


@pytest.mark.parametrize("missing", TOOLS)
def test_a_missing_tool_is_named(missing: str, tmp_path: Path) -> None:
    fakes = {tool: "exit 0" for tool in TOOLS if tool != missing}
    result = _run(_path_with(tmp_path, fakes))
    assert result.returncode != 0
    assert f"'{missing}' is not installed" in result.stderr


def test_a_docker_cli_without_an_engine_is_reported(tmp_path: Path) -> None:
    fakes = {tool: "exit 0" for tool in TOOLS}
    fakes["docker"] = 'if [ "$1" = info ]; then exit 1; fi; exit 0'
    fakes["kind"] = "echo kind must not be called >&2; exit 1"
    result = _run(_path_with(tmp_path, fakes))
    assert result.returncode != 0
    assert "no Docker engine answers" in result.stderr
    assert "kind must not be called" not in result.stderr
