"""The SQLite schema as migrations, versioned with ``PRAGMA user_version`` so a database file
upgrades in place (the twin of ``postgres/migrations.py``, which keeps a ledger table instead).

Migrations are lists of single statements rather than scripts: ``executescript`` commits any
open transaction first, which would let two processes opening the same new file both run
migration 1. Instead each migration runs inside ``BEGIN IMMEDIATE`` after re-reading the
version, so exactly one opener applies it and the others see it done.

Times are integer milliseconds since the Unix epoch, written by the provider's clock (never
``CURRENT_TIMESTAMP``, which reads back as text). Queue ids are ``AUTOINCREMENT`` so an id is
never reused after a delete: FIFO order and lock bookkeeping can rely on it.
"""

from __future__ import annotations

import sqlite3

from duraflow.providers.errors import SchemaTooNewError

MIGRATION_1: tuple[str, ...] = (
    """
    CREATE TABLE instances (
        instance_id           TEXT PRIMARY KEY,
        orchestration_name    TEXT NOT NULL,
        orchestration_version TEXT,
        current_execution_id  INTEGER NOT NULL DEFAULT 1,
        custom_status         TEXT,
        custom_status_version INTEGER NOT NULL DEFAULT 0,
        parent_instance_id    TEXT,
        created_at            INTEGER NOT NULL,
        updated_at            INTEGER NOT NULL
    )
    """,
    "CREATE INDEX idx_instances_parent ON instances(parent_instance_id)"
    " WHERE parent_instance_id IS NOT NULL",
    "CREATE INDEX idx_instances_created ON instances(created_at)",
    """
    CREATE TABLE executions (
        instance_id   TEXT NOT NULL REFERENCES instances(instance_id),
        execution_id  INTEGER NOT NULL,
        status        TEXT NOT NULL DEFAULT 'Running',
        output        TEXT,
        started_at    INTEGER NOT NULL,
        completed_at  INTEGER,
        last_event_id INTEGER NOT NULL DEFAULT 0,
        event_count   INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (instance_id, execution_id)
    )
    """,
    "CREATE INDEX idx_executions_status ON executions(status)",
    """
    CREATE TABLE history (
        instance_id  TEXT NOT NULL,
        execution_id INTEGER NOT NULL,
        event_id     INTEGER NOT NULL,
        event_type   TEXT NOT NULL,
        event_data   TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (instance_id, execution_id, event_id),
        FOREIGN KEY (instance_id, execution_id) REFERENCES executions(instance_id, execution_id)
    )
    """,
    """
    CREATE TABLE orchestrator_queue (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        instance_id   TEXT NOT NULL,
        work_item     TEXT NOT NULL,
        visible_at    INTEGER NOT NULL,
        lock_token    TEXT,
        locked_until  INTEGER,
        attempt_count INTEGER NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
        created_at    INTEGER NOT NULL
    )
    """,
    "CREATE INDEX idx_orch_visible ON orchestrator_queue(visible_at, id)",
    "CREATE INDEX idx_orch_instance ON orchestrator_queue(instance_id, visible_at)",
    "CREATE INDEX idx_orch_lock ON orchestrator_queue(lock_token) WHERE lock_token IS NOT NULL",
    """
    CREATE TABLE worker_queue (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        work_item     TEXT NOT NULL,
        visible_at    INTEGER NOT NULL,
        lock_token    TEXT,
        locked_until  INTEGER,
        attempt_count INTEGER NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
        created_at    INTEGER NOT NULL,
        instance_id   TEXT NOT NULL,
        execution_id  INTEGER NOT NULL,
        activity_id   INTEGER NOT NULL,
        session_id    TEXT,
        tag           TEXT
    )
    """,
    "CREATE INDEX idx_worker_available ON worker_queue(id) WHERE lock_token IS NULL",
    "CREATE INDEX idx_worker_lock ON worker_queue(lock_token) WHERE lock_token IS NOT NULL",
    "CREATE INDEX idx_worker_activity ON worker_queue(instance_id, execution_id, activity_id)",
    "CREATE INDEX idx_worker_session ON worker_queue(session_id) WHERE session_id IS NOT NULL",
    "CREATE INDEX idx_worker_tag ON worker_queue(tag) WHERE tag IS NOT NULL",
    """
    CREATE TABLE instance_locks (
        instance_id  TEXT PRIMARY KEY,
        lock_token   TEXT NOT NULL UNIQUE,
        locked_until INTEGER NOT NULL,
        locked_at    INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE sessions (
        session_id       TEXT PRIMARY KEY,
        worker_id        TEXT NOT NULL,
        locked_until     INTEGER NOT NULL,
        last_activity_at INTEGER NOT NULL
    )
    """,
    "PRAGMA user_version = 1",
)

