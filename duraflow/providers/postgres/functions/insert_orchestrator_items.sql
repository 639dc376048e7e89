-- The orchestrator messages of a turn; returns the earliest due time among them.

CREATE OR REPLACE FUNCTION {{schema}}.insert_orchestrator_items(
    p_orchestrator JSONB, p_now BIGINT
) RETURNS BIGINT
LANGUAGE plpgsql AS $fn$
DECLARE
    v_due BIGINT;
BEGIN
    INSERT INTO {{schema}}.orchestrator_queue (instance_id, work_item, visible_at, created_at)
    SELECT o.value ->> 'instance_id', o.value ->> 'item',
           COALESCE((o.value ->> 'visible_at')::BIGINT, p_now), p_now
    FROM jsonb_array_elements(p_orchestrator) WITH ORDINALITY AS o (value, ord)
    ORDER BY o.ord;
    SELECT min(COALESCE((o.value ->> 'visible_at')::BIGINT, p_now)) INTO v_due
    FROM jsonb_array_elements(p_orchestrator) AS o (value);
    RETURN v_due;
END
$fn$;
