"""The schema's two kinds of files: versions run once, function files whenever they change.

What ``migrations.py`` promises and these tests hold it to: each function is defined in one
place; a schema an earlier Duraflow created, migrated from any version it reached, ends
identical to a fresh one (tables, columns, constraints, indexes, triggers, functions and their
definitions); a second run changes nothing; a changed function file is applied again, and
only it; a signature change without its drop fails loudly; a newer schema is left untouched.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from importlib import resources
from pathlib import Path

import asyncpg
import pytest

from duraflow.providers.errors import ProviderError, SchemaTooNewError
from duraflow.providers.postgres import migrations
from duraflow.providers.postgres.migrations import (
    LATEST_VERSION,
    MIGRATIONS,
    function_files,
    migrate,
)

from .schema_history import EARLIER, build, catalog, checkout, differences

#: The digest of the function files, per schema version (``function_files_digest``). A function
#: change is a schema change: it comes with a new version, so that an older Duraflow refuses
#: the schema instead of re-applying its own older functions (see migrations.py). Only the pin
#: of a version no release has shipped yet may change in place.
FUNCTIONS_BY_VERSION = {
    11: "b544a767e8a04d7e2b2ca0b1c6b9dc633e1601f4cceb93b738e547107bd194d1",
    12: "2f45372b53275956e6d9a2b172ead88347eeba9d75386f4c3e65845a06829065",
    13: "dd7e1bc9fa37e2e3afe2a2489025e449352ea5e7dfc2a3e79316d6120db01918",
    14: "d51ce9e3d790cf130df28a267cdb7579e3b23755ba53241c9277ce9d70736050",
    15: "d51ce9e3d790cf130df28a267cdb7579e3b23755ba53241c9277ce9d70736050",
}

#: How a function file defines its function: schema-qualified, replacing what is there.
_FUNCTION = re.compile(r"^CREATE OR REPLACE FUNCTION \{\{schema\}\}\.(\w+)\(", re.M)
#: Any definition of a function or trigger, however written.
_ANY_FUNCTION = re.compile(r"\bCREATE\s+(OR\s+REPLACE\s+)?FUNCTION\b", re.I)
_ANY_TRIGGER = re.compile(r"\bCREATE\s+(OR\s+REPLACE\s+)?TRIGGER\b", re.I)
_TRIGGER = re.compile(r"^CREATE TRIGGER .*?EXECUTE FUNCTION \{\{schema\}\}\.(\w+)\(", re.M | re.S)


def function_files_digest() -> str:
    digest = hashlib.sha256()
    for function in function_files():
        digest.update(f"{function.name}\n{function.template}\n".encode())
    return digest.hexdigest()


def _versioned_sql() -> dict[str, str]:
    folder = resources.files(migrations.__package__).joinpath("versions")
    return {m.filename: folder.joinpath(m.filename).read_text("utf-8")
            for m in MIGRATIONS if m.filename is not None}


def test_each_function_is_defined_in_its_own_file_and_nowhere_else() -> None:
    files = function_files()
    assert files, "no function files: are they in the package data?"
    for function in files:
        where = f"functions/{function.name}.sql"
        defined = _FUNCTION.findall(function.template)
        assert defined, f"{where} defines no function"
        assert set(defined) == {function.name}, f"{where} defines {defined}"
        assert len(_ANY_FUNCTION.findall(function.template)) == len(defined), (
            f"{where}: a function not written CREATE OR REPLACE FUNCTION {{{{schema}}}}.name("
        )
        triggers = _TRIGGER.findall(function.template)
        assert set(triggers) <= {function.name}, f"{where}: a trigger of {triggers}"
        assert len(_ANY_TRIGGER.findall(function.template)) == len(triggers), where
    package = Path(str(resources.files(migrations.__package__)))
    assert sorted(p.name for p in (package / "versions").glob("*.sql")) == sorted(
        _versioned_sql()), "a file in versions/ that MIGRATIONS does not name"
    elsewhere = {f"versions/{name}": sql for name, sql in _versioned_sql().items()}
    elsewhere.update({p.name: p.read_text("utf-8") for p in package.glob("*.py")})
    for where, text in elsewhere.items():
        assert not _ANY_FUNCTION.search(text), f"{where} defines a function: give it a file"
        assert not _ANY_TRIGGER.search(text), f"{where} creates a trigger: put it by its function"


def test_function_files_change_only_with_a_new_version() -> None:
    assert FUNCTIONS_BY_VERSION.get(LATEST_VERSION) == function_files_digest(), (
        "the function files differ from what version "
        f"{max(FUNCTIONS_BY_VERSION)} pinned: add a version to MIGRATIONS (a function change "
        "is a schema change, see migrations.py) and pin "
        f"{LATEST_VERSION if LATEST_VERSION not in FUNCTIONS_BY_VERSION else 'it'}: "
        f"{function_files_digest()!r} here"
    )


class Scratch:
    """A connection and the schemas a test makes on it (dropped afterwards)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.made: list[str] = []

    def schema(self, prefix: str) -> str:
        name = f"{prefix}_{secrets.token_hex(4)}"
        self.made.append(name)
        return name


