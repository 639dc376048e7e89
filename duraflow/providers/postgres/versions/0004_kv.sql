-- Duraflow PostgreSQL schema, version 4: the KV store.
--
-- One row per live key. It outlives executions (continue-as-new keeps it) and is removed only
-- with its instance. A turn's mutations are applied in the turn's own transaction
-- (functions/apply_kv_mutations.sql).

CREATE TABLE {{schema}}.kv_store (
    instance_id   TEXT   NOT NULL,
    key           TEXT   NOT NULL,
    value         TEXT   NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (instance_id, key)
);
