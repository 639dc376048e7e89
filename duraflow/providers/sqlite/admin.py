"""Deleting instance trees and pruning old executions on SQLite, each as one write transaction.

What may be deleted and how much a bulk call takes are rules both providers share
(``providers.admin_rules``). Here the tree is read inside the same ``BEGIN IMMEDIATE`` that
deletes it, so no child can be created in between (duroxide needs a separate orphan check
for that window; a single SQLite writer does not). Deleting an instance also deletes its
``instance_locks`` row: a turn still in flight then fails its ack with ``LockLostError``
instead of resurrecting the instance.
"""

from __future__ import annotations

import json
import sqlite3

from duraflow.core.models import (
    RUNNING,
    DeleteInstanceResult,
    InstanceFilter,
    PruneOptions,
    PruneResult,
)
from duraflow.core.status import Status
from duraflow.providers import admin_rules as rules
from duraflow.providers.errors import InstanceNotFoundError
from duraflow.providers.sqlite.db import transaction

_IN_IDS = "instance_id IN (SELECT value FROM json_each(?))"
#: Deletion order matters: foreign-key children (history, executions) before ``instances``.
_DELETE_TREE = (
    ("history", "DELETE FROM history WHERE " + _IN_IDS),
    ("executions", "DELETE FROM executions WHERE " + _IN_IDS),
    ("orchestrator_queue", "DELETE FROM orchestrator_queue WHERE " + _IN_IDS),
    ("worker_queue", "DELETE FROM worker_queue WHERE " + _IN_IDS),
    ("instance_locks", "DELETE FROM instance_locks WHERE " + _IN_IDS),
    ("kv_store", "DELETE FROM kv_store WHERE " + _IN_IDS),
    ("build_verdicts", "DELETE FROM build_verdicts WHERE " + _IN_IDS),
    ("instances", "DELETE FROM instances WHERE " + _IN_IDS),
)


def _collect_tree(conn: sqlite3.Connection, root: str) -> list[str]:
    ids = [root]
    seen = {root}
    index = 0
    while index < len(ids):
        rows = conn.execute(
            "SELECT instance_id FROM instances WHERE parent_instance_id = ?"
            " ORDER BY created_at, rowid",
            (ids[index],),
        ).fetchall()
        for (child,) in rows:
            if child not in seen:
                seen.add(child)
                ids.append(child)
        index += 1
    return ids


def _delete_ids(conn: sqlite3.Connection, ids: list[str]) -> DeleteInstanceResult:
    encoded = json.dumps(ids)
    counts = {table: conn.execute(sql, (encoded,)).rowcount for table, sql in _DELETE_TREE}
    return DeleteInstanceResult(
        instances_deleted=counts["instances"],
        executions_deleted=counts["executions"],
        events_deleted=counts["history"],
        queue_messages_deleted=counts["orchestrator_queue"] + counts["worker_queue"],
    )


def delete_tree(
    conn: sqlite3.Connection, instance_id: str, force: bool
) -> tuple[DeleteInstanceResult, list[str]]:
    """Delete ``instance_id`` and its descendants; returns the counts and the deleted ids."""
    op = "delete_instance"
    with transaction(conn, write=True):
        row = conn.execute(
            "SELECT i.parent_instance_id, p.instance_id FROM instances i"
            " LEFT JOIN instances p ON p.instance_id = i.parent_instance_id"
            " WHERE i.instance_id = ?",
            (instance_id,),
        ).fetchone()
        if row is None:
            raise InstanceNotFoundError(op, instance_id)
        if row[1] is not None:
            raise rules.not_a_root(op, instance_id, row[0])
        ids = _collect_tree(conn, instance_id)
        if not force:
            running = _first_running(conn, ids)
            if running is not None:
                raise rules.still_running(op, running)
        return _delete_ids(conn, ids), ids


def _first_running(conn: sqlite3.Connection, ids: list[str]) -> str | None:
    """The oldest instance of ``ids`` whose current execution runs, if any."""
    row = conn.execute(
        "SELECT i.instance_id FROM instances i JOIN executions e"
        " ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id"
        " WHERE i." + _IN_IDS + " AND e.status = ? ORDER BY i.created_at LIMIT 1",
        (json.dumps(ids), RUNNING),
    ).fetchone()
    return None if row is None else str(row[0])


def _filter_params(filter: InstanceFilter) -> dict[str, object]:
    return {
        "ids": None if filter.instance_ids is None else json.dumps(list(filter.instance_ids)),
        "before": filter.completed_before,
        "limit": rules.bulk_limit(filter),
    }


