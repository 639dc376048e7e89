-- Duraflow PostgreSQL schema, version 1: tables and indexes.
--
-- Rendered by migrations.py: {{schema}} is the quoted schema identifier. Every time is
-- BIGINT milliseconds since the Unix epoch. Times the provider decides itself (locks,
-- visibility of immediate messages, created/completed stamps) come from the database clock
-- ({{schema}}.now_ms(), functions/now_ms.sql), so many pods with skewed clocks still agree on
-- lock expiry.

CREATE TABLE {{schema}}.instances (
    instance_id           TEXT PRIMARY KEY,
    orchestration_name    TEXT NOT NULL,
    orchestration_version TEXT,
    current_execution_id  BIGINT NOT NULL DEFAULT 1,
    custom_status         TEXT,
    custom_status_version BIGINT NOT NULL DEFAULT 0,
    parent_instance_id    TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    -- creation order for "newest first" listings (created_at ties within one millisecond)
    seq                   BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX idx_instances_parent ON {{schema}}.instances (parent_instance_id)
    WHERE parent_instance_id IS NOT NULL;
CREATE INDEX idx_instances_created ON {{schema}}.instances (created_at, seq);

CREATE TABLE {{schema}}.executions (
    instance_id   TEXT NOT NULL,
    execution_id  BIGINT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'Running',
    output        TEXT,
    started_at    BIGINT NOT NULL,
    completed_at  BIGINT,
    -- maintained by ack so fetch learns history_len without counting rows
    event_count   BIGINT NOT NULL DEFAULT 0,
    history_bytes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (instance_id, execution_id)
);
CREATE INDEX idx_executions_status ON {{schema}}.executions (status);

CREATE TABLE {{schema}}.history (
    instance_id  TEXT NOT NULL,
    execution_id BIGINT NOT NULL,
    event_id     BIGINT NOT NULL,
    event_type   TEXT NOT NULL,
    event_data   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (instance_id, execution_id, event_id)
);

-- Queue tables churn (insert, update, delete within seconds): vacuum them eagerly.
CREATE TABLE {{schema}}.orchestrator_queue (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id   TEXT NOT NULL,
    work_item     TEXT NOT NULL,
    visible_at    BIGINT NOT NULL,
    lock_token    TEXT,
    attempt_count INTEGER NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    created_at    BIGINT NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05);
CREATE INDEX idx_orch_visible ON {{schema}}.orchestrator_queue (visible_at, id);
CREATE INDEX idx_orch_instance ON {{schema}}.orchestrator_queue (instance_id, visible_at);
CREATE INDEX idx_orch_lock ON {{schema}}.orchestrator_queue (lock_token)
    WHERE lock_token IS NOT NULL;

-- visible_at of a worker row is "fetchable from": taking the lock moves it to locked_until,
-- so the fetch is a plain range scan on (visible_at, id) that never walks in-flight rows.
CREATE TABLE {{schema}}.worker_queue (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id   TEXT NOT NULL,
    execution_id  BIGINT NOT NULL,
    activity_id   BIGINT NOT NULL,
    work_item     TEXT NOT NULL,
    visible_at    BIGINT NOT NULL,
    lock_token    TEXT,
    locked_until  BIGINT,
    attempt_count INTEGER NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    session_id    TEXT,
    tag           TEXT,
    created_at    BIGINT NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05);
CREATE INDEX idx_worker_visible ON {{schema}}.worker_queue (visible_at, id);
CREATE INDEX idx_worker_lock ON {{schema}}.worker_queue (lock_token)
    WHERE lock_token IS NOT NULL;
CREATE INDEX idx_worker_activity ON {{schema}}.worker_queue
    (instance_id, execution_id, activity_id);
CREATE INDEX idx_worker_session ON {{schema}}.worker_queue (session_id)
    WHERE session_id IS NOT NULL;
CREATE INDEX idx_worker_tag ON {{schema}}.worker_queue (tag) WHERE tag IS NOT NULL;

CREATE TABLE {{schema}}.instance_locks (
    instance_id  TEXT PRIMARY KEY,
    lock_token   TEXT NOT NULL UNIQUE,
    locked_until BIGINT NOT NULL,
    locked_at    BIGINT NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.02);

-- Sessions (worker affinity) arrive in a later feature; the table exists from the start.
CREATE TABLE {{schema}}.sessions (
    session_id       TEXT PRIMARY KEY,
    worker_id        TEXT NOT NULL,
    locked_until     BIGINT NOT NULL,
    last_activity_at BIGINT NOT NULL
);
