-- A turn's KV mutations in order (set, clear one key, clear all), applied in the turn's own
-- transaction by commit_turn and start_with_turn after the lock is validated. The KV store
-- outlives executions (continue-as-new keeps it) and is removed only with its instance.

CREATE OR REPLACE FUNCTION {{schema}}.apply_kv_mutations(p_instance TEXT, p_mutations JSONB)
RETURNS INTEGER
LANGUAGE plpgsql AS $fn$
DECLARE
    m JSONB;
BEGIN
    IF p_mutations IS NULL OR jsonb_array_length(p_mutations) = 0 THEN
        RETURN 0;
    END IF;
    FOR m IN SELECT value FROM jsonb_array_elements(p_mutations) WITH ORDINALITY AS e (value, ord)
             ORDER BY ord
    LOOP
        IF m ->> 'action' = 'set' THEN
            INSERT INTO {{schema}}.kv_store (instance_id, key, value, updated_at_ms)
            VALUES (p_instance, m ->> 'key', m ->> 'value', (m ->> 'updated_at_ms')::BIGINT)
            ON CONFLICT (instance_id, key) DO UPDATE
                SET value = EXCLUDED.value, updated_at_ms = EXCLUDED.updated_at_ms;
        ELSIF m ->> 'action' = 'clear' THEN
            DELETE FROM {{schema}}.kv_store WHERE instance_id = p_instance AND key = m ->> 'key';
        ELSE
            DELETE FROM {{schema}}.kv_store WHERE instance_id = p_instance;
        END IF;
    END LOOP;
    RETURN jsonb_array_length(p_mutations);
END
$fn$;
