"""`make demo` is a front door: every sample must complete and the table must show it."""

from __future__ import annotations

from pathlib import Path

import pytest

from duraflow.demo import SAMPLES, run_demo


def test_demo_runs_every_sample_to_completion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_demo(str(tmp_path / "demo.db")) == 0
    out = capsys.readouterr().out
    assert f"{len(SAMPLES)}/{len(SAMPLES)} samples completed" in out
    rows = [line for line in out.splitlines() if "Completed" in line]
    assert len(rows) == len(SAMPLES)
    assert "expense #42: approved by alice" in out
    assert "finished in execution 4" in out