@pytest.fixture
async def scratch(postgres_url: str) -> AsyncIterator[Scratch]:
    made = Scratch(await asyncpg.connect(postgres_url, timeout=10))
    try:
        yield made
    finally:
        for schema in made.made:
            await made.conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await made.conn.close()


@pytest.fixture(scope="module")
def earlier_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    yield {commit: checkout(commit, tmp_path_factory.mktemp(commit[:7])) for commit in EARLIER}


async def _proc_rows(conn: asyncpg.Connection, schema: str) -> dict[str, str]:
    """Each function's catalog row version: it changes whenever the function is (re)created."""
    rows = await conn.fetch(
        "SELECT format('%s(%s)', p.proname, pg_get_function_identity_arguments(p.oid)) AS f,"
        " p.xmin::TEXT AS x FROM pg_proc p"
        " WHERE p.pronamespace = $1::regnamespace", schema)
    return {r["f"]: r["x"] for r in rows}


def _change(monkeypatch: pytest.MonkeyPatch, name: str, old: str, new: str) -> None:
    """From now on ``functions/<name>.sql`` reads with ``old`` replaced by ``new``."""
    files = []
    for function in function_files():
        if function.name == name:
            assert old in function.template
            function = dataclasses.replace(function, template=function.template.replace(old, new))
        files.append(function)
    monkeypatch.setattr(migrations, "function_files", lambda: tuple(files))


@pytest.fixture
async def current(scratch: Scratch) -> tuple[asyncpg.Connection, str]:
    """A connection and a schema this Duraflow has just migrated."""
    schema = scratch.schema("t_current")
    await migrate(scratch.conn, schema)
    return scratch.conn, schema


@pytest.mark.postgres
async def test_a_schema_from_every_earlier_version_migrates_to_exactly_a_fresh_one(
    scratch: Scratch, postgres_url: str, earlier_tree: dict[str, Path]
) -> None:
    conn = scratch.conn
    fresh = scratch.schema("t_fresh")
    await migrate(conn, fresh)
    expected = await catalog(conn, fresh)
    assert expected["versions"] == [(m.version, m.name) for m in MIGRATIONS]

    failures: list[str] = []
    for commit, last in EARLIER.items():
        plan = [(scratch.schema(f"t_v{version}"), version) for version in range(1, last + 1)]
        build(earlier_tree[commit], postgres_url, plan)
        for schema, version in plan:
            before = await catalog(conn, schema)
            assert [v for v, _ in before["versions"]] == list(range(1, version + 1))
            run = await migrate(conn, schema)
            assert run.versions == list(range(version + 1, LATEST_VERSION + 1))
            failures += [f"from {commit[:7]} at version {version}: {line}"
                         for line in differences(await catalog(conn, schema), expected)]
    assert not failures, "\n".join(failures)


@pytest.mark.postgres
async def test_openers_racing_on_an_earlier_schema_upgrade_it_once(
    scratch: Scratch, postgres_url: str, earlier_tree: dict[str, Path]
) -> None:
    conn = scratch.conn
    commit, last = next(iter(EARLIER.items()))
    schema = scratch.schema("t_race")
    build(earlier_tree[commit], postgres_url, [(schema, last)])
    others = [await asyncpg.connect(postgres_url, timeout=10) for _ in range(4)]
    try:
        runs = await asyncio.gather(*(migrate(other, schema) for other in others))
    finally:
        for other in others:
            await other.close()
    changed = [run for run in runs if run.versions or run.functions]
    assert len(changed) == 1
    assert changed[0].functions == [f.name for f in function_files()]
    fresh = scratch.schema("t_fresh")
    await migrate(conn, fresh)
    assert differences(await catalog(conn, schema), await catalog(conn, fresh)) == []


@pytest.mark.postgres
async def test_an_earlier_duraflow_refuses_a_schema_this_one_migrated(
    current: tuple[asyncpg.Connection, str], postgres_url: str, earlier_tree: dict[str, Path]
) -> None:
    """A pod of the previous release that restarts during a rolling upgrade must not put its
    own functions back: it stops with SchemaTooNewError and changes nothing."""
    conn, schema = current
    before, rows = await catalog(conn, schema), await _proc_rows(conn, schema)
    for commit, last in EARLIER.items():
        printed = build(earlier_tree[commit], postgres_url, [(schema, last)], fails=True)
        assert "SchemaTooNewError" in printed
    assert differences(await catalog(conn, schema), before) == []
    assert await _proc_rows(conn, schema) == rows


