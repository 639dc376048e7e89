-- Duraflow PostgreSQL schema, migration 2: the orchestrator queue as server-side functions.
--
-- One orchestration turn is two round trips: fetch_orchestration_item and
-- ack_orchestration_item, each one function call in its own implicit transaction.
--
-- Concurrency rule (why nothing here can deadlock or double-lock): every transaction that
-- changes an instance's lock row or its existing queue rows first takes the instance's
-- transaction-level advisory lock (lock_key). Fetch only ever TRIES it
-- (pg_try_advisory_xact_lock) and moves on to the next candidate when it is taken, and it
-- takes no row lock before it owns the instance: the candidate query is a plain read.
-- (A FOR UPDATE SKIP LOCKED candidate would keep its row lock after a lost try-lock, and the
-- owner tagging its batch would then have to wait for, or skip, that message.) So a fetcher
-- waits for nobody, tags ALL visible messages of its instance, and ack/abandon/delete wait
-- at most for the short fetch that owns the same instance, never in a cycle. The worker
-- queue, whose rows are locked one by one, uses FOR UPDATE SKIP LOCKED (0003_worker.sql).

CREATE OR REPLACE FUNCTION {{schema}}.fetch_orchestration_item(
    p_lock_ms BIGINT, p_cached JSONB, p_load_history BOOLEAN
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
    v_token TEXT;
    v_msgs TEXT[];
    v_attempt INTEGER;
    v_found BOOLEAN;
    v_cached JSONB;
BEGIN
    -- Losing a race is not "no work": retry with the next candidate (bounded).
    FOR i IN 1..50 LOOP
        v_now := {{schema}}.now_ms();
        SELECT q.instance_id INTO v_inst
        FROM {{schema}}.orchestrator_queue q
        WHERE q.visible_at <= v_now
          AND q.instance_id <> ALL (v_skip)
          AND NOT EXISTS (
              SELECT 1 FROM {{schema}}.instance_locks l
              WHERE l.instance_id = q.instance_id AND l.locked_until > v_now)
        ORDER BY q.visible_at, q.id
        LIMIT 1;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        IF NOT pg_try_advisory_xact_lock({{schema}}.lock_key(v_inst)) THEN
            v_skip := v_skip || v_inst;
            CONTINUE;
        END IF;

        -- The lease starts now, after any time spent above (never an already-expired lease).
        v_now := {{schema}}.now_ms();
        v_token := gen_random_uuid()::TEXT;
        INSERT INTO {{schema}}.instance_locks AS l (instance_id, lock_token, locked_until, locked_at)
        VALUES (v_inst, v_token, v_now + p_lock_ms, v_now)
        ON CONFLICT (instance_id) DO UPDATE
            SET lock_token = EXCLUDED.lock_token,
                locked_until = EXCLUDED.locked_until,
                locked_at = EXCLUDED.locked_at
            WHERE l.locked_until <= v_now;
        IF NOT FOUND THEN  -- locked by a turn that committed since the candidate query
            v_skip := v_skip || v_inst;
            CONTINUE;
        END IF;

        WITH tagged AS (
            UPDATE {{schema}}.orchestrator_queue q
            SET lock_token = v_token, attempt_count = q.attempt_count + 1
            WHERE q.instance_id = v_inst AND q.visible_at <= v_now
            RETURNING q.id, q.work_item, q.attempt_count
        )
        SELECT array_agg(t.work_item ORDER BY t.id), max(t.attempt_count)
        INTO v_msgs, v_attempt
        FROM tagged t;
        IF v_msgs IS NULL THEN  -- the batch was acked just before we got the lock: give it back
            DELETE FROM {{schema}}.instance_locks WHERE instance_id = v_inst;
            v_skip := v_skip || v_inst;
            CONTINUE;
        END IF;

        out_instance_id := v_inst;
        out_lock_token := v_token;
        out_attempt_count := v_attempt;
        out_messages := v_msgs;
        SELECT i.orchestration_name, i.orchestration_version, i.current_execution_id,
               i.parent_instance_id, e.status, COALESCE(e.event_count, 0)
        INTO out_name, out_version, out_execution_id, out_parent, out_status, out_history_len
        FROM {{schema}}.instances i
        LEFT JOIN {{schema}}.executions e
            ON e.instance_id = i.instance_id AND e.execution_id = i.current_execution_id
        WHERE i.instance_id = v_inst;
        v_found := FOUND;
        IF NOT v_found THEN
            out_execution_id := 1;
            out_history_len := 0;
        END IF;

        v_cached := p_cached -> v_inst;
        IF NOT p_load_history THEN
            out_history := NULL;  -- the caller checks its (large) cache and loads if stale
        ELSIF v_cached IS NOT NULL
           AND (v_cached ->> 0)::BIGINT = out_execution_id
           AND (v_cached ->> 1)::BIGINT = out_history_len THEN
            out_history := NULL;  -- the caller's replay state is current
        ELSIF NOT v_found THEN
            out_history := '{}';
        ELSE
            SELECT COALESCE(array_agg(h.event_data ORDER BY h.event_id), '{}')
            INTO out_history
            FROM {{schema}}.history h
            WHERE h.instance_id = v_inst AND h.execution_id = out_execution_id;
        END IF;
        RETURN NEXT;
        RETURN;
    END LOOP;
    RETURN;
END
$fn$;

-- Look up a lock by token and take its instance's advisory lock; raises DFL01 when the token
-- is unknown (or, with p_require_live, expired).
CREATE OR REPLACE FUNCTION {{schema}}.lock_by_token(
    p_token TEXT, p_require_live BOOLEAN, p_operation TEXT
) RETURNS TEXT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_inst TEXT;
    v_until BIGINT;
BEGIN
    SELECT instance_id INTO v_inst FROM {{schema}}.instance_locks WHERE lock_token = p_token;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Invalid lock token (lock lost, taken over or instance deleted)'
            USING ERRCODE = 'DFL01';
    END IF;
    PERFORM pg_advisory_xact_lock({{schema}}.lock_key(v_inst));
    -- re-read under the advisory lock: a fetch may have taken the expired lock meanwhile
    SELECT locked_until INTO v_until FROM {{schema}}.instance_locks
    WHERE instance_id = v_inst AND lock_token = p_token;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Invalid lock token (lock taken over or instance deleted)'
            USING ERRCODE = 'DFL01';
    END IF;
    IF p_require_live AND v_until <= {{schema}}.now_ms() THEN
        RAISE EXCEPTION 'Instance lock expired' USING ERRCODE = 'DFL01';
    END IF;
    RETURN v_inst;
END
$fn$;

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

CREATE OR REPLACE FUNCTION {{schema}}.abandon_orchestration_item(
    p_token TEXT, p_delay_ms BIGINT, p_ignore_attempt BOOLEAN
) RETURNS BIGINT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_inst TEXT;
    v_now BIGINT;
    v_visible BIGINT;
BEGIN
    v_inst := {{schema}}.lock_by_token(p_token, FALSE, 'abandon_orchestration_item');
    v_now := {{schema}}.now_ms();
    IF p_delay_ms IS NOT NULL AND p_delay_ms > 0 THEN
        v_visible := v_now + p_delay_ms;
    END IF;
    UPDATE {{schema}}.orchestrator_queue SET
        lock_token = NULL,
        visible_at = COALESCE(v_visible, visible_at),
        attempt_count = CASE WHEN p_ignore_attempt THEN GREATEST(attempt_count - 1, 0)
                             ELSE attempt_count END
    WHERE lock_token = p_token;
    DELETE FROM {{schema}}.instance_locks WHERE instance_id = v_inst;
    PERFORM pg_notify({{chan_orch}}, COALESCE(v_visible, v_now)::TEXT);
    RETURN COALESCE(v_visible, v_now);
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.enqueue_orchestrator(
    p_instance TEXT, p_item TEXT, p_visible_at BIGINT
) RETURNS BIGINT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
    v_visible BIGINT := COALESCE(p_visible_at, v_now);
BEGIN
    INSERT INTO {{schema}}.orchestrator_queue (instance_id, work_item, visible_at, created_at)
    VALUES (p_instance, p_item, v_visible, v_now);
    PERFORM pg_notify({{chan_orch}}, v_visible::TEXT);
    RETURN v_visible;
END
$fn$;

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
