-- An execution that ends its instance (Completed, Failed: a continue-as-new keeps it running)
-- ends the schedule run that started the instance, if any (end_schedule_runs). On INSERT too:
-- a first turn may store its execution already finished (start_with_turn). The WHEN clause
-- keeps every other turn's update of an execution free of any cost.

CREATE OR REPLACE FUNCTION {{schema}}.schedule_run_finished() RETURNS TRIGGER
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM {{schema}}.end_schedule_runs(ARRAY[NEW.instance_id], NEW.status);
    RETURN NULL;
END
$fn$;

DROP TRIGGER IF EXISTS executions_end_schedule_runs ON {{schema}}.executions;
CREATE TRIGGER executions_end_schedule_runs AFTER INSERT OR UPDATE OF status
ON {{schema}}.executions
FOR EACH ROW WHEN (NEW.status IN ('Completed', 'Failed'))
EXECUTE FUNCTION {{schema}}.schedule_run_finished();
