"""Only the ``duraflow`` command and the operator's settings read the environment.

Everything else takes its configuration as arguments, so a program that embeds Duraflow
decides it in code and no variable changes it behind its back; the command and the operator
read ``DURAFLOW_*`` through ``duraflow.config``'s one table and pass the values in.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "duraflow/cli",  # the command: its settings, and COLUMNS for the width of its tables
    "operator/duraflow_operator/settings.py",
    # libpq's PGHOST/PGPORT/PGPASSWORD, which asyncpg falls back to: a connect error names
    # the server asyncpg really tried. Not Duraflow settings.
    "duraflow/providers/postgres/errors.py",
}


def _reads_environment(tree: ast.AST) -> list[int]:
    """Lines that touch ``os.environ``/``os.getenv`` or import them from ``os``."""
    names = ("environ", "environb", "getenv")
    return [node.lineno for node in ast.walk(tree)
            if (isinstance(node, ast.Attribute) and node.attr in names)
            or (isinstance(node, ast.ImportFrom) and node.module == "os"
                and any(alias.name in names for alias in node.names))]


def test_only_the_command_and_the_operator_settings_read_the_environment() -> None:
    readers = []
    for package in ("duraflow", "operator/duraflow_operator"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if any(relative == a or relative.startswith(a + "/") for a in ALLOWED):
                continue
            for line in _reads_environment(ast.parse(path.read_text(), relative)):
                readers.append(f"{relative}:{line}")
    assert readers == [], ("read the setting in duraflow/config.py's table and pass it in: "
                           f"{readers}")