_BULK_DELETE_ROOTS = """
    SELECT i.instance_id, i.created_at, i.rowid FROM instances i
    JOIN executions e ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
    WHERE (i.parent_instance_id IS NULL
           OR NOT EXISTS (SELECT 1 FROM instances p WHERE p.instance_id = i.parent_instance_id))
      AND e.status IN (SELECT value FROM json_each(:terminal))
      AND (:ids IS NULL OR i.instance_id IN (SELECT value FROM json_each(:ids)))
      AND (:before IS NULL OR (e.completed_at IS NOT NULL AND e.completed_at < :before))
    AND (:after_at IS NULL OR (i.created_at, i.rowid) > (:after_at, :after_row))
    ORDER BY i.created_at, i.rowid
    LIMIT :limit
"""


def delete_bulk(
    conn: sqlite3.Connection, filter: InstanceFilter, force: bool = True
) -> tuple[DeleteInstanceResult, list[str]]:
    """Delete the trees of terminal roots matching every given filter (AND). With ``force``
    (the admin call) a tree goes whole; without it (retention) a tree in which an instance
    still runs (a sub-orchestration the finished root left running) is skipped."""
    page = delete_bulk_page(conn, filter, force, None)
    return page.result, page.deleted


def delete_bulk_page(
    conn: sqlite3.Connection, filter: InstanceFilter, force: bool,
    after: tuple[int, int] | None,
) -> rules.DeletePage:
    """``delete_bulk`` over the roots created after the cursor ``after`` (created_at, rowid),
    oldest first. Retention pages through its candidates with it, so roots it has to skip
    (a sub-orchestration still runs) never hide the ones behind them."""
    page = rules.DeletePage()
    deleted_set: set[str] = set()
    with transaction(conn, write=True):
        params = _filter_params(filter) | {
            "terminal": json.dumps(sorted(Status.EXECUTION_ENDED)),
            "after_at": None if after is None else after[0],
            "after_row": None if after is None else after[1],
        }
        for root, created_at, rowid in conn.execute(_BULK_DELETE_ROOTS, params).fetchall():
            page.scanned += 1
            page.last = (int(created_at), int(rowid))
            if root in deleted_set:  # already gone with an earlier (orphan-rooted) tree
                continue
            ids = _collect_tree(conn, str(root))
            if not force and _first_running(conn, ids) is not None:
                continue
            rules.add_counts(page.result, _delete_ids(conn, ids))
            page.deleted.extend(ids)
            deleted_set.update(ids)
    return page


_PRUNABLE = """
    SELECT execution_id FROM executions
    WHERE instance_id = :id AND execution_id <> :current AND status <> :running
      AND execution_id NOT IN (SELECT execution_id FROM executions WHERE instance_id = :id
                               ORDER BY execution_id DESC LIMIT :keep)
      AND (:before IS NULL OR (completed_at IS NOT NULL AND completed_at < :before))
"""


def _prune_one(
    conn: sqlite3.Connection, instance_id: str, current: int, options: PruneOptions
) -> PruneResult:
    keep = rules.executions_to_keep(options)
    params = {
        "id": instance_id,
        "current": current,
        "running": RUNNING,
        "keep": keep,
        "before": options.completed_before,
    }
    victims = [int(r[0]) for r in conn.execute(_PRUNABLE, params).fetchall()]
    if not victims:
        return PruneResult(instances_processed=1)
    encoded = json.dumps(victims)
    events = conn.execute(
        "DELETE FROM history WHERE instance_id = ?"
        " AND execution_id IN (SELECT value FROM json_each(?))",
        (instance_id, encoded),
    ).rowcount
    executions = conn.execute(
        "DELETE FROM executions WHERE instance_id = ?"
        " AND execution_id IN (SELECT value FROM json_each(?))",
        (instance_id, encoded),
    ).rowcount
    return PruneResult(instances_processed=1, executions_deleted=executions, events_deleted=events)


def prune(conn: sqlite3.Connection, instance_id: str, options: PruneOptions) -> PruneResult:
    with transaction(conn, write=True):
        row = conn.execute(
            "SELECT current_execution_id FROM instances WHERE instance_id = ?", (instance_id,)
        ).fetchone()
        if row is None:
            raise InstanceNotFoundError("prune_executions", instance_id)
        return _prune_one(conn, instance_id, int(row[0]), options)


_BULK_PRUNE_INSTANCES = """
    SELECT i.instance_id, i.current_execution_id FROM instances i
    LEFT JOIN executions e
        ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
    WHERE (:ids IS NULL OR i.instance_id IN (SELECT value FROM json_each(:ids)))
      AND (:before IS NULL OR (e.completed_at IS NOT NULL AND e.completed_at < :before))
    ORDER BY i.created_at, i.rowid
    LIMIT :limit
"""


def prune_bulk(
    conn: sqlite3.Connection, filter: InstanceFilter, options: PruneOptions
) -> PruneResult:
    """Prune every matching instance, Running ones included (their current run is safe)."""
    total = PruneResult()
    with transaction(conn, write=True):
        rows = conn.execute(_BULK_PRUNE_INSTANCES, _filter_params(filter)).fetchall()
        for instance_id, current in rows:
            rules.add_counts(total, _prune_one(conn, str(instance_id), int(current), options))
    return total
