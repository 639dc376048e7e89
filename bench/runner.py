"""Runs one engine × workload × repetition in a fresh subprocess and measures it from outside.

Every run owns its store: a new PostgreSQL database (dropped afterwards) or a SQLite file in a
temporary directory. For PostgreSQL the run is split in two processes: ``--setup`` creates and
migrates the store, then — once all its sessions have gone, so the counters are flushed — the
database's ``xact_commit`` is read, the workload process runs, its sessions are again awaited,
and the counter is read a second time. The difference is every transaction the engine made for
the workload (connecting and shutting down included), and nothing from anybody else.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import pgstats, quiet

ROOT = Path(__file__).resolve().parent.parent
#: The workloads each engine has (DBOS runs W6 in no form here; see bench/README.md).
SUPPORTED = {
    "duraflow": {"W1", "W2", "W3", "W4", "W5", "W6", "W7", "S1"},
    "duroxide": {"W1", "W2", "W3", "W4", "W5", "W6", "W7"},
    "dbos": {"W1", "W2", "W3", "W4", "W5", "W7"},
}
BACKENDS = {"duraflow": ("sqlite", "postgres"), "duroxide": ("sqlite", "postgres"),
            "dbos": ("postgres",)}


@dataclass(frozen=True)
class Job:
    """One measured run."""

    engine: str
    backend: str
    workload: str
    rep: int
    n: int
    timeout_s: float
    variant: str = ""  # "" | "listen-off" | "1-process"
    idle_s: float = 20.0
    settle_s: float = 0.0
    #: Duraflow runs with this ``RuntimeOptions(build_id=...)`` (``--build-id``): the cost
    #: of builds on the hot path, against a sitting without one.
    build_id: str | None = None
    rounds: int = 3  # S1: ticks of each schedule measured

    @property
    def label(self) -> str:
        suffix = f" ({self.variant})" if self.variant else ""
        return f"{self.engine}/{self.backend} {self.workload}{suffix} #{self.rep}"

    def command(self, out: str, url: str | None, sqlite_path: str | None,
                setup: bool = False) -> list[str]:
        if self.workload == "S1":  # schedules: a Duraflow program of their own
            cmd = [sys.executable, "-m", "bench.schedule_program", "--backend", self.backend,
                   "--n", str(self.n), "--rounds", str(self.rounds)]
            cmd += ["--url", str(url)] if url else ["--sqlite-path", str(sqlite_path)]
        elif self.engine == "dbos":
            cmd = [sys.executable, "-m", "bench.dbos_program", "--url", str(url)]
        else:
            cmd = [sys.executable, "-m", "bench.api_program", "--engine", self.engine,
                   "--backend", self.backend]
            cmd += ["--url", str(url)] if url else ["--sqlite-path", str(sqlite_path)]
            if self.variant == "1-process":
                cmd += ["--processes", "1"]
            if self.build_id is not None and self.engine == "duraflow":
                cmd += ["--build-id", self.build_id]
        if self.variant == "listen-off":
            cmd.append("--no-listen")
        if setup:
            return [*cmd, "--setup"]
        return [*cmd, "--workload", self.workload, "--n", str(self.n), "--timeout-s",
                str(self.timeout_s), "--idle-s", str(self.idle_s), "--settle-s",
                str(self.settle_s), "--out", out]


@dataclass
class Outcome:
    ok: bool
    error: str | None = None
    report: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    process_cpu_s: float = 0.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _spawn(cmd: list[str], timeout_s: float, log: Path, out: str | None) -> Outcome:
    """Run ``cmd`` in its own process group, bounded by ``timeout_s``; kill the group after."""
    cpu0, began = _children_cpu(), time.perf_counter()
    with log.open("a") as err:
        err.write(f"$ {' '.join(cmd)}\n")
        err.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=err, stderr=err, start_new_session=True)
        try:
            code = proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return Outcome(False, f"timed out after {timeout_s:.0f} s",
                           wall_s=time.perf_counter() - began)
        finally:
            with contextlib.suppress(ProcessLookupError):  # workers a crashed run left
                os.killpg(proc.pid, signal.SIGKILL)
    outcome = Outcome(code == 0, wall_s=time.perf_counter() - began,
                      process_cpu_s=_children_cpu() - cpu0)
    if code != 0:
        tail = log.read_text()[-1500:]
        outcome.error = f"exit status {code}: …{tail}"
    elif out is not None:
        outcome.report = json.loads(Path(out).read_text())
    return outcome


def run_job(job: Job, base_url: str | None, log_dir: Path,
            idle_gate_s: float = 0.0) -> dict[str, Any]:
    """Run ``job`` and return its record (see bench/result.schema.json, ``runs``), once the
    machine is quiet or ``idle_gate_s`` has passed (``bench/quiet.py``)."""
    log = log_dir / f"{job.engine}-{job.backend}-{job.workload}{job.variant}-{job.rep}.log"
    idle_wait_s, busy_before = (quiet.wait_until_idle(max_wait_s=idle_gate_s)
                                if idle_gate_s > 0 else (0.0, None))
    record: dict[str, Any] = {
        "engine": job.engine, "backend": job.backend, "workload": job.workload,
        "variant": job.variant, "rep": job.rep, "n": job.n, "build_id": job.build_id,
        "loadavg_before":
        list(os.getloadavg()), "idle_wait_s": idle_wait_s, "cpu_busy_before": busy_before,
    }
    with tempfile.TemporaryDirectory(prefix="duraflow-bench-") as tmp:
        out = os.path.join(tmp, "out.json")
        db_name = (f"bench_{job.engine}_{job.workload}_{job.rep}_"
                   f"{job.variant.replace('-', '')}_{os.getpid()}").lower()
        url = None
        try:
            if job.backend == "postgres":
                assert base_url, "PostgreSQL runs need a database URL"
                record["database"] = db_name
                url = pgstats.create_database(base_url, db_name)
                setup = _spawn(job.command(out, url, None, setup=True), 120, log, None)
                if not setup.ok:
                    raise RuntimeError(f"setup failed: {setup.error}")
                pgstats.wait_backends_gone(base_url, db_name)
                x0 = pgstats.xact_commit(base_url, db_name)
            if job.backend == "sqlite" and job.workload == "S1":  # its schedules first
                setup = _spawn(job.command(out, None, os.path.join(tmp, "bench.db"),
                                           setup=True), 120, log, None)
                if not setup.ok:
                    raise RuntimeError(f"setup failed: {setup.error}")
            outcome = _spawn(job.command(out, url, os.path.join(tmp, "bench.db")),
                             job.timeout_s + 60, log, out)
            if job.backend == "postgres" and outcome.ok:
                record["backends_gone_after_s"] = pgstats.wait_backends_gone(base_url or "",
                                                                             db_name)
                xact = pgstats.xact_commit(base_url or "", db_name) - x0
                record["xact_commit"] = xact
                # per orchestration (W2, W4: activity; S1: tick started, which it reports)
                units = outcome.report.get("figures", {}).get("units") or job.n
                record["xact_per_unit"] = xact / units
        except Exception as exc:  # a broken run is recorded, and the sitting goes on
            outcome = Outcome(False, f"{type(exc).__name__}: {exc}")
        finally:
            if job.backend == "postgres" and base_url:
                pgstats.drop_database(base_url, db_name)
    record.update({
        "ok": outcome.ok, "error": outcome.error, "wall_s": outcome.wall_s,
        "process_cpu_s": outcome.process_cpu_s,
        "figures": outcome.report.get("figures", {}),
        "cpu_s": outcome.report.get("cpu_s"),
        "peak_rss_mib": outcome.report.get("peak_rss_mib"),
        "engine_version": outcome.report.get("engine_version"),
        "options": outcome.report.get("options"),
        "loadavg_after": list(os.getloadavg()),
    })
    return record
