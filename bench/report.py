"""Turns the run records into the summary: min/median per figure, ratios against the peers,
the terminal table, ``bench/RESULTS.md`` and the chart.

A *series* is one engine on one backend, optionally in a variant (``listen-off``,
``1-process``). Ratios are "times better than the peer", so above 1 always means Duraflow
is ahead whether the figure is a rate (higher is better) or a latency (lower is better).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stats import summarise


@dataclass(frozen=True)
class Figure:
    workload: str
    key: str
    label: str
    higher_is_better: bool
    headline: bool = False


FIGURES = [
    Figure("W1", "orch_per_s", "W1 orchestrations/s", True, headline=True),
    Figure("W1", "act_per_s", "W1 activities/s", True),
    Figure("W2", "act_per_s", "W2 activities/s", True, headline=True),
    Figure("W3", "p50_ms", "W3 latency p50 ms", False, headline=True),
    Figure("W3", "p95_ms", "W3 latency p95 ms", False),
    Figure("W3", "p99_ms", "W3 latency p99 ms", False),
    Figure("W4", "ms_per_activity", "W4 ms per activity", False, headline=True),
    Figure("W4", "growth", "W4 growth last-50/first-50", False),
    Figure("W5", "all_done_s", "W5 all done s", False),
    Figure("W5", "start_calls_s", "W5 of which the 200 start calls s", False),
    Figure("W5", "overshoot_p50_ms", "W5 overshoot p50 ms", False),
    Figure("W5", "overshoot_p95_ms", "W5 overshoot p95 ms", False, headline=True),
    Figure("W5", "overshoot_max_ms", "W5 overshoot max ms", False),
    Figure("W6", "orch_per_s", "W6 orchestrations/s, 3 processes", True, headline=True),
    Figure("W7", "start_rate_per_s", "W7 start rate /s", True, headline=True),
    Figure("W7", "complete_rate_per_s", "W7 completion rate after raise /s", True),
    Figure("W7", "peak_rss_mib", "W7 peak RSS MiB (runtime process)", False, headline=True),
    Figure("W7", "idle_xact_per_s", "W7 transactions/s while waiting", False),
    Figure("W7", "db_growth_mib", "W7 database growth MiB", False),
    Figure("S1", "lateness_p50_ms", "S1 tick lateness p50 ms", False),
    Figure("S1", "lateness_p99_ms", "S1 tick lateness p99 ms", False, headline=True),
    Figure("S1", "lateness_max_ms", "S1 tick lateness max ms", False),
    Figure("S1", "ticks", "S1 ticks started", True),
]
ENGINE_NAMES = {"duraflow": "Duraflow", "duroxide": "duroxide", "dbos": "DBOS"}


def series_of(run: dict[str, Any]) -> str:
    variant = f" [{run['variant']}]" if run["variant"] else ""
    return f"{ENGINE_NAMES[run['engine']]} {run['backend']}{variant}"


def summarise_runs(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{series: {workload: {figure: {min, median, n}}}}`` over the successful runs.

    Besides the workload's own figures it summarises ``cpu_s``, ``peak_rss_mib`` and, on
    PostgreSQL, ``xact_per_unit`` (transactions per orchestration, or per activity for W2/W4).
    """
    values: dict[str, dict[str, dict[str, list[float]]]] = {}
    for run in runs:
        if not run["ok"]:
            continue
        bucket = values.setdefault(series_of(run), {}).setdefault(run["workload"], {})
        merged = dict(run["figures"])
        for extra in ("cpu_s", "peak_rss_mib", "xact_per_unit"):
            if run.get(extra) is not None:
                merged[extra] = run[extra]
        for key, value in merged.items():
            bucket.setdefault(key, []).append(float(value))
    return {s: {w: {k: summarise(v) for k, v in figs.items()} for w, figs in wl.items()}
            for s, wl in values.items()}


def scale_out(summary: dict[str, dict[str, Any]]) -> dict[str, float]:
    """W6 with 3 processes over W6 with 1 process, per engine/backend (medians)."""
    out = {}
    for series, workloads in summary.items():
        if "[" in series or "W6" not in workloads:
            continue
        one = summary.get(f"{series} [1-process]", {}).get("W6", {}).get("orch_per_s")
        if one:
            out[series] = workloads["W6"]["orch_per_s"]["median"] / one["median"]
    return out


def best(fig: Figure, stat: dict[str, float]) -> float:
    """The best repetition: the highest rate or the lowest time (max only in newer results)."""
    return stat.get("max", stat["min"]) if fig.higher_is_better else stat["min"]


def ratio(ours: float, theirs: float, higher_is_better: bool) -> float | None:
    if ours <= 0 or theirs <= 0:
        return None
    return ours / theirs if higher_is_better else theirs / ours


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _peer(series: list[str], engine: str, backend: str) -> str | None:
    name = f"{ENGINE_NAMES[engine]} {backend}"
    return name if name in series else None


