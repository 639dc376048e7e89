-- An engine version string packed as major*1e6 + minor*1e3 + patch. Superseded: since
-- version 8 pin_execution_version inlines it (a SQL function that is not inlined is planned
-- again on every call). Nothing calls it.

CREATE OR REPLACE FUNCTION {{schema}}.pack_version(p_text TEXT) RETURNS BIGINT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT CASE WHEN m IS NULL THEN NULL
                ELSE m[1]::BIGINT * 1000000 + m[2]::BIGINT * 1000 + m[3]::BIGINT END
    FROM (SELECT regexp_match(p_text, '^(\d{1,6})\.(\d{1,3})\.(\d{1,3})') AS m) t
$fn$;
