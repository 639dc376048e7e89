"""Versioned schema migrations, applied exactly once even when many processes start together.

Every pod of a deployment opens the provider at the same moment after a rollout, so the
migration must be safe to race: each opener takes a session-level ``pg_advisory_lock``
whose key is derived from the schema name, creates the schema and the
``_duraflow_migrations`` ledger if needed, and applies only the versions the ledger lacks,
each in its own transaction together with its ledger row. Losers of the race wait on the
lock, then find every version recorded and do nothing. (duroxide-pg raced here before it
took the same lock: concurrent ``CREATE SCHEMA`` failed with a duplicate key.)

The SQL lives in ``NNNN_name.sql`` files next to this module. They are templates
(``sql.render``): the schema identifier, its literal and the LISTEN/NOTIFY channel names are
substituted in (the schema name is validated against a strict pattern first, so the
substitution cannot inject anything), which lets every function reference fully qualified
tables without a per-call ``search_path``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

import asyncpg

from duraflow.providers.errors import SchemaTooNewError
from duraflow.providers.postgres.sql import quote_ident, render, validate_schema

if TYPE_CHECKING:
    from duraflow.providers.postgres.db import Conn

LEDGER = "_duraflow_migrations"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    filename: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "tables", "0001_tables.sql"),
    Migration(2, "orchestrator_functions", "0002_orchestrator.sql"),
    Migration(3, "worker_functions", "0003_worker.sql"),
    Migration(4, "kv_store", "0004_kv.sql"),
    Migration(5, "worker_registry", "0005_workers.sql"),
    Migration(6, "sessions_cancellation_capability", "0006_sessions.sql"),
    Migration(7, "fast_path", "0007_fast_path.sql"),
    Migration(8, "handoff", "0008_handoff.sql"),
    Migration(9, "status_after_commit", "0009_status_after_commit.sql"),
    Migration(10, "start_with_turn", "0010_start_with_turn.sql"),
    Migration(11, "lean_start", "0011_lean_start.sql"),
)
LATEST_VERSION = MIGRATIONS[-1].version


def load(migration: Migration, schema: str) -> str:
    text = resources.files(__package__).joinpath(migration.filename).read_text("utf-8")
    return render(text, schema)


async def migrate(conn: Conn, schema: str) -> list[int]:
    """Bring ``schema`` up to ``LATEST_VERSION``; returns the versions applied here."""
    validate_schema(schema)
    s = quote_ident(schema)
    key_source = f"duraflow-migrate:{schema}"
    await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", key_source)
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {s}.{LEDGER} ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = {int(r[0]) for r in await conn.fetch(f"SELECT version FROM {s}.{LEDGER}")}
        if done and max(done) > LATEST_VERSION:
            raise SchemaTooNewError(
                f"schema {schema!r} is at migration {max(done)}, newer than this Duraflow "
                f"supports ({LATEST_VERSION})"
            )
        applied: list[int] = []
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(load(migration, schema))
                await conn.execute(
                    f"INSERT INTO {s}.{LEDGER} (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            applied.append(migration.version)
        return applied
    finally:
        if not conn.is_closed():  # a broken connection has released the lock already
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key_source)
