-- The claimed or queued activities of a turn (commit_turn inlines the same statement). Each
-- item names the build of the turn that scheduled it ("build_id", absent without builds).

CREATE OR REPLACE FUNCTION {{schema}}.insert_worker_items(
    p_worker JSONB, p_now BIGINT, p_claim_ms BIGINT
) RETURNS VOID
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO {{schema}}.worker_queue (instance_id, execution_id, activity_id, work_item,
                                         visible_at, lock_token, locked_until, attempt_count,
                                         session_id, tag, created_at, build_id)
    SELECT w.value ->> 'instance_id', (w.value ->> 'execution_id')::BIGINT,
           (w.value ->> 'activity_id')::BIGINT, w.value ->> 'item',
           CASE WHEN w.value ->> 'claim_token' IS NULL THEN p_now ELSE p_now + p_claim_ms END,
           w.value ->> 'claim_token',
           CASE WHEN w.value ->> 'claim_token' IS NULL THEN NULL ELSE p_now + p_claim_ms END,
           CASE WHEN w.value ->> 'claim_token' IS NULL THEN 0 ELSE 1 END,
           w.value ->> 'session_id', w.value ->> 'tag', p_now, w.value ->> 'build_id'
    FROM jsonb_array_elements(p_worker) WITH ORDINALITY AS w (value, ord)
    ORDER BY w.ord;
END
$fn$;
