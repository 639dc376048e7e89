-- The end of a replay-verified upgrade (claim_upgrade took the lock). With p_moved the
-- execution, its instance's routing pin and its activity rows move from p_from to p_to, in
-- this one transaction that validates the lock, unless an activity of it started meanwhile
-- ('busy': left as it was, claimed again later) or it no longer runs on p_from ('gone').
-- Without p_moved the replay diverged: nothing moves. 'moved' and 'diverged' are recorded as
-- the verdict of the pair (p_from, p_to), so the execution is never verified again for it.
-- The lock is released either way, and whoever now runs the instance is woken for the
-- messages that waited while it was locked. DFL01 (lock lost) when the claim expired.

CREATE OR REPLACE FUNCTION {{schema}}.finish_upgrade(
    p_token TEXT, p_execution_id BIGINT, p_from TEXT, p_to TEXT, p_moved BOOLEAN,
    p_detail TEXT
) RETURNS TEXT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_inst TEXT;
    v_now BIGINT;
    v_outcome TEXT := 'diverged';
    v_due BIGINT;
    v_payload JSONB := '{}'::JSONB;
BEGIN
    v_inst := {{schema}}.lock_by_token(p_token, TRUE, 'finish_upgrade');
    v_now := {{schema}}.now_ms();
    IF p_moved THEN
        IF EXISTS (SELECT 1 FROM {{schema}}.worker_queue w
                   WHERE w.instance_id = v_inst AND w.execution_id = p_execution_id
                     AND w.lock_token IS NOT NULL AND w.locked_until > v_now) THEN
            v_outcome := 'busy';
        ELSE
            UPDATE {{schema}}.executions SET build_id = p_to
            WHERE instance_id = v_inst AND execution_id = p_execution_id
              AND build_id = p_from AND status = 'Running';
            IF NOT FOUND THEN
                v_outcome := 'gone';
            ELSE
                v_outcome := 'moved';
                UPDATE {{schema}}.instances SET pinned_build = p_to
                WHERE instance_id = v_inst AND current_execution_id = p_execution_id;
                UPDATE {{schema}}.worker_queue SET build_id = p_to
                WHERE instance_id = v_inst AND execution_id = p_execution_id
                  AND build_id = p_from;
                IF FOUND THEN
                    v_payload := jsonb_build_object('w', 1);
                END IF;
            END IF;
        END IF;
    END IF;
    IF v_outcome IN ('moved', 'diverged') THEN
        INSERT INTO {{schema}}.build_verdicts (instance_id, execution_id, from_build, to_build,
                                               verdict, detail, decided_at)
        VALUES (v_inst, p_execution_id, p_from, p_to, v_outcome, p_detail, v_now)
        ON CONFLICT DO NOTHING;
    END IF;
    DELETE FROM {{schema}}.instance_locks WHERE instance_id = v_inst AND lock_token = p_token;
    SELECT min(visible_at) INTO v_due FROM {{schema}}.orchestrator_queue
    WHERE instance_id = v_inst;
    IF v_due IS NOT NULL THEN
        v_payload := v_payload || jsonb_build_object('o', v_due);
    END IF;
    IF v_payload <> '{}'::JSONB THEN
        PERFORM pg_notify({{chan_orch}}, v_payload::TEXT);
    END IF;
    RETURN v_outcome;
END
$fn$;
