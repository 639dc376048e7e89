"""Fixtures of the multi-process tests: a store several processes share."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from duraflow.providers.postgres import PostgresProvider
from duraflow.providers.protocol import Provider
from duraflow.providers.sqlite import SqliteProvider


@pytest.fixture(params=["sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)])
async def shared_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Provider, str, str]]:
    """``(provider, url, schema)`` of a store other processes can open too."""
    if request.param == "sqlite-file":
        path = str(tmp_path / "shared.db")
        provider: Provider = await SqliteProvider.open_async(path)
        yield provider, path, ""
        await provider.close()
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"cx_{uuid.uuid4().hex[:10]}"
    pg = await PostgresProvider.connect_async(url, schema)
    try:
        yield pg, url, schema
    finally:
        await pg.drop_schema()
        await pg.close()
