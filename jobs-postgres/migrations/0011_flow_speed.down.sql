-- Unique keys are checked by lock and lookup only, and the flow-controlled fetches are planned
-- per call again.
DROP INDEX __SCHEMA__.jobs_unique_held_idx;
DROP FUNCTION __SCHEMA__.fetch_limited(text[], bigint, text, timestamptz, timestamptz);
ALTER FUNCTION __SCHEMA__.fetch_flow(text[], integer, text, timestamptz, timestamptz, integer)
    RESET plan_cache_mode;
ALTER FUNCTION __SCHEMA__.fetch_flow(text[], integer, text, timestamptz, timestamptz, integer)
    RESET jit;
ALTER FUNCTION __SCHEMA__.rate_window(bigint, timestamptz) IMMUTABLE;
ALTER FUNCTION __SCHEMA__.rate_left(integer, bigint, bigint, integer, timestamptz) IMMUTABLE;