def figures_table(summary: dict[str, dict[str, Any]]) -> Table:
    """Rows: figures; columns: each plain series (median, best), then Duraflow's ratios."""
    series = sorted((s for s in summary if "[" not in s), key=_series_order)
    ratio_cols = []
    for backend in ("postgres", "sqlite"):
        ours = _peer(series, "duraflow", backend)
        for peer in ("duroxide", "dbos"):
            theirs = _peer(series, peer, backend)
            if ours and theirs:
                ratio_cols.append((ours, theirs, f"Duraflow/{ENGINE_NAMES[peer]} {backend}"))
    rows = []
    for fig in FIGURES:
        cells = [fig.label + (" ↑" if fig.higher_is_better else " ↓")]
        present = False
        for s in series:
            stat = summary[s].get(fig.workload, {}).get(fig.key)
            if stat:
                present = True
                cells.append(f"{_fmt(stat['median'])} (best {_fmt(best(fig, stat))})"
                             if stat["n"] > 1 else _fmt(stat["median"]))
            else:
                cells.append("–")
        for ours, theirs, _ in ratio_cols:
            a = summary[ours].get(fig.workload, {}).get(fig.key)
            b = summary[theirs].get(fig.workload, {}).get(fig.key)
            r = ratio(a["median"], b["median"], fig.higher_is_better) if a and b else None
            cells.append(f"{r:.2f}×" if r else "–")
        if present:
            rows.append(cells)
    return Table(["figure (median, best of reps)", *series, *(c[2] for c in ratio_cols)],
                 rows)


def costs_table(summary: dict[str, dict[str, Any]]) -> Table:
    """Per workload and series: transactions per orchestration (PostgreSQL), CPU s, peak RSS."""
    rows = []
    for workload in ("W1", "W2", "W3", "W4", "W5", "W6", "W7", "S1"):
        for series in sorted(summary, key=_series_order):
            figs = summary[series].get(workload)
            if not figs:
                continue
            cells = [workload, series]
            for key in ("xact_per_unit", "cpu_s", "peak_rss_mib"):
                cells.append(_fmt(figs[key]["median"]) if key in figs else "–")
            rows.append(cells)
    return Table(["workload", "series", "transactions per orchestration (W2, W4: per "
                  "activity; S1: per tick)", "CPU s", "peak RSS MiB"], rows)


def _series_order(series: str) -> tuple[int, int, str]:
    engine = ["Duraflow", "duroxide", "DBOS"].index(series.split()[0])
    backend = 0 if " postgres" in series else 1
    return (backend, engine, series)


def markdown(table: Table) -> str:
    lines = ["| " + " | ".join(table.columns) + " |",
             "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return "\n".join(lines)


def chart(summary: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """One panel per workload (its headline figure), one bar per series: median, best dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = [f for f in FIGURES if f.headline and any(f.workload in w for w in summary.values())]
    cols = min(4, len(figs)) or 1
    rows = (len(figs) + cols - 1) // cols or 1
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    colours = {"Duraflow": "#1f77b4", "duroxide": "#ff7f0e", "DBOS": "#2ca02c"}
    for ax, f in zip(axes.flat, figs, strict=False):
        names = [s for s in sorted(summary, key=_series_order)
                 if f.key in summary[s].get(f.workload, {})]
        medians = [summary[s][f.workload][f.key]["median"] for s in names]
        bests = [best(f, summary[s][f.workload][f.key]) for s in names]
        bars = ax.bar(range(len(names)), medians,
                      color=[colours[s.split()[0]] for s in names],
                      hatch=None, edgecolor="black", linewidth=0.5)
        for bar, s in zip(bars, names, strict=True):
            if "sqlite" in s:
                bar.set_hatch("//")
        ax.plot(range(len(names)), bests, "k.", label="best")
        for i, m in enumerate(medians):
            ax.annotate(_fmt(m), (i, m), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([s.replace(" [", "\n[").replace(" ", "\n", 1) for s in names],
                           fontsize=7)
        arrow = "higher is better" if f.higher_is_better else "lower is better"
        ax.set_title(f"{f.label}\n({arrow})", fontsize=9)
        ax.set_ylim(0, max(medians, default=1) * 1.18 or 1)
        ax.tick_params(axis="y", labelsize=8)
    for ax in list(axes.flat)[len(figs):]:
        ax.axis("off")
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=c, edgecolor="black", label=n) for n, c in colours.items()]
    handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="SQLite file"))
    fig.legend(handles=handles, loc="upper right", fontsize=8, ncol=len(handles))
    fig.suptitle(title, fontsize=10, x=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def median_load(runs: list[dict[str, Any]]) -> float:
    loads = [r["loadavg_before"][0] for r in runs] + [r["loadavg_after"][0] for r in runs]
    return statistics.median(loads) if loads else 0.0
