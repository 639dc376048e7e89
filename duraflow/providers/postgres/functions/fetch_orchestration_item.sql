-- The orchestration dispatcher's fetch: the instance with the oldest visible message that is
-- neither locked nor pinned outside the caller's replay range (p_min_version..p_max_version,
-- NULL = any), locked with all its visible messages by take_instance. The provider calls it
-- once per free slot in one statement (orchestrator_queue.py).
--
-- Builds. A caller with a build (p_build) takes only instances whose running execution is
-- pinned to that build, and unpinned ones (new instances, the next execution after a
-- continue-as-new) only while its build is current: an unpinned instance's build is taken
-- to be the current one. Without a build (NULL, today's callers) nothing is filtered.
--
-- Concurrency rule (why nothing here can deadlock or double-lock): every transaction that
-- changes an instance's lock row or its existing queue rows first takes the instance's
-- transaction-level advisory lock (lock_key). Fetch only ever TRIES it
-- (pg_try_advisory_xact_lock) and moves on to the next candidate when it is taken, and it
-- takes no row lock before it owns the instance: the candidate query is a plain read.
-- (A FOR UPDATE SKIP LOCKED candidate would keep its row lock after a lost try-lock, and the
-- owner tagging its batch would then have to wait for, or skip, that message.) So a fetcher
-- waits for nobody, tags ALL visible messages of its instance, and commit/abandon/delete wait
-- at most for the short fetch that owns the same instance, never in a cycle. The worker
-- queue, whose rows are locked one by one, uses FOR UPDATE SKIP LOCKED (fetch_work_item.sql).

CREATE OR REPLACE FUNCTION {{schema}}.fetch_orchestration_item(
    p_lock_ms BIGINT, p_cached JSONB, p_load_history BOOLEAN,
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
DECLARE
    v_now BIGINT;
    v_inst TEXT;
    v_skip TEXT[] := '{}';
    v_current TEXT;  -- p_build when it is the current build, else NULL
BEGIN
    IF p_build IS NOT NULL THEN
        SELECT b.build_id INTO v_current FROM {{schema}}.builds b
        WHERE b.build_id = p_build AND b.state = 'current';
    END IF;
    -- Losing a race is not "no work": retry with the next candidate (bounded).
    FOR i IN 1..50 LOOP
        v_now := {{schema}}.now_ms();
        -- One statement per case, not one with "p_build IS NULL OR ...": without a build
        -- the fetch runs exactly the statement of before builds, and no statement's plan
        -- depends on which case it is (a generic plan serves every call; one that did
        -- would be planned again on every call, a third of a fetch's time).
        IF p_build IS NULL THEN
            SELECT q.instance_id INTO v_inst
            FROM {{schema}}.orchestrator_queue q
            WHERE q.visible_at <= v_now
              AND q.instance_id <> ALL (v_skip)
              AND NOT EXISTS (
                  SELECT 1 FROM {{schema}}.instance_locks l
                  WHERE l.instance_id = q.instance_id AND l.locked_until > v_now)
              AND (p_max_version IS NULL OR NOT EXISTS (
                  SELECT 1 FROM {{schema}}.instances pv
                  WHERE pv.instance_id = q.instance_id
                    AND pv.pinned_version NOT BETWEEN p_min_version AND p_max_version))
            ORDER BY q.visible_at, q.id
            LIMIT 1;
        ELSIF v_current IS NOT NULL THEN  -- the current build: all but other builds' pins
            SELECT q.instance_id INTO v_inst
            FROM {{schema}}.orchestrator_queue q
            WHERE q.visible_at <= v_now
              AND q.instance_id <> ALL (v_skip)
              AND NOT EXISTS (
                  SELECT 1 FROM {{schema}}.instance_locks l
                  WHERE l.instance_id = q.instance_id AND l.locked_until > v_now)
              AND NOT EXISTS (
                  SELECT 1 FROM {{schema}}.instances pv
                  WHERE pv.instance_id = q.instance_id
                    AND (pv.pinned_build <> p_build
                         OR pv.pinned_version NOT BETWEEN p_min_version AND p_max_version))
            ORDER BY q.visible_at, q.id
            LIMIT 1;
        ELSE  -- any other build: only its own pins
            SELECT q.instance_id INTO v_inst
            FROM {{schema}}.orchestrator_queue q
            JOIN {{schema}}.instances pv ON pv.instance_id = q.instance_id
            WHERE q.visible_at <= v_now
              AND q.instance_id <> ALL (v_skip)
              AND NOT EXISTS (
                  SELECT 1 FROM {{schema}}.instance_locks l
                  WHERE l.instance_id = q.instance_id AND l.locked_until > v_now)
              AND pv.pinned_build = p_build
              AND (pv.pinned_version NOT BETWEEN p_min_version AND p_max_version) IS NOT TRUE
            ORDER BY q.visible_at, q.id
            LIMIT 1;
        END IF;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        RETURN QUERY
            SELECT * FROM {{schema}}.take_instance(v_inst, p_lock_ms, p_cached, p_load_history);
        IF FOUND THEN
            RETURN;
        END IF;
        v_skip := v_skip || v_inst;
    END LOOP;
    RETURN;
END
$fn$;
