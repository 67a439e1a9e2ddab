-- Jobs keep their places by position alone; their priorities are forgotten.
DROP INDEX __SCHEMA__.jobs_fetch_idx;
CREATE INDEX jobs_fetch_idx ON __SCHEMA__.jobs (queue, position) WHERE state = 'enqueued';

ALTER TABLE __SCHEMA__.recurring_jobs DROP COLUMN priority;
ALTER TABLE __SCHEMA__.jobs DROP COLUMN priority;
