-- The commit of one orchestration turn, in ONE call and transaction (the provider batches
-- several calls into one statement under load, batch.py). It:
--   * validates the lock by token (an expired hold is fine for a continuation, p_completed,
--     as long as the token is unchanged);
--   * appends the history delta, creates the instance and execution when new, sets status,
--     output and custom status, and applies the turn's KV mutations;
--   * pins the execution to the committing runtime's build (p_build) when it is not pinned
--     yet (its first turn, or one of an execution started before builds), and keeps the
--     instance's pinned_build equal to the pin of its running execution (NULL once it
--     ends: a continue-as-new's next execution pins on its own first turn);
--   * inserts the worker items the runtime claimed already locked by it (the runtime passes
--     the lock tokens), so it runs them without a worker fetch;
--   * deletes the worker rows whose results the turn applied (p_completed: activities that
--     ran in this process while it held the instance), so an activity result and the turn
--     it resumes are ONE transaction;
--   * keeps the instance lock (same token, until now + p_hold_ms) when asked and no other
--     message waits for the instance, so the next turn needs no fetch either;
--   * sends at most ONE notification: the payload the provider passes (p_notify, NULL for
--     none), plus this instance's change (p_notify_instance) under its id. Every listening
--     backend pays a transaction for each notification it reads, and a notifying commit
--     serialises on PostgreSQL's notify queue lock, so notifications are the cost that grows
--     with the number of pods: the provider sends them only when another process listens,
--     never for work it keeps (claimed activities, a held instance), and coalesces them under
--     load (providers/postgres/announce.py).
--
-- Notification payload (channel chan_orch): a JSON object with any of
--   "o": due time of new orchestrator work (ms), "w": 1 (unclaimed activities),
--   "i": {instance id: [new status or "", custom status changed 0/1, kv changed 0/1]}
--        for instances created or changed, or "*" (every waiter re-checks).
-- A plain-number payload means "o".

