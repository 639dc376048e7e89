"""Smoke test of the benchmark harness (bench/): a tiny sitting on Duraflow completes on
SQLite and PostgreSQL, writes JSON that validates against the result schema, a chart and a
RESULTS.md, and drops every database it created. No timing is asserted: speed lives in the
benchmarks themselves.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import asyncpg
import jsonschema
import pytest

from bench.cli import parse_args, plan

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "bench" / "result.schema.json").read_text())


def test_plan_alternates_engines_within_each_workload() -> None:
    jobs, sizes = plan(parse_args(["--compare", "--workloads", "W1,W6,W7"]))
    assert sizes["W1"] == 500 and sizes["W7"] == 10_000
    first = [(j.engine, j.backend, j.variant) for j in jobs if j.workload == "W1" and j.rep == 1]
    assert first[:3] == [("duraflow", "postgres", ""), ("duraflow", "postgres", "listen-off"),
                         ("duroxide", "postgres", "")]
    order = [j.workload for j in jobs]
    assert order.index("W6") < order.index("W7") < max(i for i, w in enumerate(order) if w == "W1")
    assert {j.rep for j in jobs if j.workload == "W7"} == {1}  # 10,000 instances: once
    assert not [j for j in jobs if j.engine == "dbos" and j.backend == "sqlite"]
    assert {j.variant for j in jobs if j.workload == "W6"} == {"", "1-process"}


def test_a_build_id_reaches_every_duraflow_run_and_only_those() -> None:
    jobs, _ = plan(parse_args(["--compare", "--workloads", "W1,W6", "--build-id", "b7"]))
    for job in jobs:
        command = job.command("out.json", "postgresql://db", None)
        assert ("--build-id" in command) == (job.engine == "duraflow"), job.label
    assert all(j.build_id == "b7" for j in jobs)
    assert all(j.build_id is None for j in plan(parse_args(["--workloads", "W1"]))[0])


def test_s1_runs_once_per_backend_with_its_own_program_and_schedules_made_in_setup() -> None:
    jobs, sizes = plan(parse_args(["--compare", "--workloads", "S1"]))
    assert sizes["S1"] == 1_000
    assert [(j.engine, j.backend, j.rep) for j in jobs] == [
        ("duraflow", "postgres", 1), ("duraflow", "sqlite", 1)]  # schedules are Duraflow's
    setup = jobs[0].command("out.json", "postgresql://x/db", None, setup=True)
    assert setup[2] == "bench.schedule_program" and "--setup" in setup
    assert setup[setup.index("--n") + 1] == "1000" and setup[setup.index("--rounds") + 1] == "3"


def test_bad_size_override_is_rejected() -> None:
    with pytest.raises(SystemExit, match="W9=3"):
        plan(parse_args(["--size", "W9=3"]))


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_tiny_sitting_writes_valid_results(tmp_path: Path, postgres_url: str) -> None:
    md = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--engines", "duraflow",
         "--backends", "sqlite,postgres", "--workloads", "W1,W3", "--no-ceiling",
         "--database-url", postgres_url, "--out-dir", str(tmp_path), "--results-md", str(md)],
        cwd=ROOT, capture_output=True, text=True, timeout=200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [out] = tmp_path.glob("*.json")
    result = json.loads(out.read_text())
    jsonschema.validate(result, SCHEMA)
    seen = {(r["backend"], r["workload"]) for r in result["runs"] if r["ok"] and r["variant"] == ""}
    assert seen == {(b, w) for b in ("sqlite", "postgres") for w in ("W1", "W3")}
    pg_w1 = next(r for r in result["runs"] if r["backend"] == "postgres"
                 and r["workload"] == "W1" and r["variant"] == "")
    assert pg_w1["xact_commit"] > 0 and pg_w1["figures"]["orch_per_s"] > 0
    assert result["summary"]["Duraflow sqlite"]["W3"]["p50_ms"]["n"] == 1
    assert list(tmp_path.glob("*.png")), "no chart written"
    assert "W1 orchestrations/s" in md.read_text()

    async def leftovers() -> list[str]:
        conn = await asyncpg.connect(postgres_url)
        try:
            names = [r["database"] for r in result["runs"] if "database" in r]
            rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname = ANY($1)",
                                    names)
            return [row["datname"] for row in rows]
        finally:
            await conn.close()

    assert asyncio.run(leftovers()) == []


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_scale_out_workload_runs_real_worker_processes(tmp_path: Path, postgres_url: str) -> None:
    """W6 starts ``duraflow worker`` processes: the harness must see them come up (their
    ready line is a log record on stderr) and count the work they did, 1 and 3 processes."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--engines", "duraflow",
         "--backends", "postgres", "--workloads", "W6", "--no-ceiling", "--no-chart",
         "--database-url", postgres_url, "--out-dir", str(tmp_path), "--no-results-md"],
        cwd=ROOT, capture_output=True, text=True, timeout=200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [out] = tmp_path.glob("*.json")
    runs = json.loads(out.read_text())["runs"]
    w6 = {r["variant"]: r for r in runs if r["workload"] == "W6"}
    assert set(w6) == {"", "1-process"}
    for run in w6.values():
        assert run["ok"], run.get("error")
        assert run["figures"]["orch_per_s"] > 0 and run["figures"]["processes"] in (1, 3)
