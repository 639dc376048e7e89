"""SQLite storage for Duraflow: a single file (WAL) or a private in-memory database.

Good for development, tests and single-node deployments; several processes may share one
file, taking turns on SQLite's write lock. Import ``SqliteProvider`` from here.
"""

from duraflow.providers.sqlite.db import SqliteOpenError
from duraflow.providers.sqlite.provider import SqliteProvider

__all__ = ["SqliteOpenError", "SqliteProvider"]
