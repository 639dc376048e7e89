-- A start and its first turn in one transaction.
--
-- enqueue_and_take already spares a start the fetch: the client's process locks the new
-- instance as it enqueues. The first turn would still cost a second round trip, although it
-- depends on nothing the database holds when the instance is new: the runtime can run it
-- before anything is written. start_with_turn receives that turn, with the lock token the
-- runtime chose, and stores it instead of the start message: the instance, its first history
-- events, its claimed activities and its lock are created by ONE statement.
--
-- It only does so when the turn is exactly what a dispatcher would run: the instance does
-- not exist and no other message waits for it (an event raised before the start, an
-- earlier start), nobody holds its lock, and the caller's build (p_build, if any) is the
-- current one: a build that is not current takes no new instance, so it must not pin one.
-- Otherwise it behaves exactly like enqueue_and_take (queue the start; lock the instance
-- when it is free and the build rule allows) and says the turn was not stored
-- (out_committed = FALSE), so the runtime runs the usual turn instead.
--
-- commit_turn is written for any turn of any instance: it looks the lock up again by token,
-- inserts the execution and then updates it, updates the instance it has just inserted,
-- deletes a queue message that a stored start never had, and adjusts the lock it has just
-- created. For a new instance every one of those is known before the first statement, so
-- this function writes each row once, in its final state: the lock (already held for the
-- hold), the instance, the history, the execution with its counts, the claimed activities.
-- Measured on the W3 path (interleaved A/B, synchronous_commit off to leave the WAL flush
-- out): about 0.15 ms less server time per start (0.67 -> 0.53 ms including the round trip).
-- A first turn that does something only commit_turn knows how to store (results it applied,
-- activities it cancelled, no orchestration name) still goes through commit_turn.

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
    p_notify_instance JSONB,
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
    out_history TEXT[],
    out_committed BOOLEAN,
    out_due BIGINT,
    out_held BOOLEAN
)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT;
    v_events BIGINT := 0;
    v_bytes BIGINT := 0;
    v_left BIGINT;
    v_payload JSONB := p_notify;
    -- What only commit_turn knows how to store: results the turn applied, activities it
    -- cancelled, a turn that names no orchestration.
    v_general BOOLEAN := p_name IS NULL OR cardinality(p_completed) > 0
                         OR jsonb_array_length(p_cancelled) > 0;
    -- Whether the caller may start new instances: always without a build, else only while
    -- its build is current (looked up only then, so a call without a build costs nothing).
    v_may_start BOOLEAN := p_build IS NULL;
