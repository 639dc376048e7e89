-- Duraflow PostgreSQL schema, version 13: durable schedules and the maintenance lease.
--
-- A schedule is one row: what it starts (orchestration, version, input), when (cron or
-- every_ms, in timezone) and where it stands (next_tick_at, the ticks waiting or requested in
-- pending, missed). due_at is when a runtime must look at it next; runtimes find due
-- schedules with one range scan of its index (functions/due_schedules.sql), and the store's
-- next-due read (next_due_ms) takes its minimum with the timers' in the same statement.
-- schedule_runs records the ticks that started an instance: its primary key makes a tick
-- start once, and a run whose instance has not ended is "running" (partial index). The
-- trigger functions end_schedule_runs / schedule_run_finished / schedule_run_deleted mark
-- runs ended in the transaction that ends (or deletes) their instance.
-- leases: a named, expiring lock one runtime holds at a time (retention).
-- Self-contained: nothing here changes an earlier table, so the version can be renumbered.

CREATE TABLE {{schema}}.schedules (
    schedule_id       TEXT PRIMARY KEY,
    orchestration     TEXT NOT NULL,
    version           TEXT,
    input             TEXT NOT NULL,
    cron              TEXT,
    every_ms          BIGINT,
    timezone          TEXT NOT NULL,
    overlap           TEXT NOT NULL,
    catchup_window_ms BIGINT NOT NULL,
    jitter_ms         BIGINT NOT NULL,
    paused            BOOLEAN NOT NULL DEFAULT FALSE,
    note              TEXT,
    next_tick_at      BIGINT,
    pending           TEXT NOT NULL DEFAULT '{}',
    wake_on_end       BOOLEAN NOT NULL DEFAULT FALSE,
    missed            BIGINT NOT NULL DEFAULT 0,
    due_at            BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    CONSTRAINT schedules_one_timing CHECK ((cron IS NULL) <> (every_ms IS NULL))
);
CREATE INDEX idx_schedules_due ON {{schema}}.schedules (due_at) WHERE due_at IS NOT NULL;

CREATE TABLE {{schema}}.schedule_runs (
    schedule_id  TEXT NOT NULL REFERENCES {{schema}}.schedules ON DELETE CASCADE,
    scheduled_at BIGINT NOT NULL,
    instance_id  TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'Running',
    ended_at     BIGINT,
    PRIMARY KEY (schedule_id, scheduled_at)
);
CREATE INDEX idx_schedule_runs_active ON {{schema}}.schedule_runs (instance_id)
    WHERE ended_at IS NULL;

CREATE TABLE {{schema}}.leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
