"""``PostgresEntraOptions``: duroxide-python's options for Azure Entra ID token auth.

Accepted so that programs constructing it import unchanged. Token acquisition itself needs
Azure's identity endpoints, which this build does not call; ``connect_with_entra`` says so
with a clear error (see docs/differences.md). Use a password or a client certificate DSN.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_AUDIENCE = "https://ossrdbms-aad.database.windows.net/.default"


@dataclass(frozen=True, slots=True, kw_only=True)
class PostgresEntraOptions:
    audience: str | None = None
    max_connections: int | None = None
    acquire_timeout_ms: int | None = None
    refresh_interval_ms: int | None = None


ENTRA_UNSUPPORTED = (
    "Entra ID (Azure AD) token authentication is not supported by Duraflow yet; connect "
    "with PostgresProvider.connect(dsn) using a password, a .pgpass file or client certificates"
)
