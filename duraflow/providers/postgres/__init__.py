"""PostgreSQL provider: the production backend for many worker processes on one database.

``PostgresProvider.connect(url)`` / ``connect_with_schema(url, schema)`` (blocking, like
duroxide-python) or ``await PostgresProvider.connect_async(url, schema)``.
"""

from duraflow.providers.postgres.errors import PostgresConnectError
from duraflow.providers.postgres.provider import InvalidSchemaError, PostgresProvider

__all__ = ["InvalidSchemaError", "PostgresConnectError", "PostgresProvider"]
