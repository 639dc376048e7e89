-- Superseded by commit_turn (version 7), which no longer needs a second function for the
-- KV store, claims activities and holds the lock. Nothing calls it.

CREATE OR REPLACE FUNCTION {{schema}}.ack_orchestration_item(
    p_token TEXT,
    p_execution_id BIGINT,
    p_delta JSONB,          -- [{"event_id", "kind", "data"}]
    p_worker JSONB,         -- [{"instance_id", "execution_id", "activity_id", "item", "session_id", "tag"}]
    p_orchestrator JSONB,   -- [{"instance_id", "item", "visible_at"}]
    p_cancelled JSONB,      -- [{"instance_id", "execution_id", "activity_id"}]
    p_name TEXT,
    p_version TEXT,
    p_parent TEXT,
    p_status TEXT,
    p_output TEXT,
    p_custom_status_set BOOLEAN,
    p_custom_status TEXT
)
RETURNS TABLE (out_instance_id TEXT, out_due BIGINT, out_notify_instance BOOLEAN)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_inst TEXT;
    v_now BIGINT;
    v_exists BOOLEAN;
    v_created BOOLEAN := FALSE;
    v_events BIGINT := 0;
    v_bytes BIGINT := 0;
    v_workers BIGINT := 0;
    v_due BIGINT;
    v_left BIGINT;
BEGIN
    v_inst := {{schema}}.lock_by_token(p_token, TRUE, 'ack_orchestration_item');
    v_now := {{schema}}.now_ms();

    SELECT TRUE INTO v_exists FROM {{schema}}.instances WHERE instance_id = v_inst;
    v_exists := COALESCE(v_exists, FALSE);
    IF NOT v_exists AND p_name IS NOT NULL THEN
        INSERT INTO {{schema}}.instances (instance_id, orchestration_name, orchestration_version,
                                          current_execution_id, parent_instance_id,
                                          created_at, updated_at)
        VALUES (v_inst, p_name, p_version, p_execution_id, p_parent, v_now, v_now);
        v_exists := TRUE;
        v_created := TRUE;
    END IF;

    IF v_exists THEN
        INSERT INTO {{schema}}.executions (instance_id, execution_id, status, started_at)
        VALUES (v_inst, p_execution_id, 'Running', v_now)
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
                                THEN v_now ELSE completed_at END
        WHERE instance_id = v_inst AND execution_id = p_execution_id;

        UPDATE {{schema}}.instances SET
            current_execution_id = GREATEST(current_execution_id, p_execution_id),
            -- filled in when unknown; replaced when this turn starts a newer execution
            -- (continue-as-new onto another version): the instance shows its current one
            orchestration_version = CASE
                WHEN p_version IS NOT NULL AND (orchestration_version IS NULL
                                                OR current_execution_id < p_execution_id)
                THEN p_version ELSE orchestration_version END,
            updated_at = v_now,
            custom_status = CASE WHEN p_custom_status_set THEN p_custom_status
                                 ELSE custom_status END,
            custom_status_version = custom_status_version
                                    + CASE WHEN p_custom_status_set THEN 1 ELSE 0 END
        WHERE instance_id = v_inst;
    ELSIF jsonb_array_length(p_delta) > 0 OR p_status IS NOT NULL OR p_output IS NOT NULL
          OR p_custom_status_set THEN
        RAISE EXCEPTION 'instance ''%'' does not exist and the commit names no '
                        'orchestration_name, so its history and status cannot be stored', v_inst
            USING ERRCODE = 'DFM01';
    END IF;

    IF jsonb_array_length(p_worker) > 0 THEN
        INSERT INTO {{schema}}.worker_queue (instance_id, execution_id, activity_id, work_item,
                                             visible_at, session_id, tag, created_at)
        SELECT w.value ->> 'instance_id', (w.value ->> 'execution_id')::BIGINT,
               (w.value ->> 'activity_id')::BIGINT, w.value ->> 'item', v_now,
               w.value ->> 'session_id', w.value ->> 'tag', v_now
        FROM jsonb_array_elements(p_worker) WITH ORDINALITY AS w (value, ord)
        ORDER BY w.ord;
        GET DIAGNOSTICS v_workers = ROW_COUNT;
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

    -- After the inserts: an activity scheduled and cancelled in one turn leaves no row.
    IF jsonb_array_length(p_cancelled) > 0 THEN
        DELETE FROM {{schema}}.worker_queue w
        USING jsonb_to_recordset(p_cancelled)
              AS c (instance_id TEXT, execution_id BIGINT, activity_id BIGINT)
        WHERE w.instance_id = c.instance_id AND w.execution_id = c.execution_id
          AND w.activity_id = c.activity_id;
    END IF;

    DELETE FROM {{schema}}.orchestrator_queue WHERE lock_token = p_token;
    DELETE FROM {{schema}}.instance_locks WHERE instance_id = v_inst;

    -- Messages that arrived during the turn are work for any dispatcher, now or when due.
    SELECT min(visible_at) INTO v_left FROM {{schema}}.orchestrator_queue
    WHERE instance_id = v_inst;
    IF v_left IS NOT NULL THEN
        v_due := LEAST(COALESCE(v_due, v_left), v_left);
    END IF;

    IF v_due IS NOT NULL THEN
        PERFORM pg_notify({{chan_orch}}, v_due::TEXT);
    END IF;
    IF v_workers > 0 THEN
        PERFORM pg_notify({{chan_work}}, '');
    END IF;
    out_notify_instance := v_created OR p_status IS NOT NULL OR p_custom_status_set;
    IF out_notify_instance THEN
        PERFORM pg_notify({{chan_inst}}, v_inst);
    END IF;
    out_instance_id := v_inst;
    out_due := v_due;
    RETURN NEXT;
END
$fn$;
