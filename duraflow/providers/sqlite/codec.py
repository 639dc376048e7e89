"""Encoding a turn for the SQLite provider's writes, done before the hop to the database thread.

``prepare_commit`` turns a ``TurnCommit`` into SQL parameters, so a value that cannot be
encoded fails in the caller, and the write lock is held only for SQL
(``orchestrator_queue.commit_turn``). Lock tokens are chosen here too (``new_token``): a
claimed activity's lease then needs nothing back from the database. PostgreSQL's
``codec.py`` does the same for its server-side functions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from duraflow.providers.common import encode_item
from duraflow.providers.items import TurnCommit


def new_token() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class PreparedCommit:
    """A ``TurnCommit`` with everything already encoded, ready to bind as SQL parameters."""

    commit: TurnCommit
    events: list[tuple[int, str, str]]  # (event_id, kind, json)
    worker_rows: list[tuple[str, str, int, int, str | None, str | None]]
    orchestrator_rows: list[tuple[str, str, int | None]]  # (instance, json, visible_at)
    claim_tokens: list[str | None]  # per worker row: the lock token when claimed

    @property
    def writes_instance_state(self) -> bool:
        c = self.commit
        return (
            bool(self.events)
            or c.status is not None
            or c.output is not None
            or (c.custom_status_set)
            or bool(c.kv_mutations)
        )


def prepare_commit(commit: TurnCommit) -> PreparedCommit:
    op = "ack_orchestration_item"
    events = [(e.event_id, e.kind, e.to_json()) for e in commit.history_delta]
    workers = [
        (
            encode_item(op, w.item),
            w.instance_id,
            w.execution_id,
            w.activity_id,
            w.session_id,
            w.tag,
        )
        for w in commit.worker_items
    ]
    outbound = [
        (m.instance_id, encode_item(op, m.item), m.visible_at_ms) for m in commit.orchestrator_items
    ]
    tokens = [
        new_token() if w.claim and commit.claim_lock_ms else None for w in commit.worker_items
    ]
    return PreparedCommit(commit, events, workers, outbound, tokens)
