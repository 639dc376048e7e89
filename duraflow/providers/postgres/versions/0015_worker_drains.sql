-- Duraflow PostgreSQL schema, version 15: draining worker nodes (elastic WorkerPools,
-- docs/autoscaling.md).
--
-- Self-contained, like version 14: it can be renumbered at a merge without touching
-- anything else.
--
-- The operator asks the pods it is about to remove to drain: one row per worker_node_id
-- (the pod name). A runtime learns of it from its heartbeat's answer, stops taking new work
-- and new sessions, lets what runs finish, releases its sessions and reports drain_state
-- 'drained' in its registry row; the operator removes the pod once that report is newer
-- than its request.
CREATE TABLE {{schema}}.worker_drains (
    worker_node_id TEXT PRIMARY KEY,
    requested_at   BIGINT NOT NULL
);
ALTER TABLE {{schema}}.workers ADD COLUMN drain_state TEXT
    CHECK (drain_state IN ('draining', 'drained'));
