"""The PostgreSQL schema: versioned table migrations plus one file per function, applied in one
transaction under an advisory lock however many processes open the schema at once.

Tables and functions change differently, so they live in two kinds of files. A table change
is a step from the old table to the new one (``ALTER TABLE ...``) that a database takes once.
A function is replaced whole: what matters is its current text, and a reader should find it
in one place, not in the last of several migrations that re-declared it.

* ``versions/NNNN_name.sql``: tables, columns, indexes, data changes and drops. Each version
  of ``MIGRATIONS`` runs once, in order, and is recorded in the ``_duraflow_migrations``
  ledger. Versions 2, 3 and 7-11 only created functions, so they have no file any more.
* ``functions/<name>.sql``: the function ``<name>`` as it is today, written
  ``CREATE OR REPLACE``, and for a trigger function its trigger too (a trigger cannot be
  created before its function, and function files run after the versions). The
  ``_duraflow_functions`` ledger records the SHA-256 of each file's rendered text; a run
  applies, in file-name order, every file whose checksum differs from the one recorded: all
  of them on a fresh schema or on one migrated before function files existed, then only the
  ones that changed.

A run (``migrate``): every pod of a deployment opens the provider at the same moment after a
rollout, so each opener takes a session-level ``pg_advisory_lock`` whose key is derived from
the schema name; losers of the race wait on it, then find nothing to do. (duroxide-pg raced
here before it took the same lock: concurrent ``CREATE SCHEMA`` failed with a duplicate key.)
Under the lock the run creates the schema and the two ledgers if needed and reads the
ledgers; a schema that a newer Duraflow migrated is refused there (``SchemaTooNewError``)
before anything in it changes, and a current schema (every process start) has cost two round
trips. Otherwise ONE transaction applies the missing versions, then the changed function
files, and records both: pods of the previous release, still running during a rollout, see
the schema before or after it, never new tables beside old functions, and a failed run
leaves nothing behind.

Changing the schema:

* A table: a new version with its file. A released version's file never changes (a database
  that ran it will not run it again); ``tests/postgres/test_migrations.py`` builds schemas
  with earlier Duraflows and checks that migrating them ends identical to a fresh schema.
* A function: edit its file and add a version (a ``MIGRATIONS`` entry, with a file only if
  something else changes too). The version is what makes an older Duraflow refuse the
  schema instead of putting its own copy of the function back when one of its pods restarts
  during a rolling upgrade; the test pins the function files' digest per version.
* A signature (argument types, names or defaults, return type): ``CREATE OR REPLACE`` cannot
  change one, and new argument types would create a second function beside the old one. The
  version that comes with the change drops the old signature (``DROP FUNCTION IF EXISTS
  name(types)``); versions run before function files in the same transaction, so no caller
  ever finds the function missing. A forgotten drop fails the run (SQLSTATE 42P13) or leaves
  a stale overload that the test finds.
* A version that removes what a function file made (a table with its trigger, a function
  dropped with CASCADE) also deletes that file's ledger row, so the same run re-applies it.

When a superseded function is dropped. A function the code no longer calls (superseded)
stays as long as code that calls it may still run against the schema, and no longer:
during a rolling upgrade the previous release's pods keep working on the schema the first
new pod migrated, and Duraflow upgrades in place from the previous release only. So a
function that the previous release still calls keeps its file, which says so
(``-- Superseded by X; the previous release calls it: drop it in the next one``), and the
first version of the next release drops it; a function that no release calls any more is
dropped by the version that supersedes it. Either way the drop is a ``DROP FUNCTION IF
EXISTS`` with the exact argument types in that version, and the function's file is deleted
in the same commit (the run then forgets its checksum). Version 12 dropped the three that
nothing called any more: ``ack_orchestration_item`` (superseded by ``commit_turn`` in version
7), the 3-argument ``enqueue_orchestrator`` (by its form with ``p_notify``, version 7) and
``pack_version`` (inlined into ``pin_execution_version`` in version 8).

The files are templates (``sql.render``): the schema identifier, its literal and the
LISTEN/NOTIFY channel names are substituted in (the schema name is validated against a strict
pattern first, so the substitution cannot inject anything), which lets every function
reference fully qualified tables without a per-call ``search_path``.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

import asyncpg

from duraflow.providers.errors import ProviderError, SchemaTooNewError
from duraflow.providers.postgres.sql import quote_ident, render, validate_schema

if TYPE_CHECKING:
    from duraflow.providers.postgres.db import Conn

LEDGER = "_duraflow_migrations"
FUNCTION_LEDGER = "_duraflow_functions"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    #: Under ``versions/``; None for a version that changed functions only.
    filename: str | None = None


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "tables", "0001_tables.sql"),
    Migration(2, "orchestrator_functions"),
    Migration(3, "worker_functions"),
    Migration(4, "kv_store", "0004_kv.sql"),
    Migration(5, "worker_registry", "0005_workers.sql"),
    Migration(6, "sessions_cancellation_capability", "0006_sessions.sql"),
    Migration(7, "fast_path"),
    Migration(8, "handoff"),
    Migration(9, "status_after_commit"),
    Migration(10, "start_with_turn"),
    Migration(11, "lean_start"),
    Migration(12, "drop_superseded_functions", "0012_drop_superseded.sql"),
    Migration(13, "schedules", "0013_schedules.sql"),
    Migration(14, "builds", "0014_builds.sql"),
    Migration(15, "worker_drains", "0015_worker_drains.sql"),
)
LATEST_VERSION = MIGRATIONS[-1].version


@dataclass(frozen=True, slots=True)
class FunctionFile:
    """``functions/<name>.sql``: what the function ``name`` is today."""

    name: str
    template: str

    def render(self, schema: str) -> str:
        return render(self.template, schema)


def load(migration: Migration, schema: str) -> str:
    """The SQL of ``migration`` for ``schema`` ("" for a version without a file)."""
    if migration.filename is None:
        return ""
    folder = resources.files(__package__).joinpath("versions")
    return render(folder.joinpath(migration.filename).read_text("utf-8"), schema)


@cache
def function_files() -> tuple[FunctionFile, ...]:
    """Every function file, in the order a run applies them: by file name. The order only
    matters where creating one function needs another to exist (a ``LANGUAGE sql`` body is
    checked when it is created; PL/pgSQL bodies are resolved when they run)."""
    folder = resources.files(__package__).joinpath("functions")
    entries = sorted((e for e in folder.iterdir() if e.name.endswith(".sql")), key=lambda e: e.name)
    return tuple(FunctionFile(e.name.removesuffix(".sql"), e.read_text("utf-8")) for e in entries)


def checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class MigrationRun:
    """What one ``migrate`` call applied: nothing at all when the schema was current."""

    versions: list[int]
    functions: list[str]


async def migrate(conn: Conn, schema: str) -> MigrationRun:
    """Bring ``schema`` up to ``LATEST_VERSION`` and this Duraflow's function files."""
    validate_schema(schema)
    key_source = f"duraflow-migrate:{schema}"
    await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", key_source)
    try:
        return await _run(conn, schema)
    finally:
        if not conn.is_closed():  # a broken connection has released the lock already
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key_source)


