-- A job created Enqueued with no reason (every `enqueue`, but not a recurring job's firing, a
-- scheduled job or a continuation) writes no history row: its first entry, Enqueued at
-- `created_at` with its queue as data, is read from the job row, marked by `created_enqueued`.
-- The enqueue's history row was a third of the rows and index entries an enqueue writes
-- (`enqueue-batch` benchmark, PostgreSQL CPU per 1,000 jobs: see the README's Performance).
-- Jobs created before keep their stored row (the column defaults to false).
ALTER TABLE __SCHEMA__.jobs
    ADD COLUMN created_enqueued boolean NOT NULL DEFAULT false;
