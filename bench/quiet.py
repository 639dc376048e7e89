"""Each run starts on a quiet machine: what the previous run left behind (its PostgreSQL
backends exiting, the database being dropped, background writes) must not land in the next
engine's figures. The gate reads ``/proc/stat`` and waits, up to a bound, until the CPUs have
been mostly idle for one window; runs alternate engines, so the gate treats them alike.
The machine's own neighbours (a VM's steal time) are beyond it: ``loadavg_before`` and the
busy share it returns are recorded with every run so a reader can see them.
"""

from __future__ import annotations

import time
from pathlib import Path

STAT = Path("/proc/stat")


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs, or None where ``/proc/stat`` does not exist."""
    try:
        fields = [int(x) for x in STAT.read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_share(window_s: float) -> float | None:
    """The share of all CPUs that was busy during the next ``window_s`` seconds."""
    before = _cpu_times()
    if before is None:
        return None
    time.sleep(window_s)  # the measurement itself: CPU use over a wall-clock window
    after = _cpu_times()
    assert after is not None
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0


def wait_until_idle(busy_below: float = 0.2, window_s: float = 0.5,
                    max_wait_s: float = 20.0) -> tuple[float, float | None]:
    """Wait until one window was less than ``busy_below`` busy, at most ``max_wait_s``.
    Returns (seconds waited, busy share of the last window; None without ``/proc``)."""
    began = time.monotonic()
    while True:
        share = busy_share(window_s)
        waited = time.monotonic() - began
        if share is None or share < busy_below or waited >= max_wait_s:
            return waited, share
