"""Group commit of orchestration turns: under load, several turns share one transaction.

Every transaction costs PostgreSQL a fixed share of work beyond its statements (the protocol
round trip, the commit record and its WAL flush, waking the backend), and with many instances
active that share was about half the database's CPU per turn. So turn commits go through a
small queue: a commit starts at once when fewer than ``MAX_IN_FLIGHT`` are running (a quiet
system adds no latency), and commits that arrive meanwhile leave together as ONE statement,
``SELECT … commit_turn(…) UNION ALL SELECT … commit_turn(…)``, in one transaction.

Each turn keeps its own outcome. If the database rejects the batch (one turn lost its lock,
a duplicate event, a deadlock with an admin delete), the whole transaction rolled back, so
each turn is committed again on its own and gets its own answer. A connection lost mid-batch
leaves the outcome unknown for all of its turns, exactly as for a single commit, and each
caller gets that error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg

from duraflow.providers.postgres.db import Database

#: Turns per statement at most, and statements in flight at once.
MAX_BATCH = 16
MAX_IN_FLIGHT = 2

#: commit_turn's arguments with their casts; one call is ``commit_turn(<these>)``.
_CASTS = ("", "", "::jsonb", "::jsonb", "::jsonb", "::jsonb", "", "", "", "", "", "", "",
          "::jsonb", "", "", "", "", "::jsonb", "")
ARITY = len(_CASTS)

_Waiter = tuple[Sequence[Any], "asyncio.Future[asyncpg.Record | None]"]


#: Position of commit_turn's status argument (1-based within one call's arguments).
_STATUS_ARG = 10


def _call(schema_sql: str, first: int, status_after: bool = False) -> str:
    """One commit_turn call and, with ``status_after``, laterally after it in the same
    statement, the status it left when it finished the instance (``status_after_commit``).
    Batches do without it: inside a UNION ALL of several such joins the planner's choices
    made a batch of three take 30 ms instead of 2 (measured), and a waiter then simply reads
    the status itself."""
    args = ", ".join(f"${first + i}{cast}" for i, cast in enumerate(_CASTS))
    call = f"{schema_sql}.commit_turn({args}) c"
    if status_after:
        call += (f" LEFT JOIN LATERAL {schema_sql}.status_after_commit(c.out_instance_id,"
                 f" ${first + _STATUS_ARG - 1}) s ON TRUE")
    return call


def _retrieve(future: asyncio.Future[Any]) -> None:
    """A caller cancelled while its turn was in a batch never reads the outcome."""
    if not future.cancelled():
        future.exception()


class TurnBatcher:
    """Commits ``commit_turn`` calls, alone when quiet, together under load."""

    def __init__(self, db: Database, operation: str) -> None:
        self._db = db
        self._op = operation
        #: The statement of a lone commit (what ``prime.py`` warms up).
        self.single_sql = f"SELECT * FROM {_call(db.s, 1, status_after=True)}"
        self._batches: dict[int, str] = {}
        self._queue: list[_Waiter] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.batched = 0  # turns that shared a transaction (for tests and tuning)

    async def commit(self, args: Sequence[Any]) -> asyncpg.Record | None:
        if len(args) != ARITY:  # pragma: no cover - a programming error
            raise ValueError(f"commit_turn takes {ARITY} arguments, got {len(args)}")
        if self._in_flight < MAX_IN_FLIGHT and not self._queue:
            # Nothing to share a transaction with: commit in the caller's own task, with no
            # queue, future or extra task in the way (the quiet, latency-bound case).
            self._in_flight += 1
            try:
                return await self._db.fetchrow(self._op, self.single_sql, *args, idempotent=False)
            finally:
                self._in_flight -= 1
                if self._queue and self._in_flight < MAX_IN_FLIGHT:
                    self._start()
        future: asyncio.Future[asyncpg.Record | None] = (
            asyncio.get_running_loop().create_future())
        future.add_done_callback(_retrieve)
        self._queue.append((args, future))
        if self._in_flight < MAX_IN_FLIGHT:
            self._start()
        # The batch commits whether or not this caller still waits (a turn's commit is
        # validated by its lock token, so a late commit is harmless).
        return await asyncio.shield(future)

    def _start(self) -> None:
        batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._flush(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: list[_Waiter]) -> None:
        try:
            if len(batch) == 1:
                await self._alone(batch[0])
            else:
                await self._together(batch)
        finally:
            self._in_flight -= 1
            if self._queue and self._in_flight < MAX_IN_FLIGHT:
                self._start()

    async def _alone(self, waiter: _Waiter) -> None:
        args, future = waiter
        try:
            row = await self._db.fetchrow(self._op, self.single_sql, *args, idempotent=False)
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        if not future.done():
            future.set_result(row)

    async def _together(self, batch: list[_Waiter]) -> None:
        sql = self._batch_sql(len(batch))
        flat = [value for args, _ in batch for value in args]

        async def go(conn: Any) -> list[asyncpg.Record] | None:
            try:
                rows: list[asyncpg.Record] = await conn.fetch(sql, *flat)
                return rows
            except asyncpg.PostgresError as exc:
                if isinstance(exc, asyncpg.PostgresConnectionError):
                    raise
                return None  # the server rolled the batch back: commit each on its own

        try:
            rows = await self._db.run(self._op, go, idempotent=False)
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        if rows is None:
            await asyncio.gather(*(self._alone(waiter) for waiter in batch))
            return
        self.batched += len(batch)
        by_position = {int(row["batch_n"]): row for row in rows}
        for n, (_, future) in enumerate(batch):
            if not future.done():
                future.set_result(by_position.get(n))

    def _batch_sql(self, size: int) -> str:
        sql = self._batches.get(size)
        if sql is None:
            sql = " UNION ALL ".join(
                f"SELECT {n} AS batch_n, * FROM {_call(self._db.s, n * ARITY + 1)}"
                for n in range(size)
            )
            self._batches[size] = sql
        return sql

    async def close(self) -> None:
        """Let commits already handed to the database finish."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)