@pytest.mark.postgres
async def test_migrating_a_current_schema_again_changes_nothing(scratch: Scratch) -> None:
    conn = scratch.conn
    schema = scratch.schema("t_again")
    first = await migrate(conn, schema)
    assert first.versions == [m.version for m in MIGRATIONS]
    assert first.functions == [f.name for f in function_files()]
    before, rows = await catalog(conn, schema), await _proc_rows(conn, schema)

    again = await migrate(conn, schema)

    assert (again.versions, again.functions) == ([], [])
    assert differences(await catalog(conn, schema), before) == []
    assert await _proc_rows(conn, schema) == rows  # not even replaced by an equal copy


@pytest.mark.postgres
async def test_a_changed_function_file_is_applied_again_and_only_it(
    current: tuple[asyncpg.Connection, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    conn, schema = current
    rows = await _proc_rows(conn, schema)
    _change(monkeypatch, "cleanup_sessions", "RETURN v_count;", "RETURN v_count;  -- new")

    run = await migrate(conn, schema)

    assert (run.versions, run.functions) == ([], ["cleanup_sessions"])
    definition = await conn.fetchval(
        f"SELECT pg_get_functiondef('\"{schema}\".cleanup_sessions()'::regprocedure)")
    assert "RETURN v_count;  -- new" in definition
    now = await _proc_rows(conn, schema)
    assert {f for f in rows if rows[f] != now[f]} == {"cleanup_sessions()"}
    assert ("cleanup_sessions", "current") in (await catalog(conn, schema))["function_ledger"]
    assert (await migrate(conn, schema)).functions == []

    monkeypatch.undo()  # back to the real file: applied again, like a rollback of the change
    assert (await migrate(conn, schema)).functions == ["cleanup_sessions"]


@pytest.mark.postgres
async def test_a_signature_change_without_its_drop_fails_and_changes_nothing(
    current: tuple[asyncpg.Connection, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    conn, schema = current
    _change(monkeypatch, "cleanup_sessions", "RETURNS BIGINT", "RETURNS INTEGER")
    before = await catalog(conn, schema)

    hint = r"cleanup_sessions\.sql.*drop the old signature"
    with pytest.raises(ProviderError, match=hint) as info:
        await migrate(conn, schema)

    assert not info.value.retryable
    assert differences(await catalog(conn, schema), before) == []


@pytest.mark.postgres
async def test_a_schema_from_a_newer_duraflow_is_refused_and_left_untouched(
    current: tuple[asyncpg.Connection, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    conn, schema = current
    await conn.execute(
        f'INSERT INTO "{schema}"._duraflow_migrations (version, name) VALUES ($1, $2)',
        LATEST_VERSION + 1, "from_the_future")
    _change(monkeypatch, "cleanup_sessions", "RETURN v_count;", "RETURN v_count;  -- old")
    before, rows = await catalog(conn, schema), await _proc_rows(conn, schema)

    with pytest.raises(SchemaTooNewError, match=str(LATEST_VERSION + 1)):
        await migrate(conn, schema)

    assert differences(await catalog(conn, schema), before) == []
    assert await _proc_rows(conn, schema) == rows


@pytest.mark.postgres
async def test_the_comparison_sees_every_kind_of_difference(scratch: Scratch) -> None:
    """The dump the upgrade test compares must not be blind: each change below shows."""
    conn = scratch.conn
    a, b = scratch.schema("t_cmp_a"), scratch.schema("t_cmp_b")
    await migrate(conn, a)
    await migrate(conn, b)
    assert differences(await catalog(conn, a), await catalog(conn, b)) == []
    await conn.execute(f'''
        DROP INDEX "{b}".idx_worker_tag;
        ALTER TABLE "{b}".workers ADD COLUMN extra TEXT;
        ALTER TABLE "{b}".kv_store ADD CONSTRAINT k CHECK (key <> '');
        DROP TRIGGER worker_cancelled ON "{b}".worker_queue;
        CREATE FUNCTION "{b}".lock_key(p INTEGER) RETURNS INTEGER LANGUAGE sql AS 'SELECT p';
        UPDATE "{b}"._duraflow_functions SET checksum = 'x' WHERE name = 'now_ms';
    ''')
    await conn.execute(
        (await conn.fetchval(
            f"SELECT pg_get_functiondef('\"{b}\".cleanup_sessions()'::regprocedure)"
        )).replace("RETURN v_count;", "RETURN v_count + 0;"))
    found = "\n".join(differences(await catalog(conn, a), await catalog(conn, b)))
    for part, what in [("indexes", "idx_worker_tag"), ("columns", "extra"), ("constraints", "'k'"),
                       ("triggers", "worker_cancelled"), ("functions", "p integer"),
                       ("functions", "v_count + 0"), ("function_ledger", "now_ms")]:
        assert re.search(f"^{part}: .*{re.escape(what)}", found, re.M), (part, what, found)
