-- Duraflow PostgreSQL schema, migration 6: session affinity in the worker queue, prompt
-- cross-process cancellation, and capability filtering of orchestration turns.
--
-- Sessions. A session is owned by a worker (its worker_node_id, or one slot's id) through a
-- lease row in sessions. The worker fetch takes, in the SAME statement, a row that is either
-- session-less, of a session leased to one of the caller's owner ids, or (when the caller may
-- take new sessions) of a session whose lease is free or lapsed, and claims that session
-- with an INSERT (new lease) or a conditional UPDATE (lapsed or already the caller's). Two
-- fetchers racing for one free session: the second INSERT waits for the first to commit,
-- then finds the lease taken and moves on to another row (no double owner, no empty fetch
-- while other work waits).
--
-- Lock order (no cycles): fetch locks worker rows (SKIP LOCKED, never waits) and then waits
-- for at most one session row at a time, held by a transaction that has claimed it and finishes without
-- waiting again; a failed claim leaves no lock behind. Ack and renew lock their own worker row
-- then its session row; the session functions lock only session rows.

CREATE INDEX idx_sessions_worker ON {{schema}}.sessions (worker_id);

DROP FUNCTION IF EXISTS {{schema}}.fetch_work_item(BIGINT, TEXT, TEXT[]);

-- p_owners NULL: session rows are not eligible at all (a worker without session support).
-- p_owners[1] claims new sessions; an owned session keeps the owner id that holds it.
CREATE FUNCTION {{schema}}.fetch_work_item(
    p_lock_ms BIGINT, p_mode TEXT, p_tags TEXT[],
    p_owners TEXT[], p_session_lock_ms BIGINT, p_allow_new BOOLEAN
)
RETURNS TABLE (
    out_lock_token TEXT,
    out_attempt_count INTEGER,
    out_item TEXT,
    out_instance_id TEXT,
    out_execution_id BIGINT,
    out_activity_id BIGINT,
    out_session_id TEXT,
    out_tag TEXT,
    out_session_owner TEXT
)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
    v_id BIGINT;
    v_session TEXT;
    v_owner TEXT;
    v_lost TEXT[] := '{}';
    v_token TEXT;
BEGIN
    FOR i IN 1..5 LOOP
        SELECT w.id, w.session_id INTO v_id, v_session
        FROM {{schema}}.worker_queue w
        LEFT JOIN {{schema}}.sessions s ON s.session_id = w.session_id
        WHERE w.visible_at <= v_now
          AND CASE p_mode
                  WHEN 'any' THEN TRUE
                  WHEN 'default_only' THEN w.tag IS NULL
                  WHEN 'tags' THEN w.tag = ANY (p_tags)
                  WHEN 'default_and' THEN w.tag IS NULL OR w.tag = ANY (p_tags)
                  ELSE FALSE
              END
          AND (w.session_id IS NULL
               OR (p_owners IS NOT NULL
                   AND w.session_id <> ALL (v_lost)
                   AND ((s.locked_until > v_now AND s.worker_id = ANY (p_owners))
                        OR (p_allow_new
                            AND (s.session_id IS NULL OR s.locked_until <= v_now)))))
        ORDER BY w.visible_at, w.id
        LIMIT 1
        FOR UPDATE OF w SKIP LOCKED;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        v_owner := NULL;
        IF v_session IS NOT NULL THEN
            SELECT s.worker_id INTO v_owner FROM {{schema}}.sessions s
            WHERE s.session_id = v_session AND s.locked_until > v_now
              AND s.worker_id = ANY (p_owners);
            v_owner := COALESCE(v_owner, p_owners[1]);
            -- Claim: a new lease, or take over a lapsed one / extend our own. A failed attempt
            -- must leave no row lock behind (ON CONFLICT DO UPDATE would lock the row even
            -- when its WHERE fails, and a later wait could then close a deadlock cycle), so
            -- it is an INSERT that does nothing on conflict, then a conditional UPDATE.
            INSERT INTO {{schema}}.sessions (session_id, worker_id, locked_until,
                                             last_activity_at)
            VALUES (v_session, v_owner, v_now + p_session_lock_ms, v_now)
            ON CONFLICT (session_id) DO NOTHING;
            IF NOT FOUND THEN
                UPDATE {{schema}}.sessions s
                SET worker_id = v_owner,
                    locked_until = GREATEST(v_now + p_session_lock_ms,
                                            CASE WHEN s.worker_id = v_owner
                                                 THEN s.locked_until ELSE 0 END),
                    last_activity_at = v_now
                WHERE s.session_id = v_session
                  AND (s.locked_until <= {{schema}}.now_ms() OR s.worker_id = v_owner);
                IF NOT FOUND THEN  -- another worker holds it now: try another row
                    v_lost := v_lost || v_session;
                    CONTINUE;
                END IF;
            END IF;
        END IF;
        v_token := gen_random_uuid()::TEXT;
        RETURN QUERY
        UPDATE {{schema}}.worker_queue w SET
            lock_token = v_token,
            locked_until = v_now + p_lock_ms,
            visible_at = v_now + p_lock_ms,
            attempt_count = w.attempt_count + 1
        WHERE w.id = v_id
        RETURNING w.lock_token, w.attempt_count, w.work_item, w.instance_id, w.execution_id,
                  w.activity_id, w.session_id, w.tag, v_owner;
        RETURN;
    END LOOP;
    RETURN;
END
$fn$;

-- The worker's own ack marks its token (transaction-local) so the cancellation trigger below
-- tells deleted-by-someone-else from completed. A session's last activity moves with it.
CREATE OR REPLACE FUNCTION {{schema}}.ack_work_item(
    p_token TEXT, p_instance TEXT, p_item TEXT, p_visible_at BIGINT
) RETURNS BIGINT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
    v_visible BIGINT;
    v_session TEXT;
BEGIN
    PERFORM set_config('duraflow.acking', p_token, TRUE);
    DELETE FROM {{schema}}.worker_queue WHERE lock_token = p_token AND locked_until > v_now
    RETURNING session_id INTO v_session;
    IF NOT FOUND THEN
        PERFORM {{schema}}.raise_worker_lock_lost(p_token);
    END IF;
    IF v_session IS NOT NULL THEN
        UPDATE {{schema}}.sessions SET last_activity_at = v_now WHERE session_id = v_session;
    END IF;
    IF p_item IS NULL THEN
        RETURN NULL;
    END IF;
    v_visible := COALESCE(p_visible_at, v_now);
    INSERT INTO {{schema}}.orchestrator_queue (instance_id, work_item, visible_at, created_at)
    VALUES (p_instance, p_item, v_visible, v_now);
    PERFORM pg_notify({{chan_orch}}, v_visible::TEXT);
    RETURN v_visible;
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.renew_work_item_lock(p_token TEXT, p_extend_ms BIGINT)
RETURNS VOID
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
    v_session TEXT;
BEGIN
    UPDATE {{schema}}.worker_queue
    SET locked_until = v_now + p_extend_ms, visible_at = v_now + p_extend_ms
    WHERE lock_token = p_token AND locked_until > v_now
    RETURNING session_id INTO v_session;
    IF NOT FOUND THEN
        PERFORM {{schema}}.raise_worker_lock_lost(p_token);
    END IF;
    IF v_session IS NOT NULL THEN  -- a long activity keeps its session from going idle
        UPDATE {{schema}}.sessions SET last_activity_at = v_now WHERE session_id = v_session;
    END IF;
END
$fn$;

-- Renew the leases of the caller's live sessions that were active within p_idle_ms and
-- release the idle ones; returns the sessions the caller still holds.
CREATE OR REPLACE FUNCTION {{schema}}.renew_sessions(
    p_owners TEXT[], p_extend_ms BIGINT, p_idle_ms BIGINT
) RETURNS SETOF TEXT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
BEGIN
    DELETE FROM {{schema}}.sessions
    WHERE worker_id = ANY (p_owners) AND locked_until > v_now
      AND last_activity_at <= v_now - p_idle_ms;
    IF FOUND THEN  -- work of a released session is anyone's now
        PERFORM pg_notify({{chan_work}}, '');
    END IF;
    RETURN QUERY
    UPDATE {{schema}}.sessions SET locked_until = v_now + p_extend_ms
    WHERE worker_id = ANY (p_owners) AND locked_until > v_now
    RETURNING session_id;
END
$fn$;

-- Sessions whose lease lapsed and that have no work left are forgotten.
CREATE OR REPLACE FUNCTION {{schema}}.cleanup_sessions() RETURNS BIGINT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
    v_count BIGINT;
BEGIN
    DELETE FROM {{schema}}.sessions s
    WHERE s.locked_until <= v_now
      AND NOT EXISTS (SELECT 1 FROM {{schema}}.worker_queue w WHERE w.session_id = s.session_id);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$fn$;

-- Cancellation across processes: a locked worker row deleted by anything but its own ack
-- (an orchestration turn dropping the activity, a forced delete) announces its lock token;
-- the dispatcher running it cancels it at once. Completions never fire the function.
CREATE OR REPLACE FUNCTION {{schema}}.announce_work_cancelled() RETURNS TRIGGER
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_notify({{chan_cancel}}, OLD.lock_token);
    RETURN NULL;
END
$fn$;

CREATE TRIGGER worker_cancelled AFTER DELETE ON {{schema}}.worker_queue
FOR EACH ROW
WHEN (OLD.lock_token IS NOT NULL
      AND OLD.lock_token IS DISTINCT FROM current_setting('duraflow.acking', TRUE))
EXECUTE FUNCTION {{schema}}.announce_work_cancelled();


-- Capability filtering. Each execution is pinned to the engine version that started it (the
-- engine_version of its OrchestrationStarted event, packed major*1e6 + minor*1e3 + patch);
-- instances.pinned_version mirrors the current execution's pin, set by a trigger when event 1
-- of an execution is written, so neither the ack nor the runtime has to send it. A runtime
-- fetches only instances whose pin lies in its supported range (NULL = compatible).

ALTER TABLE {{schema}}.instances ADD COLUMN pinned_version BIGINT;

CREATE OR REPLACE FUNCTION {{schema}}.pack_version(p_text TEXT) RETURNS BIGINT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT CASE WHEN m IS NULL THEN NULL
                ELSE m[1]::BIGINT * 1000000 + m[2]::BIGINT * 1000 + m[3]::BIGINT END
    FROM (SELECT regexp_match(p_text, '^(\d{1,6})\.(\d{1,3})\.(\d{1,3})') AS m) t
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.pin_execution_version() RETURNS TRIGGER
LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE {{schema}}.instances
    SET pinned_version = {{schema}}.pack_version(NEW.event_data::jsonb ->> 'engine_version')
    WHERE instance_id = NEW.instance_id AND current_execution_id <= NEW.execution_id;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER history_pins_version AFTER INSERT ON {{schema}}.history
FOR EACH ROW WHEN (NEW.event_id = 1)
EXECUTE FUNCTION {{schema}}.pin_execution_version();

-- 0002's fetch with one more predicate in the candidate query and two optional arguments.
DROP FUNCTION IF EXISTS {{schema}}.fetch_orchestration_item(BIGINT, JSONB, BOOLEAN);

CREATE FUNCTION {{schema}}.fetch_orchestration_item(
    p_lock_ms BIGINT, p_cached JSONB, p_load_history BOOLEAN,
    p_min_version BIGINT DEFAULT NULL, p_max_version BIGINT DEFAULT NULL
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
          -- capability filter (the only change to 0002's version of this function)
          AND (p_max_version IS NULL OR NOT EXISTS (
              SELECT 1 FROM {{schema}}.instances pv
              WHERE pv.instance_id = q.instance_id
                AND pv.pinned_version NOT BETWEEN p_min_version AND p_max_version))
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
