-- Renew the leases of the caller's live sessions that were active within p_idle_ms and
-- release the idle ones; returns the sessions the caller still holds.

CREATE OR REPLACE FUNCTION {{schema}}.renew_sessions(
    p_owners TEXT[], p_extend_ms BIGINT, p_idle_ms BIGINT
) RETURNS SETOF TEXT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
BEGIN
    DELETE FROM {{schema}}.sessions
    WHERE worker_id = ANY (p_owners) AND locked_until > v_now
      AND last_activity_at <= v_now - p_idle_ms;
    IF FOUND THEN  -- work of a released session is anyone's now
        PERFORM pg_notify({{chan_work}}, '');
    END IF;
    RETURN QUERY
    UPDATE {{schema}}.sessions SET locked_until = v_now + p_extend_ms
    WHERE worker_id = ANY (p_owners) AND locked_until > v_now
    RETURNING session_id;
END
$fn$;
