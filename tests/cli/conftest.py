"""Fixtures for the admin CLI tests: real databases, real instances made by a real runtime.

``populated`` (module scope, one per store) holds a fixed scenario the read-only commands
are checked against: a completed, a failed and an event-waiting instance, a three-level
sub-orchestration tree, an instance with four executions (continue-as-new) and one whose
activity waits for a ``gpu`` worker that never comes. Commands that change instances use
``live`` (function scope: a fresh store and a running runtime per test).

The CLI runs in-process (``duraflow.cli.main``) on its own provider, as an operator's
command would, while the runtime keeps running on another provider object.
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
from duraflow.cli import main

from .scenario import register_scenario, start_scenario

STORES = [
    pytest.param("sqlite-file", id="sqlite-file"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@dataclass
class Db:
    """One store, a client on it, and a way to run ``duraflow`` against it."""

    kind: str
    url: str
    schema: str | None
    provider: Any
    client: Client
    capsys: pytest.CaptureFixture[str] | None = None
    runtimes: list[Runtime] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def db_args(self) -> list[str]:
        return ["--database-url", self.url] + (["--schema", self.schema] if self.schema else [])

    def cli(self, *argv: str) -> CliResult:
        """Run ``duraflow ARGV --database-url ...`` in-process; capture what it printed."""
        assert self.capsys is not None, "use the db through a function-scoped fixture"
        self.capsys.readouterr()
        try:
            code = main([*argv, *self.db_args])
        except SystemExit as exc:  # argparse's usage errors
            code = int(exc.code or 0)
        captured = self.capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    def start_runtime(self, register: Callable[[Runtime], None], **options: Any) -> Runtime:
        options.setdefault("dispatcher_poll_interval_ms", 50)
        runtime = Runtime(self.provider, RuntimeOptions(**options))
        self.runtimes.append(runtime)
        register(runtime)
        runtime.start()
        return runtime


@contextlib.contextmanager
def open_db(kind: str, request: pytest.FixtureRequest, directory: Path) -> Iterator[Db]:
    if kind == "sqlite-file":
        path = str(directory / "duraflow.db")
        provider = SqliteProvider.open(path)
        db = Db(kind, path, None, provider, Client(provider))
    else:
        url = request.getfixturevalue("postgres_url")
        schema = f"cli_{uuid.uuid4().hex[:12]}"
        provider = PostgresProvider.connect_with_schema(url, schema)
        db = Db(kind, url, schema, provider, Client(provider))
    try:
        yield db
    finally:
        errors: list[BaseException] = []
        for runtime in reversed(db.runtimes):
            try:
                runtime.shutdown(2000)
            except Exception as exc:
                errors.append(exc)
        if kind == "postgres":
            with contextlib.suppress(Exception):
                run_sync(provider.drop_schema())
        with contextlib.suppress(Exception):
            run_sync(provider.close())
        if errors:
            raise errors[0]


@pytest.fixture(scope="module", params=STORES)
def populated_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Db]:
    with open_db(request.param, request, tmp_path_factory.mktemp("cli")) as db:
        db.start_runtime(register_scenario, worker_node_id="cli-test-pod-0")
        db.ids = start_scenario(db.client)
        yield db


@pytest.fixture
def populated(populated_store: Db, capsys: pytest.CaptureFixture[str]) -> Iterator[Db]:
    populated_store.capsys = capsys
    yield populated_store
    populated_store.capsys = None


@pytest.fixture(params=STORES)
def blank(
    request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[Db]:
    """A fresh store and no runtime: the test starts the runtimes it needs."""
    with open_db(request.param, request, tmp_path) as db:
        db.capsys = capsys
        yield db


@pytest.fixture
def live(blank: Db) -> Db:
    """A fresh store with the scenario's orchestrations registered on a running runtime."""
    blank.start_runtime(register_scenario)
    return blank
