"""Small numeric helpers shared by the workload programs and the report."""

from __future__ import annotations

import itertools
import math
import resource
import statistics
import sys


def pct(values: list[float], p: float) -> float:
    """The ``p``-th percentile of ``values`` by nearest rank: the smallest value that at least
    ``p`` % of the values do not exceed (the ⌈p/100·n⌉-th smallest; p99 of 200 samples is
    the 198th, p50 of 4 the 2nd)."""
    ordered = sorted(values)
    rank = math.ceil(round(p / 100 * len(ordered), 9))  # round: 0.29 * 100 is not 29.0
    return ordered[min(len(ordered), max(rank, 1)) - 1]


def ms_steps(stamps: list[float]) -> list[float]:
    """Milliseconds between consecutive ``perf_counter`` stamps."""
    return [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]


def peak_rss_mib() -> float:
    """This process's peak resident set size (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def summarise(values: list[float]) -> dict[str, float]:
    """Min, median and max of the repetitions of one figure.

    The spec asks for min and median; for a rate the best repetition is the max, so the report
    shows median and *best* (min of a time, max of a rate) from these.
    """
    return {"min": min(values), "median": statistics.median(values), "max": max(values),
            "n": len(values)}
