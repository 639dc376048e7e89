"""``python -m bench``: plan a sitting, run it with live progress, write the results.

The sitting runs repetition by repetition, workload by workload, and within a workload every
engine/backend in turn, so engines alternate and share whatever the machine was doing at the
time. Outputs: ``<out-dir>/<timestamp>.json`` (validated against ``result.schema.json``), a
PNG chart beside it, and (unless ``--no-results-md``) ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

import jsonschema
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from bench import ceiling, merge, pgstats, report, results_md
from bench.runner import BACKENDS, SUPPORTED, Job, run_job

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "result.schema.json"
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "S1")
SIZES = {  # instances (W1, W3, W5, W6, W7), activities (W2, W4) or schedules (S1)
    "full": {"W1": 500, "W2": 500, "W3": 200, "W4": 300, "W5": 200, "W6": 500, "W7": 10_000,
             "S1": 1_000},
    "quick": {"W1": 60, "W2": 100, "W3": 20, "W4": 40, "W5": 30, "W6": 60, "W7": 300,
              "S1": 100},
    "smoke": {"W1": 4, "W2": 6, "W3": 3, "W4": 4, "W5": 3, "W6": 4, "W7": 5, "S1": 5},
}
#: S1 measures this many ticks (10 s apart) of every schedule.
ROUNDS = {"full": 3, "quick": 2, "smoke": 1}
TIMEOUT_S = {"full": 300.0, "quick": 60.0, "smoke": 60.0}
IDLE_S = {"full": 30.0, "quick": 3.0, "smoke": 1.0}
#: W7 waits this long after all instances wait before its idle window opens: longer than
#: Duraflow's LISTEN ping (30 s), the only command that makes an idle LISTEN session flush the
#: transactions it ran for the notifications of the start phase.
SETTLE_S = {"full": 35.0, "quick": 1.0, "smoke": 0.0}
PGBENCH_S = {"full": 20, "quick": 5, "smoke": 2}
#: The longest wait for a quiet machine before each run (bench/quiet.py); the harness test
#: runs beside other tests, so it does not wait.
IDLE_GATE_S = {"full": 20.0, "quick": 5.0, "smoke": 0.0}
DEFAULT_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--engines", default="duraflow",
                   help="comma list of duraflow, duroxide, dbos (default: duraflow)")
    p.add_argument("--compare", action="store_true",
                   help="same as --engines duraflow,duroxide,dbos")
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small sizes, one repetition (<1 min)")
    mode.add_argument("--smoke", action="store_true", help="tiny sizes (the harness test)")
    p.add_argument("--reps", type=int, help="repetitions (default 3; 1 with --quick/--smoke)")
    p.add_argument("--size", action="append", default=[], metavar="W=N",
                   help="override a workload's size, e.g. --size W7=2000")
    p.add_argument("--database-url", default=DEFAULT_URL)
    p.add_argument("--build-id", metavar="B",
                   help="run Duraflow with RuntimeOptions(build_id=B) (W6: duraflow worker "
                        "--build-id B), to measure what builds cost against a sitting without")
    p.add_argument("--no-ceiling", action="store_true", help="skip pgbench and the round trip")
    p.add_argument("--no-chart", action="store_true")
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    p.add_argument("--results-md", type=Path, default=HERE / "RESULTS.md")
    p.add_argument("--no-results-md", action="store_true")
    p.add_argument("--merge", nargs="+", metavar="JSON",
                   help="run nothing: combine earlier sittings' results (a later file's runs "
                        "replace an earlier file's runs of the same engine/backend/workload) "
                        "and write them as one result")
    args = p.parse_args(argv)
    args.mode = "quick" if args.quick else "smoke" if args.smoke else "full"
    args.reps = args.reps or (1 if args.mode != "full" else 3)
    if args.compare:
        args.engines = "duraflow,duroxide,dbos"
    return args


def plan(args: argparse.Namespace) -> tuple[list[Job], dict[str, int]]:
    """Every run of the sitting, engines alternating within each workload."""
    sizes = dict(SIZES[args.mode])
    for item in args.size:
        name, _, value = item.partition("=")
        if name not in sizes or not value.isdigit() or int(value) < 1:
            raise SystemExit(f"--size {item!r}: expected W1..W7 or S1=<positive integer>")
        sizes[name] = int(value)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for name, allowed, given in (("engine", SUPPORTED, engines), ("backend", ("sqlite",
                                 "postgres"), backends), ("workload", WORKLOADS, workloads)):
        bad = [g for g in given if g not in allowed]
        if bad:
            raise SystemExit(f"unknown {name}(s): {', '.join(bad)}")
    bound = TIMEOUT_S[args.mode]
    jobs = []
    for rep in range(1, args.reps + 1):
        for w in workloads:
            for backend in ("postgres", "sqlite"):
                for engine in engines:
                    if backend not in backends or backend not in BACKENDS[engine]:
                        continue
                    if w not in SUPPORTED[engine] or (w == "W6" and backend != "postgres"):
                        continue
                    if w in ("W7", "S1") and rep > 1:  # long: one repetition is enough
                        continue
                    timeout = bound * 3 if w == "W7" else bound  # 10,000 instances, twice
                    base = Job(engine, backend, w, rep, sizes[w], timeout,
                               idle_s=IDLE_S[args.mode], settle_s=SETTLE_S[args.mode],
                               build_id=args.build_id,
                               rounds=ROUNDS[args.mode])
                    jobs.append(base)
                    if w == "W6":
                        jobs.append(Job(engine, backend, w, rep, sizes[w], timeout, "1-process",
                                        build_id=args.build_id))
                    if (w == "W1" and rep == 1 and backend == "postgres"
                            and engine in ("duraflow", "dbos")):
                        jobs.append(Job(engine, backend, w, rep, sizes[w], timeout,
                                        "listen-off", build_id=args.build_id))
    return jobs, sizes


def machine(load_start: tuple[float, float, float]) -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"hostname": socket.gethostname(), "platform": platform.platform(),
            "python": platform.python_version(), "cpu_count": os.cpu_count() or 1,
            "cpu_model": model, "loadavg_start": list(load_start),
            "loadavg_end": list(os.getloadavg())}


def redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urllib.parse.urlunsplit(parts)


def show_run(console: Console, record: dict[str, Any]) -> None:
    label = escape(f"{report.series_of(record)} {record['workload']} #{record['rep']}")
    if not record["ok"]:
        console.print(f"[red]✗ {label}: {escape((record['error'] or '')[:300])}")
        return
    figs = ", ".join(f"{k} {report._fmt(v)}" for k, v in record["figures"].items())
    extra = f", {record['xact_per_unit']:.1f} xact/unit" if "xact_per_unit" in record else ""
    console.print(f"[green]✓[/] {label}: {figs}{extra}, cpu {record['cpu_s'] or 0:.1f} s, "
                  f"rss {record['peak_rss_mib'] or 0:.0f} MiB, "
                  f"load {record['loadavg_after'][0]:.1f}")


def rich_table(table: report.Table, title: str) -> RichTable:
    out = RichTable(title=title, show_lines=False)
    for i, col in enumerate(table.columns):
        out.add_column(escape(col), justify="left" if i == 0 else "right")
    for row in table.rows:
        out.add_row(*(escape(cell) for cell in row))
    return out


def run(args: argparse.Namespace, console: Console) -> Path:
    jobs, sizes = plan(args)
    uses_pg = any(j.backend == "postgres" for j in jobs)
    started = dt.datetime.now(dt.UTC)
    load_start = os.getloadavg()
    pg_info, ceiling_figs = None, None
    if uses_pg:
        pg_info = {"version": pgstats.server_version(args.database_url),
                   "url": redact(args.database_url)}
        if not args.no_ceiling:
            with console.status(f"database ceiling: pgbench -T {PGBENCH_S[args.mode]} …"):
                ceiling_figs = ceiling.measure(args.database_url, PGBENCH_S[args.mode])
            console.print(f"ceiling: pgbench {ceiling_figs['pgbench_tps']:.0f} TPS, "
                          f"INSERT+COMMIT {ceiling_figs['insert_commit_ms']:.2f} ms")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="duraflow-bench-logs-") as logs, Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=False,
    ) as progress:
        task = progress.add_task("starting", total=len(jobs))
        for job in jobs:
            progress.update(task, description=escape(job.label))
            record = run_job(job, args.database_url if job.backend == "postgres" else None,
                             Path(logs), IDLE_GATE_S[args.mode])
            runs.append(record)
            show_run(progress.console, record)
            progress.advance(task)
    summary = report.summarise_runs(runs)
    engines: dict[str, Any] = {}
    for r in runs:
        if r["ok"] and r["engine"] not in engines:
            engines[r["engine"]] = {"version": r["engine_version"], "options": r["options"]}
    result = {
        "schema_version": 1, "started": started.isoformat(),
        "finished": dt.datetime.now(dt.UTC).isoformat(), "mode": args.mode,
        "repetitions": args.reps, "sizes": sizes, "machine": machine(load_start),
        "postgres": pg_info, "ceiling": ceiling_figs, "engines": engines, "runs": runs,
        "summary": summary, "scale_out": report.scale_out(summary),
    }
    return publish(result, args, console)


def publish(result: dict[str, Any], args: argparse.Namespace, console: Console) -> Path:
    """Validate and write the JSON, the chart and RESULTS.md; print the tables."""
    jsonschema.validate(result, json.loads(SCHEMA.read_text()))
    summary, runs, ceiling_figs = result["summary"], result["runs"], result["ceiling"]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.fromisoformat(result["started"]).strftime("%Y%m%dT%H%M%SZ")
    if result.get("merged_from"):
        stamp += "-merged"
    out: Path = args.out_dir / f"{stamp}.json"
    out.write_text(json.dumps(result, indent=1))
    chart_path = None
    if not args.no_chart and summary:
        chart_path = args.out_dir / f"{stamp}.png"
        report.chart(summary, chart_path, f"Duraflow benchmarks {stamp} ({result['mode']}, "
                     f"median of {result['repetitions']}; dot = best)")
    console.print(rich_table(report.figures_table(summary), "Figures (median, best)"))
    console.print(rich_table(report.costs_table(summary), "Costs"))
    if ceiling_figs:
        console.print(f"database ceiling: pgbench {ceiling_figs['pgbench_tps']:.0f} TPS "
                      f"({ceiling_figs['pgbench_args']}), one INSERT+COMMIT "
                      f"{ceiling_figs['insert_commit_ms']:.2f} ms")
    for series, factor in result["scale_out"].items():
        console.print(f"W6 scale-out {series}: 3 processes = {factor:.2f}× one process")
    failed = [r for r in runs if not r["ok"]]
    if failed:
        console.print(f"[red]{len(failed)} run(s) failed; see 'error' in {out}")
    if not args.no_results_md:
        results_md.write(args.results_md, result, out, chart_path)
        console.print(f"wrote {args.results_md}")
    console.print(f"wrote {out}" + (f" and {chart_path}" if chart_path else ""))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:  # a log file: room for the side-by-side table
        console = Console(width=220)
    if args.merge:
        out = publish(merge.merge([Path(p) for p in args.merge]), args, console)
    else:
        out = run(args, console)
    result = json.loads(out.read_text())
    return 0 if all(r["ok"] for r in result["runs"]) else 1
