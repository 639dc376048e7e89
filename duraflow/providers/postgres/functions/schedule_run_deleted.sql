-- Deleting an instance (an admin delete, retention) ends the schedule run that started it,
-- so a schedule never waits for a run that cannot end. One call per statement: a bulk
-- delete costs one lookup of the active runs, not one per instance.

CREATE OR REPLACE FUNCTION {{schema}}.schedule_run_deleted() RETURNS TRIGGER
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM {{schema}}.end_schedule_runs(ARRAY(SELECT instance_id FROM gone), 'Deleted');
    RETURN NULL;
END
$fn$;

DROP TRIGGER IF EXISTS instances_end_schedule_runs ON {{schema}}.instances;
CREATE TRIGGER instances_end_schedule_runs AFTER DELETE ON {{schema}}.instances
REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
EXECUTE FUNCTION {{schema}}.schedule_run_deleted();
