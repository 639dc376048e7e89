-- Capability filtering. Each execution is pinned to the engine version that started it (the
-- engine_version of its OrchestrationStarted event, packed major*1e6 + minor*1e3 + patch);
-- instances.pinned_version mirrors the current execution's pin, set by this trigger when event 1
-- of an execution is written, so neither the commit nor the runtime has to send it. A runtime
-- fetches only instances whose pin lies in its supported range (NULL = compatible).
-- The packing is inline: a SQL function that is not inlined is planned again on every call,
-- which made the pin the most expensive statement of a first turn.
-- The trigger lives here with its function: it can only be created once the function exists.

CREATE OR REPLACE FUNCTION {{schema}}.pin_execution_version() RETURNS TRIGGER
LANGUAGE plpgsql AS $fn$
DECLARE
    v_parts TEXT[] := regexp_match(NEW.event_data::jsonb ->> 'engine_version',
                                   '^(\d{1,6})\.(\d{1,3})\.(\d{1,3})');
BEGIN
    UPDATE {{schema}}.instances
    SET pinned_version = CASE WHEN v_parts IS NULL THEN NULL
                              ELSE v_parts[1]::BIGINT * 1000000 + v_parts[2]::BIGINT * 1000
                                   + v_parts[3]::BIGINT END
    WHERE instance_id = NEW.instance_id AND current_execution_id <= NEW.execution_id;
    RETURN NULL;
END
$fn$;

DROP TRIGGER IF EXISTS history_pins_version ON {{schema}}.history;
CREATE TRIGGER history_pins_version AFTER INSERT ON {{schema}}.history
FOR EACH ROW WHEN (NEW.event_id = 1)
EXECUTE FUNCTION {{schema}}.pin_execution_version();
