"""docs/architecture.md's module map names every module of the runtime and of both providers.

The map is how a reader finds a concern; a module added without a line there is a concern the
map hides, so the map is checked against the tree rather than trusted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text()
MAP = DOC.split("## Where each concern lives", 1)[1].split("\n## ", 1)[0]


def _modules(package: str) -> list[str]:
    return sorted(
        p.name for p in (ROOT / "duraflow" / package).glob("*.py") if p.name != "__init__.py"
    )


@pytest.mark.parametrize("module", _modules("runtime"))
def test_every_runtime_module_is_in_the_map(module: str) -> None:
    named = f"`runtime/{module}`" in MAP or f"`{module}`" in MAP
    assert named, f"docs/architecture.md: add runtime/{module} to 'Where each concern lives'"


PROVIDER_MODULES = [
    f"{side}/{module}"
    for side in ("sqlite", "postgres")
    for module in _modules(f"providers/{side}")
]


@pytest.mark.parametrize("module", PROVIDER_MODULES)
def test_every_provider_module_is_in_the_twin_table(module: str) -> None:
    assert f"`{module.split('/')[1]}`" in MAP, (
        f"docs/architecture.md: add providers/{module} to the twin table"
    )
