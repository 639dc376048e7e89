-- An activity's ack: deletes its row and enqueues its completion (p_item, NULL for none) in
-- the same transaction; a missing row means the activity was cancelled (DFL01). The worker's
-- own ack marks its token (transaction-local) so the cancellation trigger
-- (announce_work_cancelled.sql) tells deleted-by-someone-else from completed. A session's
-- last activity moves with it.

CREATE OR REPLACE FUNCTION {{schema}}.ack_work_item(
    p_token TEXT, p_instance TEXT, p_item TEXT, p_visible_at BIGINT
) RETURNS BIGINT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
    v_visible BIGINT;
    v_session TEXT;
BEGIN
    PERFORM set_config('duraflow.acking', p_token, TRUE);
    DELETE FROM {{schema}}.worker_queue WHERE lock_token = p_token AND locked_until > v_now
    RETURNING session_id INTO v_session;
    IF NOT FOUND THEN
        PERFORM {{schema}}.raise_worker_lock_lost(p_token);
    END IF;
    IF v_session IS NOT NULL THEN
        UPDATE {{schema}}.sessions SET last_activity_at = v_now WHERE session_id = v_session;
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
