"""Session leases and running-activity checks on PostgreSQL, one statement each.

The claim itself happens inside ``fetch_work_item`` (``functions/fetch_work_item.sql``); these
are the periodic and shutdown operations of a runtime's session manager.
"""

from __future__ import annotations

from collections.abc import Sequence

from duraflow.providers.postgres.db import Database


async def lost_work_items(db: Database, lock_tokens: Sequence[str]) -> set[str]:
    if not lock_tokens:
        return set()
    rows = await db.fetch(
        "lost_work_items",
        f"SELECT lock_token FROM {db.s}.worker_queue"
        f" WHERE lock_token = ANY ($1::text[]) AND locked_until > {db.s}.now_ms()",
        list(lock_tokens),
    )
    return set(lock_tokens) - {str(r[0]) for r in rows}


async def renew(
    db: Database, owners: Sequence[str], extend_ms: int, idle_timeout_ms: int
) -> list[str]:
    rows = await db.fetch(
        "renew_sessions",
        f"SELECT * FROM {db.s}.renew_sessions($1, $2, $3) AS r (session_id) ORDER BY 1",
        list(owners),
        max(int(extend_ms), 0),
        max(int(idle_timeout_ms), 0),
        idempotent=True,
    )
    return [str(r[0]) for r in rows]


async def release(db: Database, owners: Sequence[str], worker_channel: str) -> int:
    """Delete the owners' leases; wakes idle workers everywhere when any were held."""
    released = await db.fetchval(
        "release_sessions",
        f"WITH r AS (DELETE FROM {db.s}.sessions WHERE worker_id = ANY ($1::text[])"
        " RETURNING 1), n AS (SELECT count(*) AS c FROM r)"
        " SELECT c FROM n, LATERAL (SELECT CASE WHEN c > 0 THEN pg_notify($2, '') END) AS w",
        list(owners),
        worker_channel,
        idempotent=True,
    )
    return int(released or 0)


async def cleanup(db: Database) -> int:
    removed = await db.fetchval(
        "cleanup_sessions", f"SELECT {db.s}.cleanup_sessions()", idempotent=True
    )
    return int(removed or 0)
