"""Starting and stopping worker processes (``tests.cluster.runner``) for the multi-process tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys


def spawn_runner(url: str, schema: str, options: dict[str, object]) -> subprocess.Popen[str]:
    """Start ``tests.cluster.runner`` with ``options``; returns once it reports ready."""
    cmd = [sys.executable, "-m", "tests.cluster.runner", url, schema, json.dumps(options)]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "ready" in line, f"worker did not start: {line!r} {proc.stderr.read()}"
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM (graceful), then SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