#: The KV store: one row per live key; it outlives executions and goes with the instance.
MIGRATION_2: tuple[str, ...] = (
    """
    CREATE TABLE kv_store (
        instance_id   TEXT NOT NULL,
        key           TEXT NOT NULL,
        value         TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (instance_id, key)
    )
    """,
    "PRAGMA user_version = 2",
)

#: The worker registry: one row per runtime, rewritten by each of its heartbeats.
MIGRATION_3: tuple[str, ...] = (
    """
    CREATE TABLE workers (
        worker_node_id            TEXT NOT NULL,
        runtime_id                TEXT NOT NULL,
        host                      TEXT NOT NULL,
        pid                       INTEGER NOT NULL,
        tag_filter                TEXT NOT NULL,
        tags                      TEXT NOT NULL,
        orchestrations            TEXT NOT NULL,
        activities                TEXT NOT NULL,
        orchestration_concurrency INTEGER NOT NULL,
        worker_concurrency        INTEGER NOT NULL,
        max_sessions              INTEGER NOT NULL,
        sessions_held             INTEGER NOT NULL,
        started_at                INTEGER NOT NULL,
        last_seen_at              INTEGER NOT NULL,
        heartbeat_interval_ms     INTEGER NOT NULL,
        PRIMARY KEY (worker_node_id, runtime_id)
    )
    """,
    "PRAGMA user_version = 3",
)

#: Engine version of ``OrchestrationStarted`` text -> packed ``major*1e6 + minor*1e3 + patch``
#: (NULL when absent or not MAJOR.MINOR.PATCH), in plain SQL so any process can run it.
_PACKED_ENGINE_VERSION = """
    (SELECT CASE WHEN v GLOB '[0-9]*.[0-9]*.[0-9]*' THEN
         CAST(substr(v, 1, instr(v, '.') - 1) AS INTEGER) * 1000000
         + CAST(substr(r, 1, instr(r, '.') - 1) AS INTEGER) * 1000
         + CAST(substr(r, instr(r, '.') + 1) AS INTEGER)
     END
     FROM (SELECT v, substr(v, instr(v, '.') + 1) AS r
           FROM (SELECT json_extract(NEW.event_data, '$.engine_version') AS v)))
"""

#: Sessions are found by owner; each instance carries the engine version its current
#: execution is pinned to (capability filtering), set when event 1 of an execution is stored.
MIGRATION_4: tuple[str, ...] = (
    "CREATE INDEX idx_sessions_worker ON sessions(worker_id)",
    "ALTER TABLE instances ADD COLUMN pinned_version INTEGER",
    f"""
    CREATE TRIGGER history_pins_version AFTER INSERT ON history
    WHEN NEW.event_id = 1
    BEGIN
        UPDATE instances SET pinned_version = {_PACKED_ENGINE_VERSION}
        WHERE instance_id = NEW.instance_id AND current_execution_id <= NEW.execution_id;
    END
    """,
    "PRAGMA user_version = 4",
)

#: SQLite's clock in milliseconds, for triggers (the provider writes its own times elsewhere).
_NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"


def _end_runs(instance: str, status: str, at: str) -> str:
    """A trigger body's statements that end the schedule runs of instance ``instance`` (an
    expression) and make a schedule that waits for a run's end due now (the twin of
    postgres/functions/end_schedule_runs.sql; one writer at a time needs no locking)."""
    return f"""
        UPDATE schedules SET due_at = {at}
        WHERE wake_on_end AND (due_at IS NULL OR due_at > {at})
          AND schedule_id IN (SELECT schedule_id FROM schedule_runs
                              WHERE instance_id = {instance} AND ended_at IS NULL);
        UPDATE schedule_runs SET status = {status}, ended_at = {at}
        WHERE instance_id = {instance} AND ended_at IS NULL;"""


