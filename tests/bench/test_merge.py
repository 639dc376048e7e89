"""``python -m bench --merge``: a later sitting's runs replace an earlier one's, and the
combined result still validates and says where each run came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from bench import report
from bench.merge import merge

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "bench" /
                     "result.schema.json").read_text())


def run(workload: str, value: float, n: int = 10) -> dict[str, Any]:
    return {"engine": "duraflow", "backend": "postgres", "workload": workload, "variant": "",
            "rep": 1, "n": n, "ok": True, "error": None, "figures": {"orch_per_s": value},
            "wall_s": 1.0, "loadavg_before": [1.0, 1.0, 1.0], "loadavg_after": [2.0, 2.0, 2.0]}


def sitting(path: Path, started: str, runs: list[dict[str, Any]]) -> Path:
    summary = report.summarise_runs(runs)
    path.write_text(json.dumps({
        "schema_version": 1, "started": started, "finished": started, "mode": "full",
        "repetitions": 1, "sizes": {"W1": 10, "W7": 10},
        "machine": {"hostname": "h", "platform": "p", "python": "3.11", "cpu_count": 2,
                    "cpu_model": "c", "loadavg_start": [0.0, 0.0, 0.0],
                    "loadavg_end": [0.0, 0.0, 0.0]},
        "postgres": {"version": "15", "url": "postgresql://x/test"}, "ceiling": None,
        "engines": {"duraflow": {"version": "0.1.0", "options": {}}}, "runs": runs,
        "summary": summary, "scale_out": {},
    }))
    return path


def test_later_sitting_replaces_same_workload_and_keeps_the_rest(tmp_path: Path) -> None:
    a = sitting(tmp_path / "a.json", "2026-01-01T00:00:00+00:00",
                [run("W1", 50.0), run("W7", 1.0)])
    b = sitting(tmp_path / "b.json", "2026-01-02T00:00:00+00:00", [run("W7", 9.0, n=10_000)])
    merged = merge([a, b])
    jsonschema.validate(merged, SCHEMA)
    assert merged["merged_from"] == ["a.json", "b.json"]
    assert {(r["workload"], r["source"]) for r in merged["runs"]} == {("W1", "a.json"),
                                                                      ("W7", "b.json")}
    assert merged["summary"]["Duraflow postgres"]["W7"]["orch_per_s"]["median"] == 9.0
    assert merged["sizes"]["W7"] == 10_000
