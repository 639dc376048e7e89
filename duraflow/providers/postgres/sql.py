"""SQL text for one schema: the identifiers, literals and channel names built into statements.

The provider interpolates its schema into statements (``{s}.commit_turn(...)``) and the schema
files are templates rendered for one schema, so every function can name its tables fully
qualified without a per-call ``search_path``. That is only safe because the schema name is
validated against a strict pattern first and then quoted; both happen here, below everything
that builds SQL (``db.py`` for statements, ``migrations.py`` for the schema files), so neither
of those has to import the other.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

SCHEMA_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


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
    """A schema file's text for ``schema``: ``{{schema}}`` (the quoted identifier),
    ``{{schema_literal}}`` and the channels ``{{chan_orch}}``, ``{{chan_work}}``,
    ``{{chan_inst}}``, ``{{chan_cancel}}`` (string literals)."""
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
