-- Look up a lock by token and take its instance's advisory lock; raises DFL01 when the token
-- is unknown (or, with p_require_live, expired).

CREATE OR REPLACE FUNCTION {{schema}}.lock_by_token(
    p_token TEXT, p_require_live BOOLEAN, p_operation TEXT
) RETURNS TEXT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_inst TEXT;
    v_until BIGINT;
BEGIN
    SELECT instance_id INTO v_inst FROM {{schema}}.instance_locks WHERE lock_token = p_token;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Invalid lock token (lock lost, taken over or instance deleted)'
            USING ERRCODE = 'DFL01';
    END IF;
    PERFORM pg_advisory_xact_lock({{schema}}.lock_key(v_inst));
    -- re-read under the advisory lock: a fetch may have taken the expired lock meanwhile
    SELECT locked_until INTO v_until FROM {{schema}}.instance_locks
    WHERE instance_id = v_inst AND lock_token = p_token;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Invalid lock token (lock taken over or instance deleted)'
            USING ERRCODE = 'DFL01';
    END IF;
    IF p_require_live AND v_until <= {{schema}}.now_ms() THEN
        RAISE EXCEPTION 'Instance lock expired' USING ERRCODE = 'DFL01';
    END IF;
    RETURN v_inst;
END
$fn$;
