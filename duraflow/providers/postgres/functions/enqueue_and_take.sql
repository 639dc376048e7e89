-- A client whose own process runs an orchestration dispatcher with a free slot enqueues its
-- message (start, event, cancel) and locks the instance for that dispatcher in the same
-- transaction, so the first turn needs no fetch round trip and no wake-up. Nothing is taken
-- when the instance is locked elsewhere, is pinned to an engine version the dispatcher does
-- not replay, belongs to another build than the dispatcher's (p_build: the rule of
-- fetch_orchestration_item, so a build that is not current never takes a new instance), or
-- the advisory lock is busy: the message is then simply queued, exactly as
-- enqueue_orchestrator does.

CREATE OR REPLACE FUNCTION {{schema}}.enqueue_and_take(
    p_instance TEXT, p_item TEXT, p_lock_ms BIGINT,
    p_min_version BIGINT DEFAULT NULL, p_max_version BIGINT DEFAULT NULL,
    p_build TEXT DEFAULT NULL
)
RETURNS TABLE (
    out_instance_id TEXT,
    out_lock_token TEXT,
    out_attempt_count INTEGER,
    out_messages TEXT[],
    out_name TEXT,
    out_version TEXT,
    out_execution_id BIGINT,
    out_status TEXT,
    out_parent TEXT,
    out_history_len BIGINT,
    out_history TEXT[]
)
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM {{schema}}.enqueue_orchestrator(p_instance, p_item, NULL, NULL);
    IF p_max_version IS NOT NULL AND EXISTS (
        SELECT 1 FROM {{schema}}.instances pv
        WHERE pv.instance_id = p_instance
          AND pv.pinned_version NOT BETWEEN p_min_version AND p_max_version) THEN
        RETURN;
    END IF;
    IF p_build IS NOT NULL THEN  -- nested: a call without a build evaluates nothing more
        IF COALESCE(
            (SELECT pb.pinned_build FROM {{schema}}.instances pb
             WHERE pb.instance_id = p_instance),
            (SELECT b.build_id FROM {{schema}}.builds b
             WHERE b.build_id = p_build AND b.state = 'current')) IS DISTINCT FROM p_build THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT * FROM {{schema}}.take_instance(p_instance, p_lock_ms, NULL, FALSE);
END
$fn$;
