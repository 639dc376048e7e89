"""The provider conformance suite runs every test against every provider.

``provider`` is parametrised: ``sqlite-memory``, ``sqlite-file`` and ``postgres``. The
postgres provider comes from the session fixture ``postgres_provider_factory`` (defined in
``tests/conftest.py``; ``await factory()`` returns a fresh, empty, isolated provider), and is
only requested when that parameter runs, so the suite works without a database server when
run with ``-k "not postgres"``. Each provider is built inside the test's own event loop and
closed when the test ends.

Tests that need to damage stored history use the ``corrupt_history`` fixture. SQLite is
handled here; another provider supports it when its factory has an async
``corrupt_history(provider, instance_id, execution_id)`` attribute, and is skipped otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from duraflow.providers.protocol import Provider
from duraflow.providers.sqlite import SqliteProvider

from .support import Turns


@pytest.fixture(
    params=[
        pytest.param("sqlite-memory", id="sqlite-memory"),
        pytest.param("sqlite-file", id="sqlite-file"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def provider(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Provider]:
    kind = request.param
    created: Provider
    if kind == "sqlite-memory":
        created = await SqliteProvider.in_memory_async()
    elif kind == "sqlite-file":
        created = await SqliteProvider.open_async(str(tmp_path / "conformance.db"))
    else:
        factory = request.getfixturevalue("postgres_provider_factory")
        created = await factory()
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
def turns(provider: Provider) -> Turns:
    """Drives ``provider`` through raw orchestration turns (see ``support.Turns``)."""
    return Turns(provider)


@pytest.fixture
def corrupt_history(
    request: pytest.FixtureRequest, provider: Provider
) -> Callable[..., Awaitable[None]]:
    """``await corrupt_history(instance_id, execution_id=1)`` makes the stored history
    undecodable (its first event gets a kind this engine does not know)."""
    if isinstance(provider, SqliteProvider):
        sqlite = provider

        async def corrupt(instance_id: str, execution_id: int = 1) -> None:
            def run(conn: Any) -> None:
                conn.execute(
                    "UPDATE history SET event_data = ?"
                    " WHERE instance_id = ? AND execution_id = ? AND event_id = 1",
                    (
                        '{"event_id":1,"kind":"KindFromTheFuture","data":{}}',
                        instance_id,
                        execution_id,
                    ),
                )

            await sqlite._db.run("corrupt_history", run)

        return corrupt
    factory = request.getfixturevalue("postgres_provider_factory")
    hook = getattr(factory, "corrupt_history", None)
    if hook is None:
        pytest.fail(f"provider {provider.name} offers no history-corruption hook for this suite")

    async def corrupt_other(instance_id: str, execution_id: int = 1) -> None:
        await hook(provider, instance_id, execution_id)

    return corrupt_other
