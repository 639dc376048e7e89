"""Turning asyncpg and socket failures into ``ProviderError`` with an honest ``retryable``.

The runtime decides from ``retryable`` whether to back off and try again (a restarted
database, a failover, a serialization conflict) or to give up (a broken constraint, a bug).
PostgreSQL says which is which through SQLSTATE; the provider's own functions raise custom
codes (``DFL01`` lock lost, ``DFM01`` instance metadata missing) so that ack failures map to
``LockLostError`` without parsing message text.

Connecting gets its own error type with a message meant for a person reading a pod log:
the host and port that failed and why, never the password, and no chained traceback.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

import asyncpg

from duraflow.providers.errors import LockLostError, ProviderError

LOCK_LOST = "DFL01"
MISSING_METADATA = "DFM01"

#: Worth retrying: the same statement may well succeed on a fresh connection or attempt.
RETRYABLE_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "0A000",  # feature_not_supported: "cached plan must not change result type"
        "55P03",  # lock_not_available
        "57014",  # query_canceled (statement timeout)
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now
        "25006",  # read_only_sql_transaction: a replica promoted mid-failover
    }
)
RETRYABLE_CLASSES = frozenset({"08", "53", "58"})  # connection, resources, system errors
#: The session is gone or unusable after these: terminate it rather than reuse it.
SESSION_FATAL_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})

#: Everything a database call can raise that ``map_error`` understands.
DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
    EOFError,
)


def connection_broken(exc: BaseException) -> bool:
    """True when ``exc`` means the connection itself can no longer be trusted."""
    if isinstance(exc, asyncpg.PostgresConnectionError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return str(getattr(exc, "sqlstate", "") or "") in SESSION_FATAL_SQLSTATES
    return isinstance(exc, DB_ERRORS)


def map_error(operation: str, exc: BaseException) -> ProviderError:
    """The ``ProviderError`` that ``exc`` (raised by asyncpg or the network) stands for."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        message = str(getattr(exc, "message", "") or exc)
        if state == LOCK_LOST:
            return LockLostError(operation, message)
        if state == "23505" and getattr(exc, "table_name", None) == "history":
            return ProviderError(
                operation,
                f"duplicate history event id; history is append-only ({message})",
                retryable=False,
            )
        retryable = state in RETRYABLE_SQLSTATES or state[:2] in RETRYABLE_CLASSES
        return ProviderError(operation, f"{message} (SQLSTATE {state})", retryable=retryable)
    if isinstance(
        exc,
        asyncpg.InterfaceError | asyncpg.InternalClientError | OSError | TimeoutError | EOFError,
    ):
        detail = str(exc) or type(exc).__name__
        return ProviderError(operation, f"database connection error: {detail}", retryable=True)
    return ProviderError(operation, f"{type(exc).__name__}: {exc}", retryable=False)


# ─── Connecting ──────────────────────────────────────────────────────────────


class PostgresConnectError(ProviderError, ConnectionError):
    """The database could not be reached, or refused us.

    Both a ``ProviderError`` and a ``ConnectionError`` so either kind of caller can catch
    it; ``str()`` is the plain sentence, e.g. "Failed to connect to PostgreSQL at
    127.0.0.1:5999: connection refused".
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__("connect", message, retryable=retryable)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class Target:
    """Where a DSN points, for messages only (asyncpg does the real parsing)."""

    host: str
    port: str
    password: str | None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("/") else self.host
        return f"{host}:{self.port}"


def parse_target(dsn: str) -> Target:
    """Best-effort host, port and password of a ``postgresql://`` URL (env defaults).

    ``PGHOST``/``PGPORT``/``PGPASSWORD`` are libpq's variables, which asyncpg itself falls
    back to when it connects: reading them here names the server it really tried. They are
    not Duraflow settings, so unlike those they are not read only at the CLI's edge."""
    rest = dsn.split("://", 1)[1] if "://" in dsn else ""
    query = ""
    if "?" in rest:
        rest, query = rest.split("?", 1)
    netloc = rest.split("/", 1)[0]
    password: str | None = None
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        if ":" in userinfo:
            password = unquote(userinfo.split(":", 1)[1])
    params = parse_qs(query)
    first = netloc.split(",", 1)[0]
    host, port = first, ""
    if first.startswith("["):  # [ipv6]:port
        host, _, tail = first[1:].partition("]")
        port = tail.lstrip(":")
    elif ":" in first:
        host, port = first.rsplit(":", 1)
    host = unquote(host) or params.get("host", [""])[0] or os.environ.get("PGHOST", "localhost")
    port = port or params.get("port", [""])[0] or os.environ.get("PGPORT", "5432")
    if password is None:
        password = params.get("password", [None])[0] or os.environ.get("PGPASSWORD") or None
    return Target(host, port, password)


def redact(text: str, password: str | None) -> str:
    if password:
        text = text.replace(password, "***")
    return text


def _cause(exc: BaseException, timeout_s: float) -> tuple[str, bool]:
    """A short human reason for a connect failure and whether retrying may help."""
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout_s:g} s", True
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused", True
    if isinstance(exc, socket.gaierror):
        return f"host name could not be resolved ({exc.strerror or exc})", True
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return f"authentication failed ({exc.message})", False
    if isinstance(
        exc, asyncpg.InvalidAuthorizationSpecificationError | asyncpg.InvalidCatalogNameError
    ):
        return str(exc.message), False
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        retryable = state in RETRYABLE_SQLSTATES or state[:2] in RETRYABLE_CLASSES
        return f"{exc.message} (SQLSTATE {state})", retryable
    if isinstance(exc, OSError):
        text = str(exc)
        if "Connect call failed" in text or "refused" in text.lower():
            return "connection refused", True
        return (exc.strerror or text or type(exc).__name__), True
    if isinstance(exc, ValueError):  # asyncpg: malformed DSN
        return f"invalid connection URL ({exc})", False
    return f"{type(exc).__name__}: {exc}", False


def connect_error(dsn: str, exc: BaseException, timeout_s: float) -> PostgresConnectError:
    target = parse_target(dsn)
    reason, retryable = _cause(exc, timeout_s)
    message = f"Failed to connect to PostgreSQL at {target.address}: {reason}"
    return PostgresConnectError(redact(message, target.password), retryable=retryable)
