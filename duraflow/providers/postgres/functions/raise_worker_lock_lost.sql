-- Why a token no longer works, as the exception ack/renew raise (DFL01 = lock lost).

CREATE OR REPLACE FUNCTION {{schema}}.raise_worker_lock_lost(p_token TEXT) RETURNS VOID
LANGUAGE plpgsql AS $fn$
BEGIN
    IF EXISTS (SELECT 1 FROM {{schema}}.worker_queue WHERE lock_token = p_token) THEN
        RAISE EXCEPTION 'work item lock expired' USING ERRCODE = 'DFL01';
    END IF;
    RAISE EXCEPTION 'work item not found (cancelled, acked or re-locked)'
        USING ERRCODE = 'DFL01';
END
$fn$;
