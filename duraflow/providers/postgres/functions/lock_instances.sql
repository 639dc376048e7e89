-- Take the advisory locks of many instances in key order (admin deletes): blocking, but
-- ordered, so two deletes can never wait on each other in a cycle.

CREATE OR REPLACE FUNCTION {{schema}}.lock_instances(p_instances TEXT[]) RETURNS VOID
LANGUAGE plpgsql AS $fn$
DECLARE
    v_key BIGINT;
BEGIN
    FOR v_key IN
        SELECT DISTINCT {{schema}}.lock_key(x) AS k FROM unnest(p_instances) AS x ORDER BY k
    LOOP
        PERFORM pg_advisory_xact_lock(v_key);
    END LOOP;
END
$fn$;
