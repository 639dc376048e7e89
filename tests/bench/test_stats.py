"""The benchmark's percentile is the textbook nearest rank, the same for every engine."""

from __future__ import annotations

import pytest

from bench.stats import pct


@pytest.mark.parametrize(("p", "expected"), [(50, 100), (95, 190), (99, 198), (100, 200),
                                             (0.1, 1), (0, 1)])
def test_nearest_rank_of_200_samples(p: float, expected: int) -> None:
    samples = [float(v) for v in range(200, 0, -1)]  # 1..200, unordered
    assert pct(samples, p) == expected


def test_small_samples() -> None:
    assert pct([4.0, 1.0, 3.0, 2.0], 50) == 2.0  # ⌈2⌉-th smallest
    assert pct([4.0, 1.0, 3.0, 2.0], 51) == 3.0
    assert pct([7.0], 99) == 7.0
