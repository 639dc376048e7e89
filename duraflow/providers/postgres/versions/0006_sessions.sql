-- Duraflow PostgreSQL schema, version 6: session affinity in the worker queue, prompt
-- cross-process cancellation, and capability filtering of orchestration turns.
--
-- The functions and triggers these need live in functions/ (fetch_work_item, ack_work_item,
-- renew_work_item_lock, renew_sessions, cleanup_sessions, announce_work_cancelled,
-- pin_execution_version, fetch_orchestration_item).

-- Sessions: a worker's leases are looked up by owner.
CREATE INDEX idx_sessions_worker ON {{schema}}.sessions (worker_id);

-- The worker fetch took the session arguments: its 3-argument form is gone.
DROP FUNCTION IF EXISTS {{schema}}.fetch_work_item(BIGINT, TEXT, TEXT[]);

-- Capability filtering. Each execution is pinned to the engine version that started it;
-- instances.pinned_version mirrors the current execution's pin
-- (functions/pin_execution_version.sql).
ALTER TABLE {{schema}}.instances ADD COLUMN pinned_version BIGINT;

-- The orchestration fetch took the replay range: its 3-argument form is gone.
DROP FUNCTION IF EXISTS {{schema}}.fetch_orchestration_item(BIGINT, JSONB, BOOLEAN);
