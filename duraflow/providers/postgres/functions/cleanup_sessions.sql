-- Sessions whose lease lapsed and that have no work left are forgotten.

CREATE OR REPLACE FUNCTION {{schema}}.cleanup_sessions() RETURNS BIGINT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
    v_count BIGINT;
BEGIN
    DELETE FROM {{schema}}.sessions s
    WHERE s.locked_until <= v_now
      AND NOT EXISTS (SELECT 1 FROM {{schema}}.worker_queue w WHERE w.session_id = s.session_id);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$fn$;
