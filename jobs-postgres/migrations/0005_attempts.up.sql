-- Processing entries without history rows of their own. A fetch writes no history: while an
-- attempt runs, its Processing entry is the job row itself (`state_at` is when it started,
-- `server_id`, `retry_count + 1` the attempt), and the statement that ends the attempt (the
-- completion, a delete or requeue, the lease rescue) stores that entry beside its own, in
-- `attempt_at` and `attempt_data`. One history row per attempt instead of two: the fetch is the
-- statement every job passes through, and a history row written by it was about a fifth of
-- the database's work per job.

-- The data of a Processing entry, for every statement that writes or reads one.
CREATE FUNCTION __SCHEMA__.attempt_data(server_id text, retry_count integer)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT jsonb_build_object('server', server_id, 'attempt', retry_count + 1)
$$;

ALTER TABLE __SCHEMA__.job_history
    ADD COLUMN attempt_at   timestamptz,
    ADD COLUMN attempt_data jsonb;

-- The running attempts' Processing rows: from now on read from their jobs rows.
DELETE FROM __SCHEMA__.job_history AS h
USING __SCHEMA__.jobs AS job
WHERE job.id = h.job_id
  AND job.state = 'processing'
  AND h.state = 'processing'
  AND h.seq = (SELECT max(last.seq) FROM __SCHEMA__.job_history AS last WHERE last.job_id = job.id);
