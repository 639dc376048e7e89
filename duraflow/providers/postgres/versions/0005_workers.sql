-- Duraflow PostgreSQL schema, version 5: the worker registry.
--
-- One row per runtime (worker_node_id + runtime_id), rewritten by each heartbeat with one
-- UPSERT; last_seen_at comes from the database clock so pods with skewed clocks agree on
-- who is alive. Rows unseen for longer than the retention are deleted by the same statement
-- of any runtime's heartbeat. The table is tiny and updated in place: HOT updates, eager
-- vacuum.

CREATE TABLE {{schema}}.workers (
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
    started_at                BIGINT NOT NULL,
    last_seen_at              BIGINT NOT NULL,
    heartbeat_interval_ms     BIGINT NOT NULL,
    PRIMARY KEY (worker_node_id, runtime_id)
) WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.02);
