"""The harness's quiet-machine gate: it measures the CPUs' busy share, stops waiting as soon
as one window is quiet enough, gives up at its bound, and does nothing without /proc."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import quiet

pytestmark = pytest.mark.skipif(not quiet.STAT.exists(), reason="needs Linux /proc/stat")


def test_busy_share_is_a_fraction_of_all_cpus() -> None:
    share = quiet.busy_share(0.05)
    assert share is not None and 0.0 <= share <= 1.0


def test_a_quiet_enough_window_ends_the_wait_at_once() -> None:
    waited, share = quiet.wait_until_idle(busy_below=1.01, window_s=0.02, max_wait_s=5.0)
    assert share is not None and waited < 1.0  # the first window qualifies


def test_the_wait_gives_up_at_its_bound() -> None:
    waited, share = quiet.wait_until_idle(busy_below=0.0, window_s=0.02, max_wait_s=0.1)
    assert share is not None and waited >= 0.1


def test_without_proc_stat_nothing_is_measured(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setattr(quiet, "STAT", tmp_path / "missing")
    assert quiet.wait_until_idle(max_wait_s=5.0)[1] is None
