-- Queue one orchestrator message (visible at p_visible_at, else now). The provider chooses
-- the notification (p_notify: the payload, NULL for none): a client whose own process runs
-- an idle orchestration dispatcher wakes it in-process and tells nobody else.

CREATE OR REPLACE FUNCTION {{schema}}.enqueue_orchestrator(
    p_instance TEXT, p_item TEXT, p_visible_at BIGINT, p_notify TEXT
) RETURNS BIGINT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
    v_visible BIGINT := COALESCE(p_visible_at, v_now);
BEGIN
    INSERT INTO {{schema}}.orchestrator_queue (instance_id, work_item, visible_at, created_at)
    VALUES (p_instance, p_item, v_visible, v_now);
    IF p_notify IS NOT NULL THEN
        PERFORM pg_notify({{chan_orch}}, p_notify);
    END IF;
    RETURN v_visible;
END
$fn$;
