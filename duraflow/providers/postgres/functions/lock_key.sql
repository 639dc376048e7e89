-- Advisory-lock key of one instance. Scoped by schema so that two Duraflow schemas in one
-- database never contend for the same key (advisory locks are database-wide).

CREATE OR REPLACE FUNCTION {{schema}}.lock_key(p_instance TEXT) RETURNS BIGINT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT hashtextextended({{schema_literal}} || '/' || p_instance, 0)
$fn$;
