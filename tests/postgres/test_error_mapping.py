"""SQLSTATEs map to an honest ``retryable``; lock problems are ``LockLostError``."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from duraflow.providers.errors import LockLostError, ProviderError
from duraflow.providers.items import TurnCommit
from duraflow.providers.postgres.errors import map_error, parse_target, redact

from .helpers import create, raised


def _pg_error(sqlstate: str, message: str = "boom") -> asyncpg.PostgresError:
    error = asyncpg.PostgresError(message)
    error.sqlstate = sqlstate  # type: ignore[attr-defined]
    error.message = message  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("sqlstate", "retryable"),
    [
        ("40001", True),  # serialization failure
        ("40P01", True),  # deadlock
        ("0A000", True),  # cached plan must not change result type
        ("57P01", True),  # admin shutdown
        ("57P03", True),  # cannot connect now
        ("08006", True),  # connection failure
        ("53300", True),  # too many connections
        ("23505", False),  # unique violation
        ("23503", False),  # foreign key violation
        ("42P01", False),  # undefined table
        ("22P02", False),  # invalid text representation
    ],
)
def test_sqlstate_retryability(sqlstate: str, retryable: bool) -> None:
    error = map_error("op", _pg_error(sqlstate))
    assert type(error) is ProviderError
    assert error.retryable is retryable
    assert sqlstate in error.message


def test_lock_lost_code_and_io_errors() -> None:
    assert isinstance(map_error("ack", _pg_error("DFL01", "Instance lock expired")), LockLostError)
    for exc in (ConnectionResetError("reset"), TimeoutError(), asyncpg.InterfaceError("x")):
        error = map_error("op", exc)
        assert error.retryable and "connection" in error.message
    already = ProviderError("op", "x", retryable=False)
    assert map_error("other", already) is already


def test_target_parsing_and_redaction() -> None:
    t = parse_target("postgresql://u:p%40ss@db.example:6543/app?sslmode=require")
    assert (t.host, t.port, t.password) == ("db.example", "6543", "p@ss")
    assert parse_target("postgres://[::1]:5433/x").address == "[::1]:5433"
    assert parse_target("postgresql:///x?host=/run/pg&port=7").address == "/run/pg:7"
    assert redact("bad p@ss here", "p@ss") == "bad *** here"


@pytest.mark.postgres
async def test_real_errors_from_the_database(postgres_provider_factory: Any) -> None:
    p = await postgres_provider_factory()
    try:
        with pytest.raises(LockLostError):
            await p.ack_orchestration_item("no-such-token", TurnCommit(execution_id=1))
        with pytest.raises(LockLostError):
            await p.renew_work_item_lock("no-such-token", 1000)
        with pytest.raises(LockLostError):
            await p.abandon_orchestration_item("no-such-token")

        await create(p, "i")
        await p.enqueue_orchestrator(raised("i"))
        item = await p.fetch_orchestration_item(30_000)
        assert item is not None
        from .helpers import first_turn

        with pytest.raises(ProviderError) as dup:
            await p.ack_orchestration_item(item.lock_token, first_turn())  # event 1 again
        assert not dup.value.retryable and "duplicate history event" in dup.value.message
        # nothing was written and the lock is still ours
        assert len(await p.read_history("i")) == 1
        await p.renew_orchestration_item_lock(item.lock_token, 30_000)
    finally:
        await p.close()
