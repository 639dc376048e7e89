"""Open a provider from a URL: ``sqlite:PATH``, ``sqlite::memory:``, ``postgres(ql)://...``."""

from __future__ import annotations

from duraflow.providers.protocol import Provider


async def open_provider(url: str, schema: str | None = None) -> Provider:
    if url.startswith(("postgres://", "postgresql://")):
        from duraflow.providers.postgres import PostgresProvider

        return await PostgresProvider.connect_async(url, schema or "public")
    from duraflow.providers.sqlite import SqliteProvider

    if url in ("sqlite::memory:", ":memory:"):
        return await SqliteProvider.in_memory_async()
    return await SqliteProvider.open_async(url)
