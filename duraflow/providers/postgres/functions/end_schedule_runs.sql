-- Mark the runs of schedules whose instances ended (p_status: Completed, Failed, or Deleted
-- when the instance row went) as ended, in the transaction that ends them; called by the
-- triggers schedule_run_finished (executions) and schedule_run_deleted (instances).
--
-- A run's end can free a tick that waits for it (buffer_one, buffer_all, cancel_other, a
-- blocked backfill: the schedule's wake_on_end). Then the schedule becomes due now and the
-- runtimes hear of it ("s" in the payload), so the waiting tick starts at once, without any
-- runtime polling the schedule. The schedule row is locked first: a runtime firing the
-- schedule holds it (due_schedules) and may be about to make a tick wait for this very run;
-- taking the lock waits for that fire to commit, and the next statement, with a fresh
-- snapshot, sees the tick it left waiting. (Read without the lock, the flag could be read
-- before that commit and the tick would wait for an end that already happened.)

CREATE OR REPLACE FUNCTION {{schema}}.end_schedule_runs(p_instances TEXT[], p_status TEXT)
RETURNS VOID
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now BIGINT := {{schema}}.now_ms();
    v_schedule TEXT;
BEGIN
    FOR v_schedule IN
        UPDATE {{schema}}.schedule_runs SET status = p_status, ended_at = v_now
        WHERE instance_id = ANY (p_instances) AND ended_at IS NULL
        RETURNING schedule_id
    LOOP
        PERFORM 1 FROM {{schema}}.schedules WHERE schedule_id = v_schedule FOR UPDATE;
        UPDATE {{schema}}.schedules SET due_at = v_now
        WHERE schedule_id = v_schedule AND wake_on_end AND (due_at IS NULL OR due_at > v_now);
        IF FOUND THEN
            PERFORM pg_notify({{chan_orch}}, json_build_object('s', v_now)::TEXT);
        END IF;
    END LOOP;
END
$fn$;
