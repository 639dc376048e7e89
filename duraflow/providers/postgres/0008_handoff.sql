-- Duraflow PostgreSQL schema, migration 8: start hand-off and a cheaper version pin.
--
-- * take_instance: the "lock one instance and collect its visible messages" half of the
--   orchestration fetch, for an instance the caller names. fetch_orchestration_item now
--   picks candidates and calls it; enqueue_and_take uses it directly.
-- * enqueue_and_take: a client whose own process runs an orchestration dispatcher with a
--   free slot enqueues its message (start, event, cancel) and locks the instance for that
--   dispatcher in the same transaction, so the first turn needs no fetch round trip and no
--   wake-up. Nothing is taken when the instance is locked elsewhere, is pinned to an engine
--   version the dispatcher does not replay, or the advisory lock is busy: the message is
--   then simply queued, exactly as enqueue_orchestrator does.
-- * pin_execution_version no longer calls the SQL function pack_version per row: a SQL
--   function that is not inlined is planned again on every call, which made the pin the
--   most expensive statement of a first turn.

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

-- 0006's fetch, its take half now in take_instance (same columns, same behaviour).
CREATE OR REPLACE FUNCTION {{schema}}.fetch_orchestration_item(
    p_lock_ms BIGINT, p_cached JSONB, p_load_history BOOLEAN,
    p_min_version BIGINT DEFAULT NULL, p_max_version BIGINT DEFAULT NULL
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
    v_inst TEXT;
    v_skip TEXT[] := '{}';
BEGIN
    -- Losing a race is not "no work": retry with the next candidate (bounded).
    FOR i IN 1..50 LOOP
        v_now := {{schema}}.now_ms();
        SELECT q.instance_id INTO v_inst
        FROM {{schema}}.orchestrator_queue q
        WHERE q.visible_at <= v_now
          AND q.instance_id <> ALL (v_skip)
          AND NOT EXISTS (
              SELECT 1 FROM {{schema}}.instance_locks l
              WHERE l.instance_id = q.instance_id AND l.locked_until > v_now)
          AND (p_max_version IS NULL OR NOT EXISTS (
              SELECT 1 FROM {{schema}}.instances pv
              WHERE pv.instance_id = q.instance_id
                AND pv.pinned_version NOT BETWEEN p_min_version AND p_max_version))
        ORDER BY q.visible_at, q.id
        LIMIT 1;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        RETURN QUERY
            SELECT * FROM {{schema}}.take_instance(v_inst, p_lock_ms, p_cached, p_load_history);
        IF FOUND THEN
            RETURN;
        END IF;
        v_skip := v_skip || v_inst;
    END LOOP;
    RETURN;
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.enqueue_and_take(
    p_instance TEXT, p_item TEXT, p_lock_ms BIGINT,
    p_min_version BIGINT DEFAULT NULL, p_max_version BIGINT DEFAULT NULL
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
BEGIN
    PERFORM {{schema}}.enqueue_orchestrator(p_instance, p_item, NULL, NULL);
    IF p_max_version IS NOT NULL AND EXISTS (
        SELECT 1 FROM {{schema}}.instances pv
        WHERE pv.instance_id = p_instance
          AND pv.pinned_version NOT BETWEEN p_min_version AND p_max_version) THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM {{schema}}.take_instance(p_instance, p_lock_ms, NULL, FALSE);
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.pin_execution_version() RETURNS TRIGGER
LANGUAGE plpgsql AS $fn$
DECLARE
    v_parts TEXT[] := regexp_match(NEW.event_data::jsonb ->> 'engine_version',
                                   '^(\d{1,6})\.(\d{1,3})\.(\d{1,3})');
BEGIN
    UPDATE {{schema}}.instances
    SET pinned_version = CASE WHEN v_parts IS NULL THEN NULL
                              ELSE v_parts[1]::BIGINT * 1000000 + v_parts[2]::BIGINT * 1000
                                   + v_parts[3]::BIGINT END
    WHERE instance_id = NEW.instance_id AND current_execution_id <= NEW.execution_id;
    RETURN NULL;
END
$fn$;
