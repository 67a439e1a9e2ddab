-- A job's history in one place to read and one function per entry that SQL builds.
--
-- Entries are stored where writing them is cheapest (see docs/storage.md): rows of
-- `job_history` (with the Processing entry of the attempt a row ended in `attempt_at` and
-- `attempt_data`), and three entries held by the job row itself (a plain enqueue's first
-- Enqueued entry, the running attempt, a success with its attempt). `job_entries` is the one
-- reader of all of them: a job's history is `SELECT ... FROM job_entries WHERE job_id = $1
-- ORDER BY seq, step`.
--
-- The data of an entry is the JSON of `jobs::StateData`. Entries a worker reports carry data
-- built in Rust; the few a statement builds by itself (promotion, continuation release and
-- re-arming, requeue, the row-held entries) call the functions below, each mirroring one
-- `StateData` constructor (`StateData::enqueued`, `::awaiting`, `::processing`). The test
-- `sql_entry_data_matches_rust` in `jobs-postgres/tests/postgres.rs` holds each to its Rust
-- counterpart, so a renamed field fails a test instead of a reader.

-- `StateData::enqueued(queue, parent)`: {"queue": ..., "parent": ...}, no key for a NULL.
CREATE FUNCTION __SCHEMA__.enqueued_data(queue text, parent_id bigint)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN parent_id IS NULL THEN jsonb_build_object('queue', queue)
                ELSE jsonb_build_object('queue', queue, 'parent', parent_id) END
$$;

-- `StateData::awaiting(parent)`: {"parent": ...}.
CREATE FUNCTION __SCHEMA__.awaiting_data(parent_id bigint)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT jsonb_build_object('parent', parent_id)
$$;

-- (`attempt_data(server_id, retry_count)` from 0005 is `StateData::processing`, and
-- `succeeded_entry_data(succeeded_data, result)` from 0006 puts a row-held success's result
-- back into its data.)

-- Every entry of every job, in the order `(seq, step)`: history rows from `seq` 1; a plain
-- enqueue's first entry before them (`seq` 0); the row-held running attempt or success after
-- them (`seq` the largest bigint); within one `seq`, an attempt's Processing entry (`step` 0)
-- before the entry that ended it (`step` 1).
CREATE VIEW __SCHEMA__.job_entries AS
        SELECT job.id AS job_id, 0::bigint AS seq, 1 AS step, 'enqueued'::text AS state,
               job.created_at AS at, NULL::text AS reason,
               __SCHEMA__.enqueued_data(job.queue, NULL) AS data
        FROM __SCHEMA__.jobs AS job
        WHERE job.created_enqueued
    UNION ALL
        SELECT h.job_id, h.seq, 0, 'processing', h.attempt_at, NULL, h.attempt_data
        FROM __SCHEMA__.job_history AS h
        WHERE h.attempt_at IS NOT NULL
    UNION ALL
        SELECT h.job_id, h.seq, 1, h.state, h.at, h.reason, h.data
        FROM __SCHEMA__.job_history AS h
    UNION ALL
        SELECT job.id, 9223372036854775807, 0, 'processing',
               CASE WHEN job.state = 'processing' THEN job.state_at ELSE job.started_at END,
               NULL, __SCHEMA__.attempt_data(job.server_id, job.retry_count)
        FROM __SCHEMA__.jobs AS job
        WHERE job.state = 'processing' OR job.succeeded_data IS NOT NULL
    UNION ALL
        SELECT job.id, 9223372036854775807, 1, 'succeeded', job.state_at, NULL,
               __SCHEMA__.succeeded_entry_data(job.succeeded_data, job.result)
        FROM __SCHEMA__.jobs AS job
        WHERE job.succeeded_data IS NOT NULL;
