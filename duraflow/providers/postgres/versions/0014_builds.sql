-- Duraflow PostgreSQL schema, version 14: builds (safe code rollouts, docs/rollouts.md).
--
-- Self-contained: every table, column, index and dropped signature of the builds feature is
-- here, so this version can be renumbered at a merge without touching anything else.
--
-- A build is the code a runtime runs (RuntimeOptions.build_id). Each execution is pinned to
-- the build of the runtime that ran its first turn (executions.build_id); the instance
-- carries the pin of its current execution while that execution runs
-- (instances.pinned_build, NULL once it ends, so late messages of a finished instance
-- never wait for a build that is gone), which is what the orchestration fetch filters on.
-- An activity row carries the build of the turn that scheduled it (worker_queue.build_id).

CREATE TABLE {{schema}}.builds (
    build_id         TEXT PRIMARY KEY,
    -- current: takes new starts (at most one); draining: finishes what is pinned to it;
    -- retired: drained, nothing pinned; pending: registered with auto-promote off and
    -- never promoted (takes nothing new, like draining, but has never been current).
    state            TEXT NOT NULL
                     CHECK (state IN ('current', 'draining', 'retired', 'pending')),
    first_seen_at    BIGINT NOT NULL,
    state_changed_at BIGINT NOT NULL,
    -- registration order ("oldest first" listings; first_seen_at ties within a millisecond)
    seq              BIGINT GENERATED ALWAYS AS IDENTITY
);
-- At most one current build: the schema says so, whoever writes.
CREATE UNIQUE INDEX idx_builds_one_current ON {{schema}}.builds (state)
    WHERE state = 'current';

ALTER TABLE {{schema}}.instances ADD COLUMN pinned_build TEXT;
ALTER TABLE {{schema}}.executions ADD COLUMN build_id TEXT;
-- Running executions per build (list_builds, retirement, the upgrade loop's candidates).
CREATE INDEX idx_executions_pinned ON {{schema}}.executions (build_id)
    WHERE build_id IS NOT NULL AND status = 'Running';
ALTER TABLE {{schema}}.worker_queue ADD COLUMN build_id TEXT;
CREATE INDEX idx_worker_build ON {{schema}}.worker_queue (build_id)
    WHERE build_id IS NOT NULL;
ALTER TABLE {{schema}}.workers ADD COLUMN build_id TEXT;

-- What a replay-verified upgrade decided, once per execution and build pair: an execution
-- that diverged is never verified again by the same target build.
CREATE TABLE {{schema}}.build_verdicts (
    instance_id  TEXT NOT NULL,
    execution_id BIGINT NOT NULL,
    from_build   TEXT NOT NULL,
    to_build     TEXT NOT NULL,
    verdict      TEXT NOT NULL CHECK (verdict IN ('moved', 'diverged')),
    detail       TEXT,
    decided_at   BIGINT NOT NULL,
    PRIMARY KEY (instance_id, execution_id, from_build, to_build)
);

-- The hot functions take the caller's build as a last argument with a NULL default (a
-- previous release's pods call them with the arguments they know and get today's
-- behaviour); the old signatures go.
DROP FUNCTION IF EXISTS {{schema}}.fetch_orchestration_item(BIGINT, JSONB, BOOLEAN, BIGINT, BIGINT);
DROP FUNCTION IF EXISTS {{schema}}.enqueue_and_take(TEXT, TEXT, BIGINT, BIGINT, BIGINT);
DROP FUNCTION IF EXISTS {{schema}}.commit_turn(
    TEXT, BIGINT, JSONB, JSONB, JSONB, JSONB, TEXT, TEXT, TEXT, TEXT, TEXT, BOOLEAN, TEXT, JSONB,
    BIGINT, BIGINT, TEXT[], JSONB, JSONB);
DROP FUNCTION IF EXISTS {{schema}}.start_with_turn(
    TEXT, TEXT, BIGINT, BIGINT, BIGINT, TEXT, BIGINT, JSONB, JSONB, JSONB, JSONB, TEXT, TEXT,
    TEXT, TEXT, TEXT, BOOLEAN, TEXT, JSONB, BIGINT, BIGINT, TEXT[], JSONB, JSONB);
DROP FUNCTION IF EXISTS {{schema}}.fetch_work_item(BIGINT, TEXT, TEXT[], TEXT[], BIGINT, BOOLEAN);
