"""Encoding turns for the server-side functions and decoding what they return.

JSON encoding happens here, before any connection is borrowed, so a value that cannot be
encoded fails in the caller without touching the database. A turn travels as four JSONB
arrays (history delta, worker items, orchestrator items, cancelled activities) plus scalar
metadata; events and work items are embedded as JSON *text*, which the database stores
verbatim and never looks inside.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import asyncpg

from duraflow.core.events import HistoryEvent, HistoryFormatError
from duraflow.core.workitems import WorkItem
from duraflow.providers.common import decode_item, encode_item
from duraflow.providers.errors import ProviderError
from duraflow.providers.items import OrchestrationItem, TurnCommit, WorkLease


@dataclass(frozen=True, slots=True)
class EncodedCommit:
    delta: str
    worker_items: str
    orchestrator_items: str
    cancelled: str
    kv: str | None = None
    claim_tokens: list[str | None] = field(default_factory=list)  # per worker item


def encode_commit(commit: TurnCommit) -> EncodedCommit:
    op = "ack_orchestration_item"
    try:
        delta = [
            {"event_id": e.event_id, "kind": e.kind, "data": e.to_json()}
            for e in commit.history_delta
        ]
    except (TypeError, ValueError) as exc:
        raise ProviderError(
            op, f"history event is not JSON-encodable: {exc}", retryable=False
        ) from exc
    # Claimed rows are inserted locked; the token is chosen here so the lease needs
    # nothing back from the database.
    tokens: list[str | None] = [
        str(uuid.uuid4()) if w.claim and commit.claim_lock_ms else None
        for w in commit.worker_items
    ]
    workers: list[dict[str, object]] = [
        {
            "instance_id": w.instance_id,
            "execution_id": w.execution_id,
            "activity_id": w.activity_id,
            "item": encode_item(op, w.item),
            "session_id": w.session_id,
            "tag": w.tag,
            "claim_token": token,
        }
        for w, token in zip(commit.worker_items, tokens, strict=True)
    ]
    if commit.build_id is not None:  # the activities run on workers of the turn's build
        for worker in workers:
            worker["build_id"] = commit.build_id
    outbound = [
        {
            "instance_id": m.instance_id,
            "item": encode_item(op, m.item),
            "visible_at": m.visible_at_ms,
        }
        for m in commit.orchestrator_items
    ]
    cancelled = [
        {
            "instance_id": a.instance_id,
            "execution_id": a.execution_id,
            "activity_id": a.activity_id,
        }
        for a in commit.cancelled_activities
    ]
    kv = [
        {"action": m.action, "key": m.key, "value": m.value, "updated_at_ms": m.updated_at_ms}
        for m in commit.kv_mutations
    ]
    return EncodedCommit(
        json.dumps(delta),
        json.dumps(workers),
        json.dumps(outbound),
        json.dumps(cancelled),
        json.dumps(kv) if kv else None,
        tokens,
    )


def build_item(
    row: asyncpg.Record,
    instance_id: str,
    execution_id: int,
    history_len: int,
    texts: list[str] | None,
) -> OrchestrationItem:
    """An ``OrchestrationItem`` from a ``fetch_orchestration_item`` row.

    Undecodable messages or history do not raise: the item carries ``history_error`` with
    its lock held and attempt counted, so the runtime can poison the instance rather than
    every fetch failing forever.
    """
    errors: list[str] = []
    messages: list[WorkItem] = []
    for text in row["out_messages"]:
        try:
            messages.append(decode_item(text))
        except ValueError as exc:
            errors.append(f"undecodable queue message: {exc}")
    history: list[HistoryEvent] | None = None
    if texts is not None:
        try:
            history = [HistoryEvent.from_json(text) for text in texts]
        except HistoryFormatError as exc:
            history = []
            errors.append(str(exc))
    return OrchestrationItem(
        instance_id=instance_id,
        lock_token=str(row["out_lock_token"]),
        attempt_count=int(row["out_attempt_count"]),
        messages=messages,
        orchestration_name=row["out_name"],
        orchestration_version=row["out_version"],
        execution_id=execution_id,
        execution_status=row["out_status"],
        history_len=history_len,
        history=history,
        parent_instance_id=row["out_parent"],
        history_error="; ".join(errors) if errors else None,
    )


def build_lease(row: asyncpg.Record, prefix: str = "out_") -> WorkLease:
    """A ``WorkLease`` from a ``fetch_work_item`` row (columns named ``prefix`` + field)."""
    try:
        item = decode_item(row[f"{prefix}item"])
    except ValueError as exc:
        raise ProviderError(
            "fetch_work_item", f"undecodable work item: {exc}", retryable=False
        ) from exc
    return WorkLease(
        lock_token=str(row[f"{prefix}lock_token"]),
        attempt_count=int(row[f"{prefix}attempt_count"]),
        item=item,
        instance_id=str(row[f"{prefix}instance_id"]),
        execution_id=int(row[f"{prefix}execution_id"]),
        activity_id=int(row[f"{prefix}activity_id"]),
        session_id=row[f"{prefix}session_id"],
        tag=row[f"{prefix}tag"],
        session_owner=row[f"{prefix}session_owner"],
    )
