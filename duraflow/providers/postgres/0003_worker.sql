-- Duraflow PostgreSQL schema, migration 3: the worker queue as server-side functions.
--
-- A worker row is peek-locked by one worker: fetch takes the oldest fetchable row with
-- FOR UPDATE SKIP LOCKED (concurrent workers in any process take different rows and never
-- wait for each other), and moves visible_at to the lock's expiry so in-flight rows drop out
-- of the (visible_at, id) range the next fetch scans. Ack deletes the row and enqueues the
-- completion in the same transaction; a missing row means the activity was cancelled.

CREATE OR REPLACE FUNCTION {{schema}}.fetch_work_item(
    p_lock_ms BIGINT, p_mode TEXT, p_tags TEXT[]
)
RETURNS TABLE (
    out_lock_token TEXT,
    out_attempt_count INTEGER,
    out_item TEXT,
    out_instance_id TEXT,
    out_execution_id BIGINT,
    out_activity_id BIGINT,
    out_session_id TEXT,
    out_tag TEXT
)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
    v_id BIGINT;
    v_token TEXT;
BEGIN
    SELECT w.id INTO v_id
    FROM {{schema}}.worker_queue w
    WHERE w.visible_at <= v_now
      AND CASE p_mode
              WHEN 'any' THEN TRUE
              WHEN 'default_only' THEN w.tag IS NULL
              WHEN 'tags' THEN w.tag = ANY (p_tags)
              WHEN 'default_and' THEN w.tag IS NULL OR w.tag = ANY (p_tags)
              ELSE FALSE
          END
    ORDER BY w.visible_at, w.id
    LIMIT 1
    FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_token := gen_random_uuid()::TEXT;
    RETURN QUERY
    UPDATE {{schema}}.worker_queue w SET
        lock_token = v_token,
        locked_until = v_now + p_lock_ms,
        visible_at = v_now + p_lock_ms,
        attempt_count = w.attempt_count + 1
    WHERE w.id = v_id
    RETURNING w.lock_token, w.attempt_count, w.work_item, w.instance_id, w.execution_id,
              w.activity_id, w.session_id, w.tag;
END
$fn$;

-- Why a token no longer works, as the exception ack/renew raise (DFL01 = lock lost).
CREATE OR REPLACE FUNCTION {{schema}}.raise_worker_lock_lost(p_token TEXT) RETURNS VOID
LANGUAGE plpgsql AS $fn$
BEGIN
    IF EXISTS (SELECT 1 FROM {{schema}}.worker_queue WHERE lock_token = p_token) THEN
        RAISE EXCEPTION 'work item lock expired' USING ERRCODE = 'DFL01';
    END IF;
    RAISE EXCEPTION 'work item not found (cancelled, acked or re-locked)'
        USING ERRCODE = 'DFL01';
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.ack_work_item(
    p_token TEXT, p_instance TEXT, p_item TEXT, p_visible_at BIGINT
) RETURNS BIGINT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
    v_visible BIGINT;
BEGIN
    DELETE FROM {{schema}}.worker_queue WHERE lock_token = p_token AND locked_until > v_now;
    IF NOT FOUND THEN
        PERFORM {{schema}}.raise_worker_lock_lost(p_token);
    END IF;
    IF p_item IS NULL THEN
        RETURN NULL;
    END IF;
    v_visible := COALESCE(p_visible_at, v_now);
    INSERT INTO {{schema}}.orchestrator_queue (instance_id, work_item, visible_at, created_at)
    VALUES (p_instance, p_item, v_visible, v_now);
    PERFORM pg_notify({{chan_orch}}, v_visible::TEXT);
    RETURN v_visible;
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.renew_work_item_lock(p_token TEXT, p_extend_ms BIGINT)
RETURNS VOID
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
BEGIN
    UPDATE {{schema}}.worker_queue
    SET locked_until = v_now + p_extend_ms, visible_at = v_now + p_extend_ms
    WHERE lock_token = p_token AND locked_until > v_now;
    IF NOT FOUND THEN
        PERFORM {{schema}}.raise_worker_lock_lost(p_token);
    END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.abandon_work_item(
    p_token TEXT, p_delay_ms BIGINT, p_ignore_attempt BOOLEAN
) RETURNS BIGINT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
    v_visible BIGINT;
BEGIN
    IF p_delay_ms IS NOT NULL AND p_delay_ms > 0 THEN
        v_visible := v_now + p_delay_ms;
    END IF;
    -- Without a delay the row goes back to its original place in the queue (created_at).
    UPDATE {{schema}}.worker_queue SET
        lock_token = NULL,
        locked_until = NULL,
        visible_at = COALESCE(v_visible, LEAST(created_at, v_now)),
        attempt_count = CASE WHEN p_ignore_attempt THEN GREATEST(attempt_count - 1, 0)
                             ELSE attempt_count END
    WHERE lock_token = p_token;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Invalid lock token' USING ERRCODE = 'DFL01';
    END IF;
    IF v_visible IS NULL THEN
        PERFORM pg_notify({{chan_work}}, '');
    END IF;
    RETURN v_visible;
END
$fn$;
