"""Priming a new connection: the hot path's plans, made before the first real turn needs them.

PostgreSQL compiles a PL/pgSQL function on its first call in a session, and plans each of its
statements the first time that statement runs; asyncpg prepares each statement text once per
connection. On a fresh connection the first start and the first continuation of an
orchestration therefore cost several milliseconds more than later ones (measured: the first
instance of a fresh process took ~40 ms and the second ~10 ms, against ~4 ms later). So the
provider, once it has migrated the schema, runs the quiet path once on the connection it
will hand out first (the pool keeps the warmest connection on top, see ``db.py``): a start
with its first turn, then the continuation that finishes it, in ONE transaction that is
always rolled back. Nothing is written and nothing is announced; it costs a few round trips
and milliseconds at connect time. A failure only means the first real turns pay instead.
"""

from __future__ import annotations

import json
import logging
import uuid

from duraflow.core.status import Status
from duraflow.providers.postgres.db import Conn

log = logging.getLogger("duraflow.provider")

#: The instance ids primes use (never committed: the transaction is rolled back).
_INSTANCE_PREFIX = "__duraflow_prime__"


def _delta(*events: tuple[int, str, dict[str, str]]) -> str:
    return json.dumps([{"event_id": event_id, "kind": kind, "data": json.dumps(data)}
                       for event_id, kind, data in events])


async def prime(conn: Conn, start_sql: str, commit_sql: str) -> None:
    """Run ``start_sql`` (start_with_turn) and ``commit_sql`` (the lone commit_turn) the way
    a one-activity orchestration does, inside a transaction that is rolled back."""
    token, claim = str(uuid.uuid4()), str(uuid.uuid4())
    instance = f"{_INSTANCE_PREFIX}{token}"  # primes of two new connections never collide
    started = {"kind": "OrchestrationStarted", "engine_version": "0.0.0"}
    worker = json.dumps([{"instance_id": instance, "execution_id": 1, "activity_id": 2,
                          "item": "{}", "session_id": None, "tag": None,
                          "claim_token": claim}])
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.fetchrow(
            start_sql,
            instance, "{}", 1_000, None, None, token,
            1, _delta((1, "OrchestrationStarted", started), (2, "ActivityScheduled", {})),
            worker, "[]", "[]", "__prime__", "0.0.0", None, Status.RUNNING, None, False, None, None,
            1_000, 250, [], None, None, None,
        )
        await conn.fetchrow(
            commit_sql,
            token, 1,
            _delta((3, "ActivityCompleted", {}), (4, "OrchestrationCompleted", {})),
            "[]", "[]", "[]", None, None, None, Status.COMPLETED, "null", False, None, None, None,
            None, [claim], None, None, None,
        )
    finally:
        await transaction.rollback()
