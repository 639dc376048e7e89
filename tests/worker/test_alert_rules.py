"""The alert rules the README's "Monitoring" section offers are valid Prometheus rules and
use only metric names the runtime exposes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from duraflow.runtime.prometheus import RuntimeMetrics
from tests.worker.support import ROOT, ensure_prometheus


def readme_rules() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Monitoring", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the Monitoring section has one alert-rule example"
    return str(blocks[0])


@pytest.mark.timeout(900)  # may install the prometheus package first (apt-get)
def test_readme_alert_rules_pass_promtool(tmp_path: Path) -> None:
    ensure_prometheus()
    promtool = shutil.which("promtool")
    assert promtool is not None
    rules = tmp_path / "rules.yml"
    rules.write_text(readme_rules())
    result = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_alert_rules_use_exposed_metrics() -> None:
    exposed = {metric.name for metric in RuntimeMetrics().registry.collect()}
    exposed |= {f"{name}_total" for name in exposed}
    used = set(re.findall(r"\b(duraflow_[a-z_]+)", readme_rules()))
    assert used and used <= exposed, used - exposed


def test_readme_describes_every_runtime_metric() -> None:
    section = (ROOT / "README.md").read_text().split("## Monitoring", 1)[1].split("\n## ")[0]
    described = set(re.findall(r"`(duraflow_[a-z_]+)", section))
    for metric in RuntimeMetrics().registry.collect():
        name = metric.name + ("_total" if metric.type == "counter" else "")
        assert name in described or metric.name == "duraflow_replay_cache_misses", name
