-- The worker fetch. A worker row is peek-locked by one worker: fetch takes the oldest
-- fetchable row with FOR UPDATE SKIP LOCKED (concurrent workers in any process take
-- different rows and never wait for each other), and moves visible_at to the lock's expiry
-- so in-flight rows drop out of the (visible_at, id) range the next fetch scans. p_mode and
-- p_tags are the caller's tag filter.
--
-- Sessions. A session is owned by a worker (its worker_node_id, or one slot's id) through a
-- lease row in sessions. The fetch takes, in the SAME statement, a row that is either
-- session-less, of a session leased to one of the caller's owner ids, or (when the caller may
-- take new sessions) of a session whose lease is free or lapsed, and claims that session
-- with an INSERT (new lease) or a conditional UPDATE (lapsed or already the caller's). Two
-- fetchers racing for one free session: the second INSERT waits for the first to commit,
-- then finds the lease taken and moves on to another row (no double owner, no empty fetch
-- while other work waits).
--
-- Lock order (no cycles): fetch locks worker rows (SKIP LOCKED, never waits) and then waits
-- for at most one session row at a time, held by a transaction that has claimed it and
-- finishes without waiting again; a failed claim leaves no lock behind. Ack and renew lock
-- their own worker row then its session row; the session functions lock only session rows.
--
-- p_owners NULL: session rows are not eligible at all (a worker without session support).
-- p_owners[1] claims new sessions; an owned session keeps the owner id that holds it.
--
-- Builds: a worker with a build (p_build) takes the rows of its build and unpinned ones (an
-- activity's inputs and outputs belong to the code that scheduled it); without one (NULL)
-- it takes every row, as before builds existed.

CREATE OR REPLACE FUNCTION {{schema}}.fetch_work_item(
    p_lock_ms BIGINT, p_mode TEXT, p_tags TEXT[],
    p_owners TEXT[], p_session_lock_ms BIGINT, p_allow_new BOOLEAN,
    p_build TEXT DEFAULT NULL
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
          AND (p_build IS NULL OR w.build_id IS NULL OR w.build_id = p_build)
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
