-- Give a fetched activity back: unlocked, visible again now (at its original place in the
-- queue) or after p_delay_ms; its attempt is not counted when p_ignore_attempt (a shutdown
-- releasing work). Returns the delayed visibility, NULL when visible now.

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
