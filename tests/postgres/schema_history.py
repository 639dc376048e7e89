"""Schemas as earlier Duraflows left them, and a comparable dump of what a schema holds.

An upgrade starts from a database that an earlier Duraflow created and migrated with ITS OWN
code and SQL, so that is how these schemas are built: the earlier commit's ``duraflow``
package is taken from git (``git archive``) and its own ``migrate`` runs in a subprocess,
stopped at the version asked for. Nothing here re-creates the old SQL by hand, so it cannot
drift from what those databases really hold.

``EARLIER`` names the commits whose schemas must upgrade cleanly. When a release is cut, add
its last commit.
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from duraflow.providers.postgres import migrations

#: commit -> the last schema version its migrations know.
EARLIER: dict[str, int] = {
    # The last commit whose numbered migrations defined the functions themselves (each
    # re-declared in later migrations), before functions/ and versions/.
    "4f6303b8928d0e6011f77d9ee85722266e01a949": 11,
}

_ROOT = Path(__file__).resolve().parents[2]

_BUILD = """
import asyncio, json, sys
import asyncpg
from duraflow.providers.postgres import migrations

assert migrations.__file__.startswith(sys.argv[3]), migrations.__file__

async def main(url, plan):
    everything = migrations.MIGRATIONS
    conn = await asyncpg.connect(url)
    try:
        for schema, version in plan:
            migrations.MIGRATIONS = tuple(m for m in everything if m.version <= version)
            await migrations.migrate(conn, schema)
    finally:
        await conn.close()

asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
"""


def checkout(commit: str, into: Path) -> Path:
    """The ``duraflow`` package of ``commit``, unpacked below ``into``."""
    inside = subprocess.run(
        ["git", "-C", str(_ROOT), "rev-parse", "--is-inside-work-tree"],
        capture_output=True, text=True, check=False,
    )
    if inside.returncode != 0:
        reason = "not a git checkout: earlier schemas are built from git history"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + " (CI=true never skips a PostgreSQL test)")
        pytest.skip(reason)
    archive = subprocess.run(
        ["git", "-C", str(_ROOT), "archive", "--format=tar", commit, "duraflow"],
        capture_output=True, check=False,
    )
    if archive.returncode != 0:
        pytest.fail(
            f"commit {commit} is not in this clone ({archive.stderr.decode().strip()}); "
            "fetch the full history (git fetch --unshallow)"
        )
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def build(tree: Path, url: str, plan: list[tuple[str, int]], *, fails: bool = False) -> str:
    """Migrate each ``(schema, version)`` of ``plan`` with the Duraflow unpacked in ``tree``;
    returns what it printed on stderr (its traceback when it ``fails``, as expected)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", _BUILD, url, json.dumps(plan), str(tree)],
        cwd=tree, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert (done.returncode != 0) == fails, done.stderr
    return done.stderr


Catalog = dict[str, list[tuple[Any, ...]]]

_QUERIES = {
    "relations": """
        SELECT c.relname, c.relkind, c.reloptions::TEXT
        FROM pg_class c WHERE c.relnamespace = $1::regnamespace""",
    "columns": """
        SELECT c.relname, row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
               a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
          AND a.attnum > 0 AND NOT a.attisdropped""",
    "constraints": """
        SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid)
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        WHERE k.connamespace = $1::regnamespace""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = $1",
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal""",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid)
        FROM pg_proc p WHERE p.pronamespace = $1::regnamespace""",
}


async def catalog(conn: asyncpg.Connection, schema: str) -> Catalog:
    """What ``schema`` holds, comparable between schemas of other names: its tables, columns,
    constraints, indexes, triggers and functions with their full definitions, and both ledgers
    (a function checksum shows as ``current`` when it is this Duraflow's file's)."""
    dump = {}
    for part, query in _QUERIES.items():
        rows = await conn.fetch(query, schema)
        dump[part] = sorted(
            tuple(v.replace(schema, "{{schema}}") if isinstance(v, str) else v for v in row)
            for row in rows
        )
    ledger = f'"{schema}"._duraflow_migrations'
    dump["versions"] = sorted(
        tuple(r) for r in await conn.fetch(f"SELECT version, name FROM {ledger}")
    )
    dump["function_ledger"] = []
    if await conn.fetchval("SELECT to_regclass($1)", f'"{schema}"._duraflow_functions'):
        files = migrations.function_files()  # looked up here: tests replace it
        current = {f.name: migrations.checksum(f.render(schema)) for f in files}
        dump["function_ledger"] = sorted(
            (r["name"], "current" if current.get(r["name"]) == r["checksum"] else r["checksum"])
            for r in await conn.fetch(f'SELECT name, checksum FROM "{schema}"._duraflow_functions')
        )
    return dump


def differences(a: Catalog, b: Catalog) -> list[str]:
    """One line per difference between two catalogs: a row only one of them holds, or the
    changed lines of a definition both hold under the same name."""
    lines = []
    for part in sorted(set(a) | set(b)):
        width = _KEY_WIDTH.get(part, 2)
        left = {row[:width]: row for row in a.get(part, [])}
        right = {row[:width]: row for row in b.get(part, [])}
        for key in sorted(set(left) | set(right), key=str):
            if key not in right:
                lines.append(f"{part}: only in the first: {_short(left[key])}")
            elif key not in left:
                lines.append(f"{part}: only in the second: {_short(right[key])}")
            elif left[key] != right[key]:
                lines.append(f"{part}: {key} differs: {_changes(left[key], right[key])}")
    return lines


#: How many leading columns name a row of each part (default 2: table or function, then name).
_KEY_WIDTH = {"versions": 1, "function_ledger": 1}


def _changes(first: tuple[Any, ...], second: tuple[Any, ...]) -> str:
    changes = []
    for x, y in zip(first, second, strict=True):
        if x == y:
            continue
        if isinstance(x, str) and isinstance(y, str) and "\n" in x + y:
            diff = list(difflib.unified_diff(x.splitlines(), y.splitlines(), lineterm="", n=0))
            changes.append(" | ".join(d for d in diff[2:] if not d.startswith("@@")))
        else:
            changes.append(f"{x!r} -> {y!r}")
    return "; ".join(changes)


def _short(row: tuple[Any, ...]) -> str:
    return repr(tuple(v[:200] + "…" if isinstance(v, str) and len(v) > 200 else v for v in row))
