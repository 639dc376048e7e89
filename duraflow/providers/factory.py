"""Open a provider from a URL: the one place that maps a database URL to a provider.

Public as ``duraflow.open_provider``: the ``duraflow`` command and the Kubernetes operator
open their store with it, and so can any program whose database comes from configuration.
It is a coroutine only. Blocking (duroxide-style) programs name their provider class, as
duroxide does (``SqliteProvider.open``, ``PostgresProvider.connect``), while everything that
starts from a URL runs on asyncio; a blocking twin would be one ``run_sync`` away if a caller
ever needs it.
"""

from __future__ import annotations

from duraflow.providers.protocol import Provider

_POSTGRES = ("postgres://", "postgresql://")
_MEMORY = ("sqlite::memory:", ":memory:")


async def open_provider(
    url: str, schema: str | None = None, *, pool_max: int | None = None
) -> Provider:
    """``postgres(ql)://...``: PostgreSQL, schema ``schema`` (default ``public``), at most
    ``pool_max`` pooled connections (default 10) plus one for LISTEN. ``sqlite::memory:`` or
    ``:memory:``: a private in-memory SQLite store. Anything else: a SQLite file
    (``sqlite:PATH``, ``sqlite:///abs/path`` or a bare path), created if missing. SQLite has
    no schemas and no pool, so it ignores both."""
    if url.startswith(_POSTGRES):
        from duraflow.providers.postgres import PostgresProvider

        return await PostgresProvider.connect_async(url, schema or "public", pool_max=pool_max)
    from duraflow.providers.sqlite import SqliteProvider

    if url in _MEMORY:
        return await SqliteProvider.in_memory_async()
    return await SqliteProvider.open_async(url)