#: Durable schedules, their runs, and named leases (retention); see
#: postgres/versions/0013_schedules.sql for what each column means.
MIGRATION_5: tuple[str, ...] = (
    """
    CREATE TABLE schedules (
        schedule_id       TEXT PRIMARY KEY,
        orchestration     TEXT NOT NULL,
        version           TEXT,
        input             TEXT NOT NULL,
        cron              TEXT,
        every_ms          INTEGER,
        timezone          TEXT NOT NULL,
        overlap           TEXT NOT NULL,
        catchup_window_ms INTEGER NOT NULL,
        jitter_ms         INTEGER NOT NULL,
        paused            INTEGER NOT NULL DEFAULT 0,
        note              TEXT,
        next_tick_at      INTEGER,
        pending           TEXT NOT NULL DEFAULT '{}',
        wake_on_end       INTEGER NOT NULL DEFAULT 0,
        missed            INTEGER NOT NULL DEFAULT 0,
        due_at            INTEGER,
        created_at        INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL,
        CHECK ((cron IS NULL) <> (every_ms IS NULL))
    )
    """,
    "CREATE INDEX idx_schedules_due ON schedules(due_at) WHERE due_at IS NOT NULL",
    """
    CREATE TABLE schedule_runs (
        schedule_id  TEXT NOT NULL REFERENCES schedules(schedule_id) ON DELETE CASCADE,
        scheduled_at INTEGER NOT NULL,
        instance_id  TEXT NOT NULL,
        started_at   INTEGER NOT NULL,
        status       TEXT NOT NULL DEFAULT 'Running',
        ended_at     INTEGER,
        PRIMARY KEY (schedule_id, scheduled_at)
    )
    """,
    "CREATE INDEX idx_schedule_runs_instance ON schedule_runs(instance_id)",
    f"""
    CREATE TRIGGER executions_end_schedule_runs AFTER UPDATE OF status ON executions
    WHEN NEW.status IN ('Completed', 'Failed')
    BEGIN {_end_runs("NEW.instance_id", "NEW.status", f"COALESCE(NEW.completed_at, {_NOW_MS})")}
    END
    """,
    f"""
    CREATE TRIGGER instances_end_schedule_runs AFTER DELETE ON instances
    BEGIN {_end_runs("OLD.instance_id", "'Deleted'", _NOW_MS)}
    END
    """,
    """
    CREATE TABLE leases (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    )
    """,
    "PRAGMA user_version = 5",
)

#: Builds (docs/rollouts.md; PostgreSQL's versions/0014_builds.sql says what each part is
#: for): the builds and their states (at most one current, by a partial unique index), each
#: execution's pin, the running execution's pin on its instance (what the orchestration
#: fetch filters on), the build of each activity row and of each registered runtime, and
#: the verdicts of replay-verified upgrades.
MIGRATION_6: tuple[str, ...] = (
    """
    CREATE TABLE builds (
        build_id         TEXT PRIMARY KEY,
        state            TEXT NOT NULL
                         CHECK (state IN ('current', 'draining', 'retired', 'pending')),
        first_seen_at    INTEGER NOT NULL,
        state_changed_at INTEGER NOT NULL
    )
    """,
    "CREATE UNIQUE INDEX idx_builds_one_current ON builds(state) WHERE state = 'current'",
    "ALTER TABLE instances ADD COLUMN pinned_build TEXT",
    "ALTER TABLE executions ADD COLUMN build_id TEXT",
    "CREATE INDEX idx_executions_pinned ON executions(build_id)"
    " WHERE build_id IS NOT NULL AND status = 'Running'",
    "ALTER TABLE worker_queue ADD COLUMN build_id TEXT",
    "CREATE INDEX idx_worker_build ON worker_queue(build_id) WHERE build_id IS NOT NULL",
    "ALTER TABLE workers ADD COLUMN build_id TEXT",
    """
    CREATE TABLE build_verdicts (
        instance_id  TEXT NOT NULL,
        execution_id INTEGER NOT NULL,
        from_build   TEXT NOT NULL,
        to_build     TEXT NOT NULL,
        verdict      TEXT NOT NULL CHECK (verdict IN ('moved', 'diverged')),
        detail       TEXT,
        decided_at   INTEGER NOT NULL,
        PRIMARY KEY (instance_id, execution_id, from_build, to_build)
    )
    """,
    "PRAGMA user_version = 6",
)

#: Draining worker nodes (docs/autoscaling.md; PostgreSQL's version 15 says why).
MIGRATION_7 = (
    """
    CREATE TABLE worker_drains (
        worker_node_id TEXT PRIMARY KEY,
        requested_at   INTEGER NOT NULL
    )
    """,
    "ALTER TABLE workers ADD COLUMN drain_state TEXT"
    " CHECK (drain_state IN ('draining', 'drained'))",
    "PRAGMA user_version = 7",
)

#: Migration n (1-based) is ``MIGRATIONS[n - 1]``; each ends by setting ``user_version`` to n
#: (a literal: PRAGMA arguments cannot be bound as parameters).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    MIGRATION_1, MIGRATION_2, MIGRATION_3, MIGRATION_4, MIGRATION_5, MIGRATION_6,
    MIGRATION_7,
)
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema up to ``SCHEMA_VERSION``; safe when several processes race to do it."""
    if user_version(conn) == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = user_version(conn)  # re-read under the write lock
        if current > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"database schema version {current} is newer than this Duraflow supports "
                f"({SCHEMA_VERSION})"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
