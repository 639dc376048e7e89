-- Give a fetched batch back: its messages are unlocked (visible again now, or after
-- p_delay_ms), their attempt is not counted when p_ignore_attempt (a shutdown releasing
-- work), and the instance lock is released. Returns when the messages are visible again.

CREATE OR REPLACE FUNCTION {{schema}}.abandon_orchestration_item(
    p_token TEXT, p_delay_ms BIGINT, p_ignore_attempt BOOLEAN
) RETURNS BIGINT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_inst TEXT;
    v_now BIGINT;
    v_visible BIGINT;
BEGIN
    v_inst := {{schema}}.lock_by_token(p_token, FALSE, 'abandon_orchestration_item');
    v_now := {{schema}}.now_ms();
    IF p_delay_ms IS NOT NULL AND p_delay_ms > 0 THEN
        v_visible := v_now + p_delay_ms;
    END IF;
    UPDATE {{schema}}.orchestrator_queue SET
        lock_token = NULL,
        visible_at = COALESCE(v_visible, visible_at),
        attempt_count = CASE WHEN p_ignore_attempt THEN GREATEST(attempt_count - 1, 0)
                             ELSE attempt_count END
    WHERE lock_token = p_token;
    DELETE FROM {{schema}}.instance_locks WHERE instance_id = v_inst;
    PERFORM pg_notify({{chan_orch}}, COALESCE(v_visible, v_now)::TEXT);
    RETURN COALESCE(v_visible, v_now);
END
$fn$;
