"""Running ``duraflow worker`` as a real process, and a real Prometheus server, for the tests.

``WorkerProcess`` starts the command the way a pod does (configuration in env variables),
reads its log lines as they come (a thread drains stderr so the pipe never fills), and waits
for the ``ready`` line. ``Prometheus`` is the Debian package's server, installed on demand
(``ensure_prometheus``), started on a free loopback port with a temporary config and data
directory, never the system service.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout_s: float = 5.0) -> tuple[int, str]:
    """(status, body); a refused connection is status 0."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, ""


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str,
               interval_s: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


class WorkerProcess:
    """One ``python -m duraflow.cli worker`` process configured through env variables."""

    def __init__(self, name: str, env: dict[str, str], args: tuple[str, ...] = ()) -> None:
        self.name = name
        self.port = int(env.get("DURAFLOW_METRICS_PORT", "0"))
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), "TEST_WORKER_NAME": name,
                    "DURAFLOW_WORKER_NODE_ID": name, "DURAFLOW_METRICS_HOST": "127.0.0.1",
                    **env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "duraflow.cli", "worker", *args], env=full_env, cwd=ROOT,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if " ready (" in line:
                self._ready.set()
        self._ready.set()  # EOF: the process ended

    def wait_ready(self, timeout_s: float = 30.0) -> WorkerProcess:
        self._ready.wait(timeout_s)
        if self.proc.poll() is not None or not any(" ready (" in line for line in self.lines):
            pytest.fail(f"worker {self.name} did not start:\n" + "\n".join(self.lines))
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, str]:
        return http_get(self.url(path))

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout_s: float) -> int:
        """The exit code; fails the test if the process is still running at the deadline."""
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {self.name} still running {timeout_s:g} s after SIGTERM:\n"
                        + "\n".join(self.lines))
        self._reader.join(5)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)

    def log(self) -> str:
        return "\n".join(self.lines)


# ─── Prometheus ─────────────────────────────────────────────────────────────


def ensure_prometheus() -> str:
    """The ``prometheus`` binary, installed from Debian's package where missing (as root).

    Without it, and unable to install it, the test skips, except under ``CI=true``, where it
    fails: CI must not pass by testing nothing.
    """
    found = shutil.which("prometheus")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus"]
        if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True,
                           timeout=600)
            subprocess.run(install, env=env, capture_output=True, timeout=900)
        found = shutil.which("prometheus")
    if found is None:
        reason = "the prometheus binary is missing and could not be installed (needs root)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


class Prometheus:
    """A private Prometheus server scraping ``targets`` every second."""

    def __init__(self, binary: str, targets: list[str]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="duraflow-prom-"))
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "duraflow-worker",
                                "static_configs": [{"targets": targets}]}],
        }
        (self.root / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self._log = (self.root / "log").open("w")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.root / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.root / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log)
        wait_until(lambda: http_get(f"http://127.0.0.1:{self.port}/-/ready")[0] == 200,
                   60, "Prometheus to be ready")

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?"
               + urllib.parse.urlencode({"query": expr}))
        status, body = http_get(url)
        assert status == 200, body
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single value of an instant query, None when it has no series."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)


# ─── A PostgreSQL server of our own, to restart ─────────────────────────────


class RestartableServer:
    """A throwaway PostgreSQL cluster (the harness's ``_Throwaway``) that can be stopped
    and started again on the same port and data, like a database restart in production.
    Never the machine's shared server."""

    def __init__(self) -> None:
        from tests.conftest import _Throwaway

        self._server = _Throwaway()
        self.url = self._server.start()

    def _pg_ctl(self, *args: str) -> None:
        s = self._server
        subprocess.run(s._cmd(f"{s.bindir}/pg_ctl", "-D", s.datadir, *args), check=True,
                       capture_output=True, timeout=90)

    def stop_server(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")

    def start_server(self) -> None:
        s = self._server
        options = f"-p {s.port} -k {s.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-o", options, "-l", os.path.join(s.root, "log"), "-w", "-t", "60",
                     "start")

    def remove(self) -> None:
        self._server.stop()
