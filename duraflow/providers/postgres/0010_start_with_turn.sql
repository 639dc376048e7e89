-- Duraflow PostgreSQL schema, migration 10: a start and its first turn in one transaction.
--
-- enqueue_and_take (migration 8) already spares a start the fetch: the client's process
-- locks the new instance as it enqueues. The first turn still cost a second round trip,
-- although it depends on nothing the database holds when the instance is new: the runtime
-- can run it before anything is written. start_with_turn receives that turn, with the lock
-- token the runtime chose, and stores it instead of the start message: the instance, its
-- first history events, its claimed activities and its lock are created by ONE statement.
--
-- It only does so when the turn is exactly what a dispatcher would run: the instance does
-- not exist and no other message waits for it (an event raised before the start, an
-- earlier start), and nobody holds its lock. Otherwise it behaves exactly like
-- enqueue_and_take (queue the start; lock the instance when it is free) and says the turn
-- was not stored (out_committed = FALSE), so the runtime runs the usual turn instead.
CREATE OR REPLACE FUNCTION {{schema}}.start_with_turn(
    p_instance TEXT,
    p_item TEXT,
    p_lock_ms BIGINT,
    p_min_version BIGINT,
    p_max_version BIGINT,
    p_token TEXT,
    -- commit_turn's arguments after its token, in its order
    p_execution_id BIGINT,
    p_delta JSONB,
    p_worker JSONB,
    p_orchestrator JSONB,
    p_cancelled JSONB,
    p_name TEXT,
    p_version TEXT,
    p_parent TEXT,
    p_status TEXT,
    p_output TEXT,
    p_custom_status_set BOOLEAN,
    p_custom_status TEXT,
    p_kv JSONB,
    p_claim_ms BIGINT,
    p_hold_ms BIGINT,
    p_completed TEXT[],
    p_notify JSONB,
    p_notify_instance JSONB
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
    out_history TEXT[],
    out_committed BOOLEAN,
    out_due BIGINT,
    out_held BOOLEAN
)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT;
BEGIN
    -- The same advisory lock as take_instance (re-entrant within this transaction), so a
    -- concurrent take or start of the same instance waits for nothing and loses cleanly.
    IF pg_try_advisory_xact_lock({{schema}}.lock_key(p_instance))
       AND NOT EXISTS (SELECT 1 FROM {{schema}}.instances WHERE instance_id = p_instance)
       AND NOT EXISTS (SELECT 1 FROM {{schema}}.orchestrator_queue
                       WHERE instance_id = p_instance) THEN
        v_now := {{schema}}.now_ms();
        INSERT INTO {{schema}}.instance_locks AS l (instance_id, lock_token, locked_until,
                                                    locked_at)
        VALUES (p_instance, p_token, v_now + p_lock_ms, v_now)
        ON CONFLICT (instance_id) DO UPDATE
            SET lock_token = EXCLUDED.lock_token,
                locked_until = EXCLUDED.locked_until,
                locked_at = EXCLUDED.locked_at
            WHERE l.locked_until <= v_now;
        IF FOUND THEN
            SELECT c.out_due, c.out_held INTO out_due, out_held
            FROM {{schema}}.commit_turn(
                p_token, p_execution_id, p_delta, p_worker, p_orchestrator, p_cancelled,
                p_name, p_version, p_parent, p_status, p_output, p_custom_status_set,
                p_custom_status, p_kv, p_claim_ms, p_hold_ms, p_completed, p_notify,
                p_notify_instance) c;
            out_instance_id := p_instance;
            out_lock_token := p_token;
            out_committed := TRUE;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY
        SELECT t.*, FALSE, NULL::BIGINT, NULL::BOOLEAN
        FROM {{schema}}.enqueue_and_take(p_instance, p_item, p_lock_ms, p_min_version,
                                         p_max_version) t;
END
$fn$;
