-- Duraflow PostgreSQL schema, version 12: the superseded functions nothing calls are dropped
-- (the rule is in migrations.py). No code that may run beside this one calls any of them:
--   * ack_orchestration_item: superseded by commit_turn (version 7);
--   * enqueue_orchestrator(TEXT, TEXT, BIGINT): by its form with p_notify (version 7);
--   * pack_version: inlined into pin_execution_version (version 8).

DROP FUNCTION IF EXISTS {{schema}}.ack_orchestration_item(
    TEXT, BIGINT, JSONB, JSONB, JSONB, JSONB, TEXT, TEXT, TEXT, TEXT, TEXT, BOOLEAN, TEXT);
DROP FUNCTION IF EXISTS {{schema}}.enqueue_orchestrator(TEXT, TEXT, BIGINT);
DROP FUNCTION IF EXISTS {{schema}}.pack_version(TEXT);
