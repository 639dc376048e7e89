"""Combines several sittings into one result, e.g. a full sitting plus a later re-run of one
workload. A later file's runs replace an earlier file's runs of the same engine, backend,
workload and variant; the result names every source file (``merged_from``) and keeps each
run's own load averages, so nothing about where a figure came from is lost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import report


def _key(run: dict[str, Any]) -> tuple[str, str, str, str]:
    return (run["engine"], run["backend"], run["workload"], run["variant"])


def merge(paths: list[Path]) -> dict[str, Any]:
    if not paths:
        raise ValueError("nothing to merge")
    sittings = [json.loads(p.read_text()) for p in paths]
    runs: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for sitting, path in zip(sittings, paths, strict=True):
        fresh: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
        for run in sitting["runs"]:
            fresh.setdefault(_key(run), []).append({**run, "source": path.name})
        runs.update(fresh)
    merged = [r for group in runs.values() for r in group]
    first, last = sittings[0], sittings[-1]
    sizes = dict(first["sizes"])
    for sitting in sittings[1:]:
        for run in sitting["runs"]:
            sizes[run["workload"]] = run["n"]
    engines: dict[str, Any] = {}
    for sitting in sittings:
        engines.update(sitting["engines"])
    summary = report.summarise_runs(merged)
    return {
        **first,
        "finished": last["finished"],
        "machine": {**last["machine"], "loadavg_start": first["machine"]["loadavg_start"]},
        "ceiling": next((s["ceiling"] for s in sittings if s["ceiling"]), None),
        "postgres": next((s["postgres"] for s in sittings if s["postgres"]), None),
        "sizes": sizes, "engines": engines, "runs": merged, "summary": summary,
        "scale_out": report.scale_out(summary), "merged_from": [p.name for p in paths],
    }