CREATE OR REPLACE FUNCTION {{schema}}.commit_turn(
    p_token TEXT,
    p_execution_id BIGINT,
    p_delta JSONB,          -- [{"event_id", "kind", "data"}]
    p_worker JSONB,         -- [{"instance_id", ..., "session_id", "tag", "claim_token"}]
    p_orchestrator JSONB,   -- [{"instance_id", "item", "visible_at"}]
    p_cancelled JSONB,      -- [{"instance_id", "execution_id", "activity_id"}]
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
RETURNS TABLE (out_instance_id TEXT, out_due BIGINT, out_held BOOLEAN)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_inst TEXT;
    v_now BIGINT;
    v_exists BOOLEAN;
    v_events BIGINT := 0;
    v_bytes BIGINT := 0;
    v_work TEXT;
    v_due BIGINT;
    v_left BIGINT;
    v_held BOOLEAN := FALSE;
    v_payload JSONB := p_notify;
    v_build TEXT;
BEGIN
    -- A continuation (p_completed) may find its hold expired: that is fine as long as the
    -- token is unchanged, because taking an instance over always replaces the token.
    v_inst := {{schema}}.lock_by_token(p_token, cardinality(p_completed) = 0, 'commit_turn');
    v_now := {{schema}}.now_ms();

    -- Results applied by this turn: their rows go, one by one, each marked as acked by its
    -- own worker (duraflow.acking), which is how a completion differs from a cancellation.
    FOREACH v_work IN ARRAY p_completed LOOP
        PERFORM set_config('duraflow.acking', v_work, TRUE);
        DELETE FROM {{schema}}.worker_queue WHERE lock_token = v_work;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'work item not found (cancelled or re-locked)' USING ERRCODE = 'DFL01';
        END IF;
    END LOOP;

    SELECT TRUE INTO v_exists FROM {{schema}}.instances WHERE instance_id = v_inst;
    v_exists := COALESCE(v_exists, FALSE);
    IF NOT v_exists AND p_name IS NOT NULL THEN
        INSERT INTO {{schema}}.instances (instance_id, orchestration_name, orchestration_version,
                                          current_execution_id, parent_instance_id,
                                          created_at, updated_at)
        VALUES (v_inst, p_name, p_version, p_execution_id, p_parent, v_now, v_now);
        v_exists := TRUE;
    END IF;

    IF v_exists THEN
        INSERT INTO {{schema}}.executions (instance_id, execution_id, status, started_at,
                                           build_id)
        VALUES (v_inst, p_execution_id, 'Running', v_now, p_build)
        ON CONFLICT (instance_id, execution_id) DO NOTHING;

        IF jsonb_array_length(p_delta) > 0 THEN
            WITH ins AS (
                INSERT INTO {{schema}}.history (instance_id, execution_id, event_id, event_type,
                                                event_data, created_at)
                SELECT v_inst, p_execution_id, d.event_id, d.kind, d.data, v_now
                FROM jsonb_to_recordset(p_delta) AS d (event_id BIGINT, kind TEXT, data TEXT)
                RETURNING octet_length(event_data) AS b
            )
            SELECT count(*), COALESCE(sum(b), 0) INTO v_events, v_bytes FROM ins;
        END IF;

        UPDATE {{schema}}.executions SET
            event_count = event_count + v_events,
            history_bytes = history_bytes + v_bytes,
            status = COALESCE(p_status, status),
            output = CASE WHEN p_status IS NOT NULL OR p_output IS NOT NULL
                          THEN p_output ELSE output END,
            completed_at = CASE WHEN p_status IN ('Completed', 'Failed', 'ContinuedAsNew')
                                THEN v_now ELSE completed_at END,
            build_id = COALESCE(build_id, p_build)
        WHERE instance_id = v_inst AND execution_id = p_execution_id
        RETURNING build_id INTO v_build;

        UPDATE {{schema}}.instances SET
            current_execution_id = GREATEST(current_execution_id, p_execution_id),
            orchestration_version = CASE
                WHEN p_version IS NOT NULL AND (orchestration_version IS NULL
                                                OR current_execution_id < p_execution_id)
                THEN p_version ELSE orchestration_version END,
            updated_at = v_now,
            custom_status = CASE WHEN p_custom_status_set THEN p_custom_status
                                 ELSE custom_status END,
            custom_status_version = custom_status_version
                                    + CASE WHEN p_custom_status_set THEN 1 ELSE 0 END,
            pinned_build = CASE WHEN p_status IN ('Completed', 'Failed', 'ContinuedAsNew')
                                THEN NULL ELSE v_build END
        WHERE instance_id = v_inst;
        PERFORM {{schema}}.apply_kv_mutations(v_inst, p_kv);
    ELSIF jsonb_array_length(p_delta) > 0 OR p_status IS NOT NULL OR p_output IS NOT NULL
          OR p_custom_status_set OR jsonb_array_length(COALESCE(p_kv, '[]')) > 0 THEN
        RAISE EXCEPTION 'instance ''%'' does not exist and the commit names no '
                        'orchestration_name, so its history and status cannot be stored', v_inst
            USING ERRCODE = 'DFM01';
    END IF;

    IF jsonb_array_length(p_worker) > 0 THEN
        INSERT INTO {{schema}}.worker_queue (instance_id, execution_id, activity_id, work_item,
                                             visible_at, lock_token, locked_until, attempt_count,
                                             session_id, tag, created_at, build_id)
        SELECT w.value ->> 'instance_id', (w.value ->> 'execution_id')::BIGINT,
               (w.value ->> 'activity_id')::BIGINT, w.value ->> 'item',
               CASE WHEN w.value ->> 'claim_token' IS NULL THEN v_now
                    ELSE v_now + p_claim_ms END,
               w.value ->> 'claim_token',
               CASE WHEN w.value ->> 'claim_token' IS NULL THEN NULL
                    ELSE v_now + p_claim_ms END,
               CASE WHEN w.value ->> 'claim_token' IS NULL THEN 0 ELSE 1 END,
               w.value ->> 'session_id', w.value ->> 'tag', v_now, w.value ->> 'build_id'
        FROM jsonb_array_elements(p_worker) WITH ORDINALITY AS w (value, ord)
        ORDER BY w.ord;
    END IF;

    IF jsonb_array_length(p_orchestrator) > 0 THEN
        INSERT INTO {{schema}}.orchestrator_queue (instance_id, work_item, visible_at, created_at)
        SELECT o.value ->> 'instance_id', o.value ->> 'item',
               COALESCE((o.value ->> 'visible_at')::BIGINT, v_now), v_now
        FROM jsonb_array_elements(p_orchestrator) WITH ORDINALITY AS o (value, ord)
        ORDER BY o.ord;
        SELECT min(COALESCE((o.value ->> 'visible_at')::BIGINT, v_now)) INTO v_due
        FROM jsonb_array_elements(p_orchestrator) AS o (value);
    END IF;

    IF jsonb_array_length(p_cancelled) > 0 THEN
        DELETE FROM {{schema}}.worker_queue w
        USING jsonb_to_recordset(p_cancelled)
              AS c (instance_id TEXT, execution_id BIGINT, activity_id BIGINT)
        WHERE w.instance_id = c.instance_id AND w.execution_id = c.execution_id
          AND w.activity_id = c.activity_id;
    END IF;

    DELETE FROM {{schema}}.orchestrator_queue WHERE lock_token = p_token;

    -- Messages that arrived during the turn: visible ones end a hold (they need a turn,
    -- and any dispatcher may run it); future ones are announced by their due time.
    SELECT min(visible_at) INTO v_left FROM {{schema}}.orchestrator_queue
    WHERE instance_id = v_inst;
    IF p_hold_ms IS NOT NULL AND (v_left IS NULL OR v_left > v_now) THEN
        UPDATE {{schema}}.instance_locks SET locked_until = v_now + p_hold_ms
        WHERE instance_id = v_inst;
        v_held := TRUE;
    ELSE
        DELETE FROM {{schema}}.instance_locks WHERE instance_id = v_inst;
    END IF;
    IF v_left IS NOT NULL THEN
        v_due := LEAST(COALESCE(v_due, v_left), v_left);
    END IF;

    IF v_payload IS NOT NULL THEN
        IF p_notify_instance IS NOT NULL
           AND jsonb_typeof(v_payload -> 'i') IS DISTINCT FROM 'string' THEN
            v_payload := v_payload || jsonb_build_object(
                'i', COALESCE(v_payload -> 'i', '{}'::JSONB)
                     || jsonb_build_object(v_inst, p_notify_instance));
        END IF;
        IF v_payload <> '{}'::JSONB THEN
            PERFORM pg_notify({{chan_orch}}, v_payload::TEXT);
        END IF;
    END IF;
    out_instance_id := v_inst;
    out_due := v_due;
    out_held := v_held;
    RETURN NEXT;
END
$fn$;
