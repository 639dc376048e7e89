-- Store the plans of the schedules due_schedules locked, in the same transaction: the new
-- state of each, its ticks' starts and its cancellations. A start is idempotent on the tick:
-- it is skipped when the tick has a run already (the primary key of schedule_runs) or an
-- instance with its id exists, so a tick starts at most once whoever plans it and however
-- often. Ended runs beyond a schedule's newest ten are dropped (describe shows the newest).
--
-- p_fires: [{"id", "next_tick", "pending", "wake", "missed", "due",
--            "starts": [{"at", "instance", "item"}], "cancels": [{"instance", "item"}]}]
-- p_notify: the payload announcing the new orchestrator work to other processes (NULL: none
--           wanted), sent once and only when something was queued.
-- Returns how many ticks started, and the earliest due_at in the store afterwards (when the
-- runtime should look again).

CREATE OR REPLACE FUNCTION {{schema}}.apply_schedule_fires(p_fires JSONB, p_notify TEXT)
RETURNS TABLE (out_started INTEGER, out_next_due BIGINT)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
    v_fire JSONB;
    v_start JSONB;
    v_id TEXT;
    v_started INTEGER := 0;
    v_cancelled INTEGER := 0;
    v_rows INTEGER;
BEGIN
    FOR v_fire IN SELECT f FROM jsonb_array_elements(p_fires) AS f LOOP
        v_id := v_fire ->> 'id';
        UPDATE {{schema}}.schedules SET
            next_tick_at = (v_fire ->> 'next_tick')::BIGINT,
            pending = v_fire ->> 'pending',
            wake_on_end = (v_fire ->> 'wake')::BOOLEAN,
            missed = (v_fire ->> 'missed')::BIGINT,
            due_at = (v_fire ->> 'due')::BIGINT,
            updated_at = v_now
        WHERE schedule_id = v_id;
        FOR v_start IN SELECT s FROM jsonb_array_elements(v_fire -> 'starts') AS s LOOP
            CONTINUE WHEN EXISTS (SELECT 1 FROM {{schema}}.instances
                                  WHERE instance_id = v_start ->> 'instance');
            INSERT INTO {{schema}}.schedule_runs (schedule_id, scheduled_at, instance_id,
                                                  started_at)
            VALUES (v_id, (v_start ->> 'at')::BIGINT, v_start ->> 'instance', v_now)
            ON CONFLICT DO NOTHING;
            CONTINUE WHEN NOT FOUND;
            INSERT INTO {{schema}}.orchestrator_queue (instance_id, work_item, visible_at,
                                                       created_at)
            VALUES (v_start ->> 'instance', v_start ->> 'item', v_now, v_now);
            v_started := v_started + 1;
        END LOOP;
        INSERT INTO {{schema}}.orchestrator_queue (instance_id, work_item, visible_at, created_at)
        SELECT c ->> 'instance', c ->> 'item', v_now, v_now
        FROM jsonb_array_elements(v_fire -> 'cancels') AS c;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        v_cancelled := v_cancelled + v_rows;
        IF jsonb_array_length(v_fire -> 'starts') > 0 THEN
            DELETE FROM {{schema}}.schedule_runs
            WHERE schedule_id = v_id AND ended_at IS NOT NULL
              AND scheduled_at < COALESCE((SELECT r.scheduled_at FROM {{schema}}.schedule_runs r
                                           WHERE r.schedule_id = v_id
                                             AND r.ended_at IS NOT NULL
                                           ORDER BY r.scheduled_at DESC OFFSET 9 LIMIT 1),
                                          0);
        END IF;
    END LOOP;
    IF v_started + v_cancelled > 0 AND p_notify IS NOT NULL THEN
        PERFORM pg_notify({{chan_orch}}, p_notify);
    END IF;
    out_started := v_started;
    SELECT min(s.due_at) INTO out_next_due FROM {{schema}}.schedules s;
    RETURN NEXT;
END
$fn$;
