-- Extend a running activity's lock (visible_at moves with it). A long activity keeps its
-- session from going idle.

CREATE OR REPLACE FUNCTION {{schema}}.renew_work_item_lock(p_token TEXT, p_extend_ms BIGINT)
RETURNS VOID
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
    v_session TEXT;
BEGIN
    UPDATE {{schema}}.worker_queue
    SET locked_until = v_now + p_extend_ms, visible_at = v_now + p_extend_ms
    WHERE lock_token = p_token AND locked_until > v_now
    RETURNING session_id INTO v_session;
    IF NOT FOUND THEN
        PERFORM {{schema}}.raise_worker_lock_lost(p_token);
    END IF;
    IF v_session IS NOT NULL THEN  -- a long activity keeps its session from going idle
        UPDATE {{schema}}.sessions SET last_activity_at = v_now WHERE session_id = v_session;
    END IF;
END
$fn$;
