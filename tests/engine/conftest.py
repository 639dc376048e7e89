"""Fixtures for the engine end-to-end suite: every test runs on three providers.

``store`` is parametrised ``sqlite-memory`` / ``sqlite-file`` / ``postgres``. The postgres
parameter asks for the session fixture ``postgres_url`` (from ``tests/conftest.py``) only when
it runs, so ``-k "not postgres"`` needs no database server. Each postgres test gets its own
schema, dropped at teardown.

``start_runtime(register)`` builds a blocking ``Runtime`` with a short dispatcher poll
interval, lets ``register(runtime)`` add handlers, starts it and returns it; every runtime it
made is shut down when the test ends, pass or fail. ``store.reopen()`` opens a second
provider object on the same storage (same file, same schema) to simulate a process restart.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from duraflow import Client, PostgresProvider, Runtime, RuntimeOptions, SqliteProvider
from duraflow.bridge import run_sync

POLL_MS = 50


@dataclass
class Store:
    """One provider's storage, plus a way to open it again as a new provider object."""

    kind: str
    provider: Any
    _open: Callable[[], Any]
    opened: list[Any] = field(default_factory=list)

    def reopen(self) -> Any:
        """A new provider object on the same storage. The in-memory database cannot be
        reopened, so there it is the same object (a new Runtime still has no cached state)."""
        if self.kind == "sqlite-memory":
            return self.provider
        fresh = self._open()
        self.opened.append(fresh)
        return fresh


def _close(provider: Any) -> None:
    with contextlib.suppress(Exception):  # must not hide the test's own failure
        run_sync(provider.close())


@pytest.fixture(
    params=[
        pytest.param("sqlite-memory", id="sqlite-memory"),
        pytest.param("sqlite-file", id="sqlite-file"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    kind = request.param
    if kind == "sqlite-memory":
        provider = SqliteProvider.in_memory()
        store = Store(kind, provider, SqliteProvider.in_memory)
    elif kind == "sqlite-file":
        path = str(tmp_path / "db.sqlite")
        store = Store(kind, SqliteProvider.open(path), lambda: SqliteProvider.open(path))
    else:
        url = request.getfixturevalue("postgres_url")
        schema = f"engine_{uuid.uuid4().hex[:12]}"
        store = Store(
            kind,
            PostgresProvider.connect_with_schema(url, schema),
            lambda: PostgresProvider.connect_with_schema(url, schema),
        )
    store.opened.append(store.provider)
    try:
        yield store
    finally:
        if kind == "postgres":
            with contextlib.suppress(Exception):
                run_sync(store.provider.drop_schema())
        for provider in reversed(store.opened):
            _close(provider)


@pytest.fixture
def provider(store: Store) -> Any:
    return store.provider


@pytest.fixture
def client(provider: Any) -> Client:
    return Client(provider)


RuntimeStarter = Callable[..., Runtime]


@pytest.fixture
def start_runtime(provider: Any) -> Iterator[RuntimeStarter]:
    """``start_runtime(register, *, provider=None, options=None, **option_kwargs)``.

    ``register(rt)`` registers handlers before ``start()``. Options default to
    ``RuntimeOptions(dispatcher_poll_interval_ms=50, **option_kwargs)``.
    """
    runtimes: list[Runtime] = []

    def start(
        register: Callable[[Runtime], None] | None = None,
        *,
        provider: Any = provider,
        options: RuntimeOptions | None = None,
        **option_kwargs: Any,
    ) -> Runtime:
        if options is None:
            option_kwargs.setdefault("dispatcher_poll_interval_ms", POLL_MS)
            options = RuntimeOptions(**option_kwargs)
        runtime = Runtime(provider, options)
        runtimes.append(runtime)
        if register is not None:
            register(runtime)
        runtime.start()
        return runtime

    try:
        yield start
    finally:
        errors: list[BaseException] = []
        for runtime in reversed(runtimes):  # every runtime, even if one fails to stop
            try:
                runtime.shutdown(2000)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
