-- Cancellation across processes: a locked worker row deleted by anything but its own ack
-- (an orchestration turn dropping the activity, a forced delete) announces its lock token;
-- the dispatcher running it cancels it at once. Completions never fire the function.
-- The trigger lives here with its function: it can only be created once the function exists.

CREATE OR REPLACE FUNCTION {{schema}}.announce_work_cancelled() RETURNS TRIGGER
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_notify({{chan_cancel}}, OLD.lock_token);
    RETURN NULL;
END
$fn$;

DROP TRIGGER IF EXISTS worker_cancelled ON {{schema}}.worker_queue;
CREATE TRIGGER worker_cancelled AFTER DELETE ON {{schema}}.worker_queue
FOR EACH ROW
WHEN (OLD.lock_token IS NOT NULL
      AND OLD.lock_token IS DISTINCT FROM current_setting('duraflow.acking', TRUE))
EXECUTE FUNCTION {{schema}}.announce_work_cancelled();
