-- The status a finishing turn leaves, read in the turn's own statement.
--
-- A client that waits for an instance in the process whose runtime finishes it would read the
-- status right after the commit: one more round trip on the path from start to completed. The
-- provider calls this function laterally after commit_turn in the same statement instead. A
-- VOLATILE function's queries take a fresh snapshot, so they see what the commit_turn call
-- before it wrote. Only Completed and Failed are read (a client waits for those); anything
-- else returns no row.

CREATE OR REPLACE FUNCTION {{schema}}.status_after_commit(p_inst TEXT, p_status TEXT)
RETURNS TABLE (
    st_name TEXT,
    st_version TEXT,
    st_execution_id BIGINT,
    st_status TEXT,
    st_output TEXT,
    st_custom_status TEXT,
    st_custom_status_version BIGINT,
    st_parent TEXT
)
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    IF p_status IS NULL OR p_status NOT IN ('Completed', 'Failed') THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT i.orchestration_name, i.orchestration_version, i.current_execution_id,
               COALESCE(e.status, 'Running'), e.output, i.custom_status,
               i.custom_status_version, i.parent_instance_id
        FROM {{schema}}.instances i
        LEFT JOIN {{schema}}.executions e
            ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
        WHERE i.instance_id = p_inst;
END
$fn$;
