"""Entra ID auth is not supported: the duroxide-python entry points say so plainly."""

from __future__ import annotations

import pytest

from duraflow import PostgresEntraOptions, PostgresProvider


@pytest.mark.parametrize("method", ["connect_with_entra", "connect_with_schema_and_entra"])
def test_entra_connect_raises_a_clear_error(method: str) -> None:
    options = PostgresEntraOptions(max_connections=4)
    with pytest.raises(NotImplementedError, match=r"Entra ID .* not supported"):
        getattr(PostgresProvider, method)("host", 5432, "db", "user", options)
