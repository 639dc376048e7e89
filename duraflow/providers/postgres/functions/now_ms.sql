-- The database clock in milliseconds since the Unix epoch. Every time the provider decides
-- itself (locks, visibility of immediate messages, created/completed stamps) comes from here,
-- so many pods with skewed clocks still agree on lock expiry.

CREATE OR REPLACE FUNCTION {{schema}}.now_ms() RETURNS BIGINT
LANGUAGE sql VOLATILE PARALLEL SAFE AS $fn$
    SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT
$fn$;
