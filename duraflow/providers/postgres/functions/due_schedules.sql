-- The due schedules a runtime fires now: up to p_limit schedules with due_at <= p_now (the
-- runtime's clock, as it computed the tick times), oldest due first, locked for this
-- transaction. One range scan of idx_schedules_due; SKIP LOCKED, so runtimes firing at once
-- take different schedules instead of queueing behind each other.
--
-- The runtime plans each one and stores the plans with apply_schedule_fires in the SAME
-- transaction: the lock is what makes a tick fire once however many runtimes look. Each row
-- comes with the instance ids of its runs that have not ended, read by a second statement
-- after the locks are taken, so they include every end committed before (see
-- end_schedule_runs for the other half of that handshake).

CREATE OR REPLACE FUNCTION {{schema}}.due_schedules(p_now BIGINT, p_limit INTEGER)
RETURNS TABLE (sched {{schema}}.schedules, running TEXT[])
LANGUAGE plpgsql AS $fn$
DECLARE
    v_ids TEXT[];
BEGIN
    SELECT array_agg(d.schedule_id) INTO v_ids FROM (
        SELECT s.schedule_id FROM {{schema}}.schedules s
        WHERE s.due_at <= p_now
        ORDER BY s.due_at
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ) AS d;
    RETURN QUERY
    SELECT s, ARRAY(SELECT r.instance_id FROM {{schema}}.schedule_runs r
                    WHERE r.schedule_id = s.schedule_id AND r.ended_at IS NULL
                    ORDER BY r.scheduled_at)
    FROM {{schema}}.schedules s
    WHERE s.schedule_id = ANY (v_ids);
END
$fn$;