async def _run(conn: Conn, schema: str) -> MigrationRun:
    """Under the lock nobody else migrates ``schema``, so what to do is decided from the
    ledgers first: a current schema (every process start) costs two round trips."""
    s = quote_ident(schema)
    await conn.execute(
        f"CREATE SCHEMA IF NOT EXISTS {s};"
        f" CREATE TABLE IF NOT EXISTS {s}.{LEDGER} ("
        "  version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        "  applied_at TIMESTAMPTZ NOT NULL DEFAULT now());"
        f" CREATE TABLE IF NOT EXISTS {s}.{FUNCTION_LEDGER} ("
        "  name TEXT PRIMARY KEY, checksum TEXT NOT NULL,"
        "  applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    rows = await conn.fetch(
        f"SELECT version, NULL AS name, NULL AS checksum FROM {s}.{LEDGER}"
        f" UNION ALL SELECT NULL, name, checksum FROM {s}.{FUNCTION_LEDGER}"
    )
    done = {int(r["version"]) for r in rows if r["version"] is not None}
    recorded = {str(r["name"]): str(r["checksum"]) for r in rows if r["version"] is None}
    if done and max(done) > LATEST_VERSION:
        raise SchemaTooNewError(
            f"schema {schema!r} is at migration {max(done)}, newer than this Duraflow "
            f"supports ({LATEST_VERSION})"
        )
    versions = [m for m in MIGRATIONS if m.version not in done]
    files = function_files()
    functions = []
    for function in files:
        sql = function.render(schema)
        if recorded.get(function.name) != checksum(sql):
            functions.append((function.name, sql))
    # A function whose file is gone was dropped by a version: forget its checksum too.
    gone = sorted(set(recorded) - {f.name for f in files})
    if versions or functions or gone:
        async with conn.transaction():
            await _apply(conn, schema, versions, functions, gone)
    return MigrationRun([m.version for m in versions], [name for name, _ in functions])


async def _apply(
    conn: Conn,
    schema: str,
    versions: list[Migration],
    functions: list[tuple[str, str]],
    gone: list[str],
) -> None:
    s = quote_ident(schema)
    for migration in versions:
        sql = load(migration, schema)
        if sql:
            await conn.execute(sql)
        await conn.execute(
            f"INSERT INTO {s}.{LEDGER} (version, name) VALUES ($1, $2)",
            migration.version,
            migration.name,
        )
    for name, sql in functions:
        try:
            await conn.execute(sql)
        except asyncpg.InvalidFunctionDefinitionError as exc:
            raise ProviderError(
                "migrate",
                f"functions/{name}.sql: {exc.message} (CREATE OR REPLACE cannot "
                "change a function's return type or its arguments' names or defaults): drop "
                "the old signature in the version that comes with the change (migrations.py)",
                retryable=False,
            ) from exc
        await conn.execute(
            f"INSERT INTO {s}.{FUNCTION_LEDGER} (name, checksum) VALUES ($1, $2)"
            " ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()",
            name,
            checksum(sql),
        )
    if gone:
        await conn.execute(f"DELETE FROM {s}.{FUNCTION_LEDGER} WHERE name = ANY($1)", gone)
