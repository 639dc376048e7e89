"""The pool size is an argument of the provider; only the command and the operator read
``DURAFLOW_PG_POOL_MAX``, and they pass it in.

A library must not let an environment variable resize the pool of a program that chose its
own; the ``duraflow`` command and the operator, which are configured from outside, still
honour the variable.
"""

from __future__ import annotations

import argparse
import secrets

import pytest
from duraflow_operator import OperatorSettings

from duraflow import Provider, open_provider
from duraflow.cli.admin import resolve_location
from duraflow.cli.worker_config import load_config


async def _pool_max(url: str, pool_max: int | None) -> int:
    provider: Provider = await open_provider(url, f"pool_{secrets.token_hex(4)}",
                                             pool_max=pool_max)
    try:
        return int(provider._db.pool.get_max_size())  # type: ignore[attr-defined]
    finally:
        await provider.drop_schema()  # type: ignore[attr-defined]
        await provider.close()


@pytest.mark.postgres
async def test_open_provider_sizes_the_pool_and_ignores_the_environment(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURAFLOW_PG_POOL_MAX", "7")
    assert await _pool_max(postgres_url, 3) == 3
    assert await _pool_max(postgres_url, None) == 10


def test_the_command_and_the_operator_still_honour_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {"DURAFLOW_PG_POOL_MAX": "7", "DURAFLOW_DATABASE_URL": "postgresql://h/db",
           "DURAFLOW_APP": "tests.worker.app:register"}
    no_flags = argparse.Namespace()
    assert load_config(no_flags, env).pg_pool_max == 7
    assert OperatorSettings.from_env(env).pg_pool_max == 7
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert resolve_location(no_flags).pool_max == 7