BEGIN
    IF NOT v_may_start THEN
        v_may_start := EXISTS (SELECT 1 FROM {{schema}}.builds
                               WHERE build_id = p_build AND state = 'current');
    END IF;
    -- The same advisory lock as take_instance (re-entrant within this transaction), so a
    -- concurrent take or start of the same instance waits for nothing and loses cleanly.
    IF v_may_start AND pg_try_advisory_xact_lock({{schema}}.lock_key(p_instance))
       AND NOT EXISTS (SELECT 1 FROM {{schema}}.instances WHERE instance_id = p_instance)
       AND NOT EXISTS (SELECT 1 FROM {{schema}}.orchestrator_queue
                       WHERE instance_id = p_instance) THEN
        v_now := {{schema}}.now_ms();
        -- The lean path locks for the hold straight away and releases the lock below if
        -- the turn may not keep it; commit_turn adjusts the lock itself.
        INSERT INTO {{schema}}.instance_locks AS l (instance_id, lock_token, locked_until,
                                                    locked_at)
        VALUES (p_instance, p_token,
                v_now + CASE WHEN v_general THEN p_lock_ms
                             ELSE COALESCE(p_hold_ms, p_lock_ms) END,
                v_now)
        ON CONFLICT (instance_id) DO UPDATE
            SET lock_token = EXCLUDED.lock_token,
                locked_until = EXCLUDED.locked_until,
                locked_at = EXCLUDED.locked_at
            WHERE l.locked_until <= v_now;
        IF FOUND THEN
            IF v_general THEN
                SELECT c.out_due, c.out_held INTO out_due, out_held
                FROM {{schema}}.commit_turn(
                    p_token, p_execution_id, p_delta, p_worker, p_orchestrator, p_cancelled,
                    p_name, p_version, p_parent, p_status, p_output, p_custom_status_set,
                    p_custom_status, p_kv, p_claim_ms, p_hold_ms, p_completed, p_notify,
                    p_notify_instance, p_build) c;
            ELSE
                INSERT INTO {{schema}}.instances (instance_id, orchestration_name,
                                                  orchestration_version, current_execution_id,
                                                  parent_instance_id, created_at, updated_at,
                                                  custom_status, custom_status_version,
                                                  pinned_build)
                VALUES (p_instance, p_name, p_version, p_execution_id, p_parent, v_now, v_now,
                        CASE WHEN p_custom_status_set THEN p_custom_status END,
                        CASE WHEN p_custom_status_set THEN 1 ELSE 0 END,
                        CASE WHEN COALESCE(p_status, 'Running') = 'Running' THEN p_build END);
                -- After the instance: the history trigger pins its engine version.
                WITH ins AS (
                    INSERT INTO {{schema}}.history (instance_id, execution_id, event_id,
                                                    event_type, event_data, created_at)
                    SELECT p_instance, p_execution_id, d.event_id, d.kind, d.data, v_now
                    FROM jsonb_to_recordset(p_delta) AS d (event_id BIGINT, kind TEXT, data TEXT)
                    RETURNING octet_length(event_data) AS b
                )
                SELECT count(*), COALESCE(sum(b), 0) INTO v_events, v_bytes FROM ins;
                INSERT INTO {{schema}}.executions (instance_id, execution_id, status, output,
                                                   started_at, completed_at, event_count,
                                                   history_bytes, build_id)
                VALUES (p_instance, p_execution_id, COALESCE(p_status, 'Running'), p_output,
                        v_now, CASE WHEN p_status IN ('Completed', 'Failed', 'ContinuedAsNew')
                                    THEN v_now END,
                        v_events, v_bytes, p_build);
                IF jsonb_array_length(COALESCE(p_kv, '[]')) > 0 THEN
                    PERFORM {{schema}}.apply_kv_mutations(p_instance, p_kv);
                END IF;
                IF jsonb_array_length(p_worker) > 0 THEN
                    PERFORM {{schema}}.insert_worker_items(p_worker, v_now, p_claim_ms);
                END IF;
                IF jsonb_array_length(p_orchestrator) > 0 THEN
                    out_due := {{schema}}.insert_orchestrator_items(p_orchestrator, v_now);
                END IF;
                -- A message committed since the check above (READ COMMITTED: this statement
                -- sees it) or one this turn sent itself, visible now, needs a turn that any
                -- dispatcher may run: no hold then, as in commit_turn.
                SELECT min(visible_at) INTO v_left FROM {{schema}}.orchestrator_queue
                WHERE instance_id = p_instance;
                out_held := p_hold_ms IS NOT NULL AND (v_left IS NULL OR v_left > v_now);
                IF NOT out_held THEN
                    DELETE FROM {{schema}}.instance_locks WHERE instance_id = p_instance;
                END IF;
                IF v_left IS NOT NULL THEN
                    out_due := LEAST(COALESCE(out_due, v_left), v_left);
                END IF;
                IF v_payload IS NOT NULL THEN
                    IF p_notify_instance IS NOT NULL
                       AND jsonb_typeof(v_payload -> 'i') IS DISTINCT FROM 'string' THEN
                        v_payload := v_payload || jsonb_build_object(
                            'i', COALESCE(v_payload -> 'i', '{}'::JSONB)
                                 || jsonb_build_object(p_instance, p_notify_instance));
                    END IF;
                    IF v_payload <> '{}'::JSONB THEN
                        PERFORM pg_notify({{chan_orch}}, v_payload::TEXT);
                    END IF;
                END IF;
            END IF;
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
                                         p_max_version, p_build) t;
END
$fn$;
