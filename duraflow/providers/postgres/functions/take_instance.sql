-- The "lock one instance and collect its visible messages" half of the orchestration fetch,
-- for an instance the caller names: fetch_orchestration_item picks candidates and calls it,
-- enqueue_and_take calls it for the instance it has just enqueued for. Returns no row when
-- the advisory lock is busy, the instance is locked by someone else, or no message is
-- visible (the lock rule is in fetch_orchestration_item.sql).

CREATE OR REPLACE FUNCTION {{schema}}.take_instance(
    p_inst TEXT, p_lock_ms BIGINT, p_cached JSONB, p_load_history BOOLEAN
)
RETURNS TABLE (
    out_instance_id TEXT,
    out_lock_token TEXT,
    out_attempt_count INTEGER,
    out_messages TEXT[],
    out_name TEXT,
    out_version TEXT,
    out_execution_id BIGINT,
    out_status TEXT,
    out_parent TEXT,
    out_history_len BIGINT,
    out_history TEXT[]
)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT;
    v_token TEXT;
    v_msgs TEXT[];
    v_attempt INTEGER;
    v_found BOOLEAN;
    v_cached JSONB;
BEGIN
    IF NOT pg_try_advisory_xact_lock({{schema}}.lock_key(p_inst)) THEN
        RETURN;
    END IF;
    -- The lease starts now, after any time spent before (never an already-expired lease).
    v_now := {{schema}}.now_ms();
    v_token := gen_random_uuid()::TEXT;
    INSERT INTO {{schema}}.instance_locks AS l (instance_id, lock_token, locked_until, locked_at)
    VALUES (p_inst, v_token, v_now + p_lock_ms, v_now)
    ON CONFLICT (instance_id) DO UPDATE
        SET lock_token = EXCLUDED.lock_token,
            locked_until = EXCLUDED.locked_until,
            locked_at = EXCLUDED.locked_at
        WHERE l.locked_until <= v_now;
    IF NOT FOUND THEN  -- locked by someone else
        RETURN;
    END IF;

    WITH tagged AS (
        UPDATE {{schema}}.orchestrator_queue q
        SET lock_token = v_token, attempt_count = q.attempt_count + 1
        WHERE q.instance_id = p_inst AND q.visible_at <= v_now
        RETURNING q.id, q.work_item, q.attempt_count
    )
    SELECT array_agg(t.work_item ORDER BY t.id), max(t.attempt_count)
    INTO v_msgs, v_attempt
    FROM tagged t;
    IF v_msgs IS NULL THEN  -- the batch was acked just before we got the lock: give it back
        DELETE FROM {{schema}}.instance_locks WHERE instance_id = p_inst;
        RETURN;
    END IF;

    out_instance_id := p_inst;
    out_lock_token := v_token;
    out_attempt_count := v_attempt;
    out_messages := v_msgs;
    SELECT i.orchestration_name, i.orchestration_version, i.current_execution_id,
           i.parent_instance_id, e.status, COALESCE(e.event_count, 0)
    INTO out_name, out_version, out_execution_id, out_parent, out_status, out_history_len
    FROM {{schema}}.instances i
    LEFT JOIN {{schema}}.executions e
        ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
    WHERE i.instance_id = p_inst;
    v_found := FOUND;
    IF NOT v_found THEN
        out_execution_id := 1;
        out_history_len := 0;
    END IF;

    v_cached := p_cached -> p_inst;
    IF NOT p_load_history THEN
        out_history := NULL;  -- the caller checks its (large) cache and loads if stale
    ELSIF v_cached IS NOT NULL
       AND (v_cached ->> 0)::BIGINT = out_execution_id
       AND (v_cached ->> 1)::BIGINT = out_history_len THEN
        out_history := NULL;  -- the caller's replay state is current
    ELSIF NOT v_found THEN
        out_history := '{}';
    ELSE
        SELECT COALESCE(array_agg(h.event_data ORDER BY h.event_id), '{}')
        INTO out_history
        FROM {{schema}}.history h
        WHERE h.instance_id = p_inst AND h.execution_id = out_execution_id;
    END IF;
    RETURN NEXT;
END
$fn$;
