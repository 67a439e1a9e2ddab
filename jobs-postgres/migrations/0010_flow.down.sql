-- Flow control is forgotten: unique keys, mutexes, limits and paused queues. Gated jobs become
-- plain jobs that any fetch takes.
DROP FUNCTION __SCHEMA__.fetch_flow(text[], integer, text, timestamptz, timestamptz, integer);
DROP FUNCTION __SCHEMA__.unique_holders(text[], bigint[], timestamptz);
DROP FUNCTION __SCHEMA__.rate_window(bigint, timestamptz);
DROP FUNCTION __SCHEMA__.rate_left(integer, bigint, bigint, integer, timestamptz);
DROP TABLE __SCHEMA__.job_limits;
DROP TABLE __SCHEMA__.flow_claims;
DROP TABLE __SCHEMA__.queue_settings;
ALTER TABLE __SCHEMA__.recurring_jobs DROP COLUMN limited, DROP COLUMN mutex;
DROP INDEX __SCHEMA__.jobs_gated_idx;
DROP INDEX __SCHEMA__.jobs_unique_idx;
ALTER TABLE __SCHEMA__.jobs
    DROP COLUMN waiting, DROP COLUMN gated, DROP COLUMN mutex, DROP COLUMN unique_key;
