-- Priority within a queue: lower first, FIFO (`position`) among equals. The fetch reads the
-- head of each served queue from `jobs_fetch_idx`, so the priority goes into its key between
-- the queue and the position: the fetch stays one ordered index read per queue. A recurring
-- job keeps the priority of the job it fires.
ALTER TABLE __SCHEMA__.jobs
    ADD COLUMN priority smallint NOT NULL DEFAULT 1,
    ADD CONSTRAINT jobs_priority_check CHECK (priority BETWEEN 0 AND 255);

ALTER TABLE __SCHEMA__.recurring_jobs
    ADD COLUMN priority smallint NOT NULL DEFAULT 1,
    ADD CONSTRAINT recurring_jobs_priority_check CHECK (priority BETWEEN 0 AND 255);

DROP INDEX __SCHEMA__.jobs_fetch_idx;
CREATE INDEX jobs_fetch_idx ON __SCHEMA__.jobs (queue, priority, position) WHERE state = 'enqueued';
