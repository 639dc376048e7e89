-- A replay-verified upgrade's claim (docs/rollouts.md): lock, like a turn does (the instance's
-- lock row, under its advisory lock), one running execution pinned to a draining or retired
-- build, of an orchestration version the caller registers (p_names[i], p_versions[i]), that
-- has no verdict for a move to p_to yet, is not locked, and has no activity running; only
-- while p_to is the current build. Returns it with its history, for the caller to replay in
-- memory; finish_upgrade moves it (or records that it diverged) and releases the lock.
-- Off the hot path: the caller runs it from an idle slot, at a bounded rate.

CREATE OR REPLACE FUNCTION {{schema}}.claim_upgrade(
    p_to TEXT, p_names TEXT[], p_versions TEXT[], p_lock_ms BIGINT
)
RETURNS TABLE (
    out_instance_id TEXT,
    out_execution_id BIGINT,
    out_from_build TEXT,
    out_lock_token TEXT,
    out_name TEXT,
    out_version TEXT,
    out_history TEXT[]
)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT;
    v_skip TEXT[] := '{}';
    v_inst TEXT;
    v_exec BIGINT;
    v_from TEXT;
    v_name TEXT;
    v_version TEXT;
    v_token TEXT;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM {{schema}}.builds
                   WHERE build_id = p_to AND state = 'current') THEN
        RETURN;
    END IF;
    FOR i IN 1..10 LOOP
        v_now := {{schema}}.now_ms();
        SELECT e.instance_id, e.execution_id, e.build_id, n.orchestration_name,
               n.orchestration_version
        INTO v_inst, v_exec, v_from, v_name, v_version
        FROM {{schema}}.executions e
        JOIN {{schema}}.builds b
            ON b.build_id = e.build_id AND b.state IN ('draining', 'retired')
        JOIN {{schema}}.instances n
            ON n.instance_id = e.instance_id AND n.current_execution_id = e.execution_id
        JOIN unnest(p_names, p_versions) AS r (name, version)
            ON r.name = n.orchestration_name AND r.version = n.orchestration_version
        WHERE e.build_id IS NOT NULL AND e.status = 'Running'
          AND e.instance_id <> ALL (v_skip)
          AND NOT EXISTS (
              SELECT 1 FROM {{schema}}.build_verdicts v
              WHERE v.instance_id = e.instance_id AND v.execution_id = e.execution_id
                AND v.from_build = e.build_id AND v.to_build = p_to)
          AND NOT EXISTS (
              SELECT 1 FROM {{schema}}.instance_locks l
              WHERE l.instance_id = e.instance_id AND l.locked_until > v_now)
          AND NOT EXISTS (
              SELECT 1 FROM {{schema}}.worker_queue w
              WHERE w.instance_id = e.instance_id AND w.execution_id = e.execution_id
                AND w.lock_token IS NOT NULL AND w.locked_until > v_now)
        LIMIT 1;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        IF pg_try_advisory_xact_lock({{schema}}.lock_key(v_inst)) THEN
            v_token := gen_random_uuid()::TEXT;
            INSERT INTO {{schema}}.instance_locks AS l (instance_id, lock_token, locked_until,
                                                        locked_at)
            VALUES (v_inst, v_token, v_now + p_lock_ms, v_now)
            ON CONFLICT (instance_id) DO UPDATE
                SET lock_token = EXCLUDED.lock_token,
                    locked_until = EXCLUDED.locked_until,
                    locked_at = EXCLUDED.locked_at
                WHERE l.locked_until <= v_now;
            IF FOUND THEN
                out_instance_id := v_inst;
                out_execution_id := v_exec;
                out_from_build := v_from;
                out_lock_token := v_token;
                out_name := v_name;
                out_version := v_version;
                SELECT COALESCE(array_agg(h.event_data ORDER BY h.event_id), '{}')
                INTO out_history
                FROM {{schema}}.history h
                WHERE h.instance_id = v_inst AND h.execution_id = v_exec;
                RETURN NEXT;
                RETURN;
            END IF;
        END IF;
        v_skip := v_skip || v_inst;
    END LOOP;
    RETURN;
END
$fn$;
