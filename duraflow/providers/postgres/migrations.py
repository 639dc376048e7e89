"""Versioned schema migrations, applied exactly once even when many processes start together.

Every pod of a deployment opens the provider at the same moment after a rollout, so the
migration must be safe to race: each opener takes a session-level ``pg_advisory_lock``
whose key is derived from the schema name, creates the schema and the
``_duraflow_migrations`` ledger if needed, and applies only the versions the ledger lacks,
each in its own transaction together with its ledger row. Losers of the race wait on the
lock, then find every version recorded and do nothing. (duroxide-pg raced here before it
took the same lock: concurrent ``CREATE SCHEMA`` failed with a duplicate key.)

The SQL lives in ``NNNN_name.sql`` files next to this module. They are templates: the
schema identifier, its literal and the LISTEN/NOTIFY channel names are substituted in
(the schema name is validated against a strict pattern first, so the substitution cannot
inject anything), which lets every function reference fully qualified tables without a
per-call ``search_path``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

import asyncpg

from duraflow.providers.errors import SchemaTooNewError

if TYPE_CHECKING:
    from duraflow.providers.postgres.db import Conn

SCHEMA_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
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


def validate_schema(schema: str) -> str:
    """Return ``schema`` if it is a plain identifier, else raise ``ValueError``."""
    if not isinstance(schema, str) or not SCHEMA_PATTERN.fullmatch(schema):
        raise ValueError(
            f"invalid PostgreSQL schema name {schema!r}: use 1-63 letters, digits or "
            "underscores, not starting with a digit"
        )
    return schema


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class Channels:
    """The schema's LISTEN/NOTIFY channels (names are limited to 63 bytes)."""

    orchestrator: str
    worker: str
    instance: str
    cancel: str = ""  # lock tokens of in-flight activities deleted by someone else

    @staticmethod
    def for_schema(schema: str) -> Channels:
        base = f"duraflow_{schema}"
        if len(base) + 5 > 63:
            base = "duraflow_" + hashlib.sha256(schema.encode()).hexdigest()[:24]
        return Channels(f"{base}_orch", f"{base}_work", f"{base}_inst", f"{base}_cncl")


def render(sql: str, schema: str) -> str:
    channels = Channels.for_schema(schema)
    replacements = {
        "{{schema}}": quote_ident(schema),
        "{{schema_literal}}": quote_literal(schema),
        "{{chan_orch}}": quote_literal(channels.orchestrator),
        "{{chan_work}}": quote_literal(channels.worker),
        "{{chan_inst}}": quote_literal(channels.instance),
        "{{chan_cancel}}": quote_literal(channels.cancel),
    }
    for token, value in replacements.items():
        sql = sql.replace(token, value)
    return sql


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
