//! Every SQL statement of the storage, named after the `Storage` method that runs it.
//!
//! The templates name tables as `__SCHEMA__.table`; [`Sql::new`] substitutes the quoted schema
//! once per storage, and each statement is prepared once per connection (deadpool's statement
//! cache). Parameters are typed with casts so a statement prepares the same way everywhere.

use crate::options::quote_identifier;

/// Creates jobs from parallel arrays, one element per job, with their first history entry, and
/// notifies the channel once if any is Enqueued (and a channel is given: `$12` is NULL when the
/// storage's notify throttle sends the notification itself, a moment later). Ids and queue
/// positions are drawn in input order (the CTE is materialized: `nextval` runs once per row).
///
/// A job whose entry data (`$10`) is NULL was created Enqueued with no reason: its first entry
/// (Enqueued at `created_at`, its queue as data) is the row itself (`created_enqueued`,
/// migration 0006), and no history row is written.
const ENQUEUE: &str = "
WITH input AS MATERIALIZED (
    SELECT nextval('__SCHEMA__.jobs_id_seq') AS id,
           nextval('__SCHEMA__.job_positions') AS position,
           i.*
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[],
                $7::text[], $8::text[], $9::text[], $10::jsonb[])
         WITH ORDINALITY AS i(name, queue, args, state, run_at, parent_id, continue_on,
                              recurring_id, reason, data, ord)
),
inserted AS (
    INSERT INTO __SCHEMA__.jobs (id, position, name, queue, args, state, created_at, state_at,
                                 enqueued_at, run_at, parent_id, continue_on, recurring_id,
                                 created_enqueued)
    SELECT id, position, name, queue, args, state, $11, $11, $11, run_at, parent_id,
           continue_on, recurring_id, data IS NULL
    FROM input
),
history AS (
    INSERT INTO __SCHEMA__.job_history (job_id, state, at, reason, data)
    SELECT id, state, $11, reason, data FROM input WHERE data IS NOT NULL
),
notified AS (
    SELECT pg_notify($12, '')
    FROM (SELECT 1 FROM input WHERE state = 'enqueued' AND $12::text IS NOT NULL LIMIT 1) AS found
)
SELECT id FROM input WHERE (SELECT count(*) FROM notified) >= 0 ORDER BY ord";

/// Locks the parents of continuations about to be created (`FOR SHARE`: a parent cannot finish
/// until the children are committed, so the release that follows its finish sees them).
const LOCK_PARENTS: &str = "
SELECT id FROM __SCHEMA__.jobs WHERE id = ANY($1::bigint[]) ORDER BY id FOR SHARE";

/// Releases the Awaiting continuations of the given parents (`$1`, each finished at the same
/// index of `$2`) that reached a final state: Enqueued (with the parent's result) or Deleted,
/// by `continuation_decision`, at the time their parent finished; a deleted child decides its
/// own children in turn, down the chain. Children are numbered breadth-first in id order, so
/// siblings keep their creation order in the queue.
///
/// The children of the jobs it deletes are read with the statement's snapshot, taken before it
/// waited for their row locks: a continuation committed meanwhile (its enqueue holds its
/// parent `FOR SHARE` until its commit) is not among them. So the statement returns the jobs it
/// deleted (`deleted`, `deleted_at`), and the caller releases their children again with a new
/// snapshot until no job is deleted (`PostgresStorage::release_deleted`).
///
/// Every lookup is driven by the given ids (`LATERAL … OFFSET 0` keeps each one a parameterized
/// index probe): with statistics taken before a burst of completions, a plain join was planned
/// as a scan of every finished job (35–57 ms per batch of 100 at 200,000 rows, auto_explain).
const RELEASE: &str = "
WITH RECURSIVE finished AS (
    SELECT * FROM unnest($1::bigint[], $2::timestamptz[]) AS finished(id, at)
),
decided (id, parent_id, parent_state, run, at, depth) AS (
        SELECT child.id, finished.id, parent.state,
               __SCHEMA__.continuation_decision(child.continue_on, parent.state), finished.at, 1
        FROM finished
        CROSS JOIN LATERAL (
            SELECT id, continue_on FROM __SCHEMA__.jobs
            WHERE parent_id = finished.id AND state = 'awaiting'
            OFFSET 0
        ) AS child
        CROSS JOIN LATERAL (
            SELECT state FROM __SCHEMA__.jobs WHERE id = finished.id
            OFFSET 0
        ) AS parent
        WHERE parent.state IN ('succeeded', 'failed', 'deleted')
          AND __SCHEMA__.continuation_decision(child.continue_on, parent.state) IS NOT NULL
    UNION ALL
        SELECT child.id, decided.id, 'deleted',
               __SCHEMA__.continuation_decision(child.continue_on, 'deleted'), decided.at,
               decided.depth + 1
        FROM decided
        CROSS JOIN LATERAL (
            SELECT id, continue_on FROM __SCHEMA__.jobs
            WHERE parent_id = decided.id AND state = 'awaiting'
            OFFSET 0
        ) AS child
        WHERE NOT decided.run
          AND __SCHEMA__.continuation_decision(child.continue_on, 'deleted') IS NOT NULL
),
numbered AS MATERIALIZED (
    SELECT ordered.*,
           CASE WHEN ordered.run THEN nextval('__SCHEMA__.job_positions') END AS position
    FROM (SELECT * FROM decided ORDER BY depth, id) AS ordered
),
released AS (
    UPDATE __SCHEMA__.jobs AS job
    SET state = CASE WHEN numbered.run THEN 'enqueued' ELSE 'deleted' END,
        state_at = numbered.at,
        run_at = NULL,
        server_id = NULL,
        lease_until = NULL,
        position = COALESCE(numbered.position, job.position),
        enqueued_at = CASE WHEN numbered.run THEN numbered.at ELSE job.enqueued_at END,
        parent_result = CASE WHEN numbered.run AND numbered.parent_state = 'succeeded'
                             THEN parent.result ELSE job.parent_result END
    FROM numbered
    JOIN __SCHEMA__.jobs AS parent ON parent.id = numbered.parent_id
    WHERE job.id = numbered.id AND job.state = 'awaiting'
    RETURNING job.id, job.state, job.queue, numbered.parent_id, numbered.parent_state,
              numbered.at, numbered.depth
),
history AS (
    INSERT INTO __SCHEMA__.job_history (job_id, state, at, reason, data)
    SELECT id, state, at,
           CASE WHEN state = 'enqueued'
                THEN 'parent job ' || parent_id || ' is ' || initcap(parent_state)
                ELSE $4::text || ': parent job ' || parent_id || ' is ' || initcap(parent_state)
           END,
           CASE WHEN state = 'enqueued'
                THEN jsonb_build_object('queue', queue, 'parent', parent_id)
                ELSE '{}'::jsonb
           END
    FROM released ORDER BY depth, id
),
notified AS (
    SELECT pg_notify($3, '') FROM (SELECT 1 FROM released WHERE state = 'enqueued' LIMIT 1) AS found
)
SELECT count(*) FILTER (WHERE state = 'enqueued') AS count,
       COALESCE(array_agg(id) FILTER (WHERE state = 'deleted'), '{}') AS deleted,
       COALESCE(array_agg(at) FILTER (WHERE state = 'deleted'), '{}') AS deleted_at
FROM released WHERE (SELECT count(*) FROM notified) >= 0";

/// Claims up to `$2` Enqueued jobs: the head of each served queue in priority order, skipping
/// rows other fetchers hold, and marks them Processing under the server's lease. The update
/// finds the locked rows by `ctid` (a locked row cannot move), a TID scan whatever the
/// estimates: joined on `id`, the generic plan (`LIMIT $2` guessed at a tenth of the table)
/// was a hash join over a sequential scan of every job, 124 ms at 200,000 rows.
///
/// No history row is written: the attempt's Processing entry is the row itself while it runs
/// (`state_at`, `server_id`, `retry_count`), and goes into the history row of the state that
/// ends the attempt (columns `attempt_at` and `attempt_data`, built by the function
/// `attempt_data()`: migration 0005).
const FETCH: &str = "
WITH picked AS MATERIALIZED (
    SELECT job.ctid
    FROM unnest($1::text[]) WITH ORDINALITY AS queue_list(name, priority)
    CROSS JOIN LATERAL (
        SELECT ctid, position
        FROM __SCHEMA__.jobs
        WHERE state = 'enqueued' AND queue = queue_list.name
        ORDER BY position
        LIMIT $2
        FOR NO KEY UPDATE SKIP LOCKED
    ) AS job
    ORDER BY queue_list.priority, job.position
    LIMIT $2
),
claimed AS (
    UPDATE __SCHEMA__.jobs AS job
    SET state = 'processing', state_at = $4, server_id = $3, lease_until = $5, run_at = NULL
    WHERE job.ctid = ANY (ARRAY(SELECT ctid FROM picked))
    RETURNING job.id, job.name, job.queue, job.args, job.retry_count, job.created_at,
              job.enqueued_at, job.parent_id, job.parent_result,
              array_position($1::text[], job.queue) AS priority, job.position
)
SELECT id, name, queue, args, retry_count, created_at, enqueued_at, parent_id, parent_result
FROM claimed ORDER BY priority, position";

/// Applies a batch of outcomes, each only where the job is still Processing under the
/// completion's server: state, history, retry count, result and error, hourly statistics.
/// Rows are locked in id order so concurrent batches cannot deadlock.
///
/// A success (no reason) writes no history row: its entry and its attempt's Processing entry
/// stay in the row (`succeeded_data` without the result, `started_at`, and the row keeps
/// `server_id`; migration 0006) until a delete or requeue writes them out.
const COMPLETE: &str = "
WITH input AS MATERIALIZED (
    SELECT *
    FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[], $5::text[],
                $6::jsonb[], $7::timestamptz[], $8::boolean[])
         AS input(id, server_id, at, state, reason, data, run_at, failed)
    ORDER BY id
),
held AS (
    -- One primary-key probe per outcome, in id order (`LATERAL` with a lock is never
    -- flattened into a join, so stale statistics cannot turn it into a scan of every
    -- Processing job per outcome). Carries the input's columns, so the update below joins
    -- nothing but the locked rows.
    SELECT job.id, input.state, input.at, input.reason, input.data, input.run_at, input.failed,
           job.state_at AS started_at, job.server_id, job.retry_count
    FROM input
    CROSS JOIN LATERAL (
        SELECT id, state, server_id, state_at, retry_count FROM __SCHEMA__.jobs
        WHERE id = input.id
        OFFSET 0
        FOR NO KEY UPDATE
    ) AS job
    WHERE job.state = 'processing' AND job.server_id = input.server_id
),
completed AS (
    UPDATE __SCHEMA__.jobs AS job
    SET state = held.state,
        state_at = held.at,
        run_at = held.run_at,
        server_id = CASE WHEN held.in_row THEN job.server_id END,
        lease_until = NULL,
        enqueued_at = CASE WHEN held.state = 'enqueued' THEN held.at ELSE job.enqueued_at END,
        retry_count = job.retry_count + CASE WHEN held.failed THEN 1 ELSE 0 END,
        result = CASE WHEN held.state = 'succeeded' THEN held.data -> 'result'
                      ELSE job.result END,
        error = COALESCE(held.data -> 'error', job.error),
        succeeded_data = CASE WHEN held.in_row THEN held.data - 'result' END,
        started_at = CASE WHEN held.in_row THEN held.started_at END
    FROM (SELECT *, state = 'succeeded' AND reason IS NULL AS in_row FROM held) AS held
    WHERE job.id = held.id
    RETURNING job.id, held.state, held.at, held.reason, held.data, held.failed, held.in_row,
              held.started_at, held.server_id, held.retry_count
),
history AS (
    INSERT INTO __SCHEMA__.job_history (job_id, state, at, reason, data, attempt_at, attempt_data)
    SELECT id, state, at, reason, data,
           started_at, __SCHEMA__.attempt_data(server_id, retry_count)
    FROM completed WHERE NOT in_row ORDER BY id
),
counted AS (
    INSERT INTO __SCHEMA__.stats AS stat (hour, shard, succeeded, failed)
    SELECT date_trunc('hour', at, 'UTC'), (pg_backend_pid() % 16)::smallint,
           count(*) FILTER (WHERE state = 'succeeded'), count(*) FILTER (WHERE failed)
    FROM completed
    WHERE state = 'succeeded' OR failed
    GROUP BY 1
    ORDER BY 1
    ON CONFLICT (hour, shard) DO UPDATE
    SET succeeded = stat.succeeded + excluded.succeeded, failed = stat.failed + excluded.failed
),
notified AS (
    SELECT pg_notify($9, '') FROM (SELECT 1 FROM completed WHERE state = 'enqueued' LIMIT 1) AS found
)
SELECT id FROM completed WHERE (SELECT count(*) FROM notified) >= 0";

/// Extends the leases `$1` still holds; returns the ids it holds.
const KEEP_ALIVE: &str = "
WITH held AS (
    SELECT id FROM __SCHEMA__.jobs
    WHERE id = ANY($2::bigint[]) AND state = 'processing' AND server_id = $1
    ORDER BY id
    FOR NO KEY UPDATE
)
UPDATE __SCHEMA__.jobs AS job SET lease_until = $3
FROM held WHERE job.id = held.id
RETURNING job.id";

/// Moves a job to Deleted unless it already is. Returns its previous state (no row: no job).
fn delete_sql() -> String {
    manual_change_sql("deleted", "", "'{}'::jsonb", "SELECT state FROM target")
}

/// Moves a job to the tail of its queue unless it is Enqueued already. Returns its previous
/// state (no row: no job).
fn requeue_sql() -> String {
    manual_change_sql(
        "enqueued",
        ", position = nextval('__SCHEMA__.job_positions'), enqueued_at = $3",
        "jsonb_build_object('queue', changed.queue)",
        ", notified AS (
             SELECT pg_notify($4, '') FROM changed
         )
         SELECT state FROM target WHERE (SELECT count(*) FROM notified) >= 0",
    )
}

/// A manual state change (delete, requeue) of job `$1` to `state` with reason `$2` at `$3`,
/// unless it is in that state already: `set` adds to the row's update, `data` is the new
/// entry's data, `tail` ends the statement (`, more AS (…)` CTEs, then the final `SELECT`).
///
/// The history row of the new state carries the Processing entry of the attempt it ends (a
/// running job's, from the row: migration 0005). A Succeeded job's own entry and its
/// attempt's, held by the row (migration 0006), are written out first, as a history row of
/// their own.
fn manual_change_sql(state: &str, set: &str, data: &str, tail: &str) -> String {
    format!(
        "WITH target AS (
             SELECT id, state, state_at, server_id, retry_count, result, succeeded_data, started_at
             FROM __SCHEMA__.jobs WHERE id = $1 FOR NO KEY UPDATE
         ),
         changed AS (
             UPDATE __SCHEMA__.jobs AS job
             SET state = '{state}', state_at = $3, run_at = NULL, server_id = NULL,
                 lease_until = NULL, succeeded_data = NULL, started_at = NULL{set}
             FROM target
             WHERE job.id = target.id AND target.state <> '{state}'
             RETURNING job.id, job.queue
         ),
         history AS (
             INSERT INTO __SCHEMA__.job_history
                 (job_id, state, at, reason, data, attempt_at, attempt_data)
             SELECT job_id, state, at, reason, data, attempt_at, attempt_data
             FROM (
                     SELECT 0 AS ord, target.id AS job_id, 'succeeded' AS state,
                            target.state_at AS at, NULL::text AS reason,
                            __SCHEMA__.succeeded_entry_data(target.succeeded_data, target.result)
                                AS data,
                            target.started_at AS attempt_at,
                            __SCHEMA__.attempt_data(target.server_id, target.retry_count)
                                AS attempt_data
                     FROM target WHERE target.succeeded_data IS NOT NULL
                 UNION ALL
                     SELECT 1, changed.id, '{state}', $3, $2, {data},
                            CASE WHEN target.state = 'processing' THEN target.state_at END,
                            CASE WHEN target.state = 'processing'
                                 THEN __SCHEMA__.attempt_data(target.server_id, target.retry_count)
                            END
                     FROM changed, target
             ) AS entries
             ORDER BY ord
         )
         {tail}"
    )
}

/// Puts back to Awaiting the continuations a requeued parent's deletion had deleted (their last
/// history reason starts with `$3`), down the chain.
const REARM: &str = "
WITH RECURSIVE armed (id, depth) AS (
        SELECT child.id, 1
        FROM __SCHEMA__.jobs AS child
        WHERE child.parent_id = $1 AND child.state = 'deleted'
          AND starts_with((SELECT reason FROM __SCHEMA__.job_history AS h
                           WHERE h.job_id = child.id ORDER BY h.seq DESC LIMIT 1), $3)
    UNION ALL
        SELECT child.id, armed.depth + 1
        FROM armed
        JOIN __SCHEMA__.jobs AS child ON child.parent_id = armed.id
        WHERE child.state = 'deleted'
          AND starts_with((SELECT reason FROM __SCHEMA__.job_history AS h
                           WHERE h.job_id = child.id ORDER BY h.seq DESC LIMIT 1), $3)
),
rearmed AS (
    UPDATE __SCHEMA__.jobs AS job
    SET state = 'awaiting', state_at = $2, run_at = NULL, server_id = NULL, lease_until = NULL
    FROM armed
    WHERE job.id = armed.id AND job.state = 'deleted'
    RETURNING job.id, job.parent_id, armed.depth
),
history AS (
    INSERT INTO __SCHEMA__.job_history (job_id, state, at, reason, data)
    SELECT id, 'awaiting', $2, 'parent job ' || parent_id || ' was requeued',
           jsonb_build_object('parent', parent_id)
    FROM rearmed ORDER BY depth, id
)
SELECT count(*) FROM rearmed";

/// Columns of a job record, for `job` and `list_jobs` (`job` is the row's alias).
const RECORD_COLUMNS: &str = "
    job.id, job.name, job.queue, job.args, job.state, job.created_at, job.state_at, job.run_at,
    job.retry_count,
    -- A Succeeded row keeps the server of its entry (migration 0006): not a lease holder.
    CASE WHEN job.state = 'processing' THEN job.server_id END AS server_id,
    job.parent_id, job.continue_on, job.recurring_id,
    job.result, job.error,
    ARRAY(SELECT child.id FROM __SCHEMA__.jobs AS child
          WHERE child.parent_id = job.id ORDER BY child.id) AS children";

/// The jobs `$1` names that exist, in its order, with their whole histories (one snapshot: each
/// record and its history agree). Processing entries are not rows of their own (migration
/// 0005): each comes from the history row of the state that ended its attempt, and the running
/// attempt's from the job row; the first entry of a job created Enqueued with no reason, and a
/// Succeeded job's entry with its attempt's, come from the job row too (migration 0006).
fn jobs_sql() -> String {
    format!(
        "SELECT {RECORD_COLUMNS},
                history.states, history.ats, history.reasons, history.data
         FROM __SCHEMA__.jobs AS job
         LEFT JOIN LATERAL (
             SELECT array_agg(e.state ORDER BY e.seq, e.step) AS states,
                    array_agg(e.at ORDER BY e.seq, e.step) AS ats,
                    array_agg(e.reason ORDER BY e.seq, e.step) AS reasons,
                    array_agg(e.data ORDER BY e.seq, e.step) AS data
             FROM (
                     -- Created Enqueued with no reason: the first entry (history rows have
                     -- `seq` from 1).
                     SELECT 0 AS seq, 1 AS step, 'enqueued' AS state, job.created_at AS at,
                            NULL::text AS reason, jsonb_build_object('queue', job.queue) AS data
                     WHERE job.created_enqueued
                 UNION ALL
                     -- The Processing entry of the attempt a history row ended comes first.
                     SELECT h.seq, 0, 'processing', h.attempt_at, NULL, h.attempt_data
                     FROM __SCHEMA__.job_history AS h
                     WHERE h.job_id = job.id AND h.attempt_at IS NOT NULL
                 UNION ALL
                     SELECT h.seq, 1, h.state, h.at, h.reason, h.data
                     FROM __SCHEMA__.job_history AS h WHERE h.job_id = job.id
                 UNION ALL
                     -- The running attempt is the row itself; so is a success with the attempt
                     -- that succeeded, until a delete or requeue writes them out.
                     SELECT 9223372036854775807, 0, 'processing',
                            CASE WHEN job.state = 'processing' THEN job.state_at
                                 ELSE job.started_at END,
                            NULL, __SCHEMA__.attempt_data(job.server_id, job.retry_count)
                     WHERE job.state = 'processing' OR job.succeeded_data IS NOT NULL
                 UNION ALL
                     SELECT 9223372036854775807, 1, 'succeeded', job.state_at, NULL,
                            __SCHEMA__.succeeded_entry_data(job.succeeded_data, job.result)
                     WHERE job.succeeded_data IS NOT NULL
             ) AS e
         ) AS history ON true
         WHERE job.id = ANY($1::bigint[])
         ORDER BY array_position($1::bigint[], job.id)"
    )
}

/// Moves due Scheduled jobs to the tail of their queues, earliest first.
const PROMOTE_SCHEDULED: &str = "
WITH due AS (
    SELECT id FROM __SCHEMA__.jobs
    WHERE state = 'scheduled' AND run_at <= $1
    ORDER BY run_at, id
    LIMIT $2
    FOR NO KEY UPDATE SKIP LOCKED
),
numbered AS MATERIALIZED (
    SELECT id, nextval('__SCHEMA__.job_positions') AS position FROM due
),
promoted AS (
    UPDATE __SCHEMA__.jobs AS job
    SET state = 'enqueued', state_at = $1, run_at = NULL, position = numbered.position,
        enqueued_at = $1
    FROM numbered
    WHERE job.id = numbered.id
    RETURNING job.id, job.queue, numbered.position
),
history AS (
    INSERT INTO __SCHEMA__.job_history (job_id, state, at, reason, data)
    SELECT id, 'enqueued', $1, 'scheduled time reached', jsonb_build_object('queue', queue)
    FROM promoted ORDER BY position
),
notified AS (
    SELECT pg_notify($3, '') FROM (SELECT 1 FROM promoted LIMIT 1) AS found
)
SELECT count(*) FROM promoted WHERE (SELECT count(*) FROM notified) >= 0";

/// Puts Processing jobs whose lease lapsed back at their original place in their queue.
const RESCUE_EXPIRED: &str = "
WITH expired AS (
    SELECT id, state, state_at, server_id, retry_count FROM __SCHEMA__.jobs
    WHERE state = 'processing' AND (lease_until IS NULL OR lease_until < $1)
    -- The order of `jobs_state_idx`: only Processing jobs are read (ordered by id, the plan
    -- walked the primary key over every finished job, 17-28 ms per round).
    ORDER BY state_at, id
    LIMIT $2
    FOR NO KEY UPDATE SKIP LOCKED
),
rescued AS (
    UPDATE __SCHEMA__.jobs AS job
    SET state = 'enqueued', state_at = $1, server_id = NULL, lease_until = NULL, run_at = NULL,
        enqueued_at = $1
    FROM expired
    WHERE job.id = expired.id
    RETURNING job.id, expired.state, expired.state_at, expired.server_id, expired.retry_count
),
history AS (
    INSERT INTO __SCHEMA__.job_history (job_id, state, at, reason, data, attempt_at, attempt_data)
    SELECT id, 'enqueued', $1,
           'lease expired: server ' || coalesce(server_id, '') || ' stopped responding',
           '{}'::jsonb,
           CASE WHEN rescued.state = 'processing' THEN rescued.state_at END,
           CASE WHEN rescued.state = 'processing'
                THEN __SCHEMA__.attempt_data(rescued.server_id, rescued.retry_count) END
    FROM rescued ORDER BY id
),
notified AS (
    SELECT pg_notify($3, '') FROM (SELECT 1 FROM rescued LIMIT 1) AS found
)
SELECT count(*) FROM rescued WHERE (SELECT count(*) FROM notified) >= 0";

/// Deletes up to `$3` expired jobs and their history: Succeeded and Deleted jobs that finished
/// before `$1` (oldest first), then Failed ones before `$2` if given.
const PRUNE: &str = "
WITH succeeded AS (
    SELECT id, state_at FROM __SCHEMA__.jobs
    WHERE state = 'succeeded' AND state_at < $1
    ORDER BY state_at, id LIMIT $3
    FOR UPDATE SKIP LOCKED
),
deleted AS (
    SELECT id, state_at FROM __SCHEMA__.jobs
    WHERE state = 'deleted' AND state_at < $1
    ORDER BY state_at, id LIMIT $3
    FOR UPDATE SKIP LOCKED
),
failed AS (
    SELECT id, state_at FROM __SCHEMA__.jobs
    WHERE $2::timestamptz IS NOT NULL AND state = 'failed' AND state_at < $2
    ORDER BY state_at, id LIMIT $3
    FOR UPDATE SKIP LOCKED
),
doomed AS (
    SELECT id FROM (
        SELECT id, state_at, 0 AS rank FROM succeeded
        UNION ALL SELECT id, state_at, 0 FROM deleted
        UNION ALL SELECT id, state_at, 1 FROM failed
    ) AS candidates
    ORDER BY rank, state_at, id
    LIMIT $3
),
removed AS (
    DELETE FROM __SCHEMA__.jobs WHERE id IN (SELECT id FROM doomed) RETURNING id
),
history AS (
    DELETE FROM __SCHEMA__.job_history WHERE job_id IN (SELECT id FROM removed)
)
SELECT count(*) FROM removed";

/// Takes the leadership if it is free, expired, or already `$1`'s. A row back means leader.
const TRY_LEAD: &str = "
INSERT INTO __SCHEMA__.leader AS leader (role, server_id, expires_at)
VALUES ('maintenance', $1, $3)
ON CONFLICT (role) DO UPDATE
SET server_id = excluded.server_id, expires_at = excluded.expires_at
WHERE leader.server_id = excluded.server_id OR leader.expires_at < $2
RETURNING server_id";

const RESIGN: &str = "DELETE FROM __SCHEMA__.leader WHERE role = 'maintenance' AND server_id = $1";

const REGISTER_SERVER: &str = "
INSERT INTO __SCHEMA__.servers (id, queues, workers, started_at, heartbeat_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE
SET queues = excluded.queues, workers = excluded.workers, started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at";

const HEARTBEAT: &str = "UPDATE __SCHEMA__.servers SET heartbeat_at = $2 WHERE id = $1";

const UNREGISTER_SERVER: &str = "DELETE FROM __SCHEMA__.servers WHERE id = $1";

const REMOVE_DEAD_SERVERS: &str = "DELETE FROM __SCHEMA__.servers WHERE heartbeat_at < $1";

const SERVERS: &str = "
SELECT id, queues, workers, started_at, heartbeat_at FROM __SCHEMA__.servers ORDER BY id";

/// Creates or replaces a recurring job, keeping `created_at` of an existing one.
const UPSERT_RECURRING: &str = "
INSERT INTO __SCHEMA__.recurring_jobs (id, cron, time_zone, job_name, queue, args, misfire,
    skip_if_running, paused, next_run, last_run, last_job_id, last_error, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (id) DO UPDATE
SET cron = excluded.cron, time_zone = excluded.time_zone, job_name = excluded.job_name,
    queue = excluded.queue, args = excluded.args, misfire = excluded.misfire,
    skip_if_running = excluded.skip_if_running, paused = excluded.paused,
    next_run = excluded.next_run, last_run = excluded.last_run,
    last_job_id = excluded.last_job_id, last_error = excluded.last_error";

/// Columns of a recurring job with its last job's current state.
const RECURRING_COLUMNS: &str = "
    recurring.id, recurring.cron, recurring.time_zone, recurring.job_name, recurring.queue,
    recurring.args, recurring.misfire, recurring.skip_if_running, recurring.paused,
    recurring.next_run, recurring.last_run, recurring.last_job_id, recurring.last_error,
    recurring.created_at, last_job.state AS last_job_state";

fn recurring_sql(filter: &str) -> String {
    format!(
        "SELECT {RECURRING_COLUMNS}
         FROM __SCHEMA__.recurring_jobs AS recurring
         LEFT JOIN __SCHEMA__.jobs AS last_job ON last_job.id = recurring.last_job_id
         {filter}"
    )
}

const REMOVE_RECURRING: &str = "DELETE FROM __SCHEMA__.recurring_jobs WHERE id = $1";

const SET_RECURRING_PAUSED: &str = "UPDATE __SCHEMA__.recurring_jobs SET paused = $2 WHERE id = $1";

/// The compare-and-set of a recurring claim: moves `next_run` only if it is still `$4`.
const CLAIM_RECURRING: &str = "
UPDATE __SCHEMA__.recurring_jobs
SET next_run = $2, last_error = $3
WHERE id = $1 AND next_run IS NOT DISTINCT FROM $4
RETURNING id";

const RECORD_RECURRING_RUN: &str = "
UPDATE __SCHEMA__.recurring_jobs SET last_run = $2, last_job_id = $3 WHERE id = $1";

/// Counts per state but Enqueued, Enqueued per queue (their sum is the Enqueued count),
/// retries, recurring jobs and servers, in one trip. Each part reads the index that holds its
/// jobs (migration 0007): `jobs_state_idx` all but the Enqueued, `jobs_fetch_idx` those.
const COUNTS: &str = "
SELECT 'state' AS kind, state AS key, count(*) AS count FROM __SCHEMA__.jobs
WHERE state <> 'enqueued' GROUP BY state
UNION ALL
SELECT 'queue', queue, count(*) FROM __SCHEMA__.jobs WHERE state = 'enqueued' GROUP BY queue
UNION ALL
SELECT 'retries', '', count(*) FROM __SCHEMA__.jobs WHERE state = 'scheduled' AND retry_count > 0
UNION ALL
SELECT 'recurring', '', count(*) FROM __SCHEMA__.recurring_jobs
UNION ALL
SELECT 'servers', '', count(*) FROM __SCHEMA__.servers";

const STATISTICS: &str = "
SELECT hour, sum(succeeded)::bigint AS succeeded, sum(failed)::bigint AS failed
FROM __SCHEMA__.stats
WHERE hour >= $1 AND hour < $2
GROUP BY hour
ORDER BY hour";

/// The statements of one schema.
#[derive(Debug)]
pub(crate) struct Sql {
    quoted_schema: String,
    pub(crate) enqueue: String,
    pub(crate) lock_parents: String,
    pub(crate) release: String,
    pub(crate) fetch: String,
    pub(crate) complete: String,
    pub(crate) keep_alive: String,
    pub(crate) delete: String,
    pub(crate) requeue: String,
    pub(crate) rearm: String,
    pub(crate) jobs: String,
    pub(crate) promote_scheduled: String,
    pub(crate) rescue_expired: String,
    pub(crate) prune: String,
    pub(crate) try_lead: String,
    pub(crate) resign: String,
    pub(crate) register_server: String,
    pub(crate) heartbeat: String,
    pub(crate) unregister_server: String,
    pub(crate) remove_dead_servers: String,
    pub(crate) servers: String,
    pub(crate) upsert_recurring: String,
    pub(crate) recurring: String,
    pub(crate) list_recurring: String,
    pub(crate) due_recurring: String,
    pub(crate) remove_recurring: String,
    pub(crate) set_recurring_paused: String,
    pub(crate) claim_recurring: String,
    pub(crate) record_recurring_run: String,
    pub(crate) counts: String,
    pub(crate) statistics: String,
}

impl Sql {
    /// The statements for `schema` (a validated identifier).
    pub(crate) fn new(schema: &str) -> Sql {
        let quoted_schema = quote_identifier(schema);
        let t = |template: &str| template.replace("__SCHEMA__", &quoted_schema);
        Sql {
            enqueue: t(ENQUEUE),
            lock_parents: t(LOCK_PARENTS),
            release: t(RELEASE),
            fetch: t(FETCH),
            complete: t(COMPLETE),
            keep_alive: t(KEEP_ALIVE),
            delete: t(&delete_sql()),
            requeue: t(&requeue_sql()),
            rearm: t(REARM),
            jobs: t(&jobs_sql()),
            promote_scheduled: t(PROMOTE_SCHEDULED),
            rescue_expired: t(RESCUE_EXPIRED),
            prune: t(PRUNE),
            try_lead: t(TRY_LEAD),
            resign: t(RESIGN),
            register_server: t(REGISTER_SERVER),
            heartbeat: t(HEARTBEAT),
            unregister_server: t(UNREGISTER_SERVER),
            remove_dead_servers: t(REMOVE_DEAD_SERVERS),
            servers: t(SERVERS),
            upsert_recurring: t(UPSERT_RECURRING),
            recurring: t(&recurring_sql("WHERE recurring.id = $1")),
            list_recurring: t(&recurring_sql("ORDER BY recurring.id")),
            due_recurring: t(&recurring_sql(
                "WHERE NOT recurring.paused AND recurring.next_run <= $1 \
                 ORDER BY recurring.id LIMIT $2",
            )),
            remove_recurring: t(REMOVE_RECURRING),
            set_recurring_paused: t(SET_RECURRING_PAUSED),
            claim_recurring: t(CLAIM_RECURRING),
            record_recurring_run: t(RECORD_RECURRING_RUN),
            counts: t(COUNTS),
            statistics: t(STATISTICS),
            quoted_schema,
        }
    }

    /// A page of `list_jobs`, for the filters present (one statement per combination, each
    /// prepared once, so every plan can use the indexes its filters allow). `$1` offset and
    /// `$2` limit come first; filter parameters follow in the order of [`ListFilters`].
    pub(crate) fn list_jobs(&self, filters: ListFilters) -> String {
        let mut conditions = Vec::new();
        let mut next = 3;
        let mut param = |condition: &str| {
            let text = condition.replace('?', &format!("${next}"));
            next += 1;
            text
        };
        if filters.state {
            conditions.push(param("job.state = ?::text"));
        }
        if filters.queue {
            conditions.push(param("job.queue = ?::text"));
        }
        if filters.name {
            conditions.push(param("job.name ILIKE ?::text"));
        }
        if filters.args {
            conditions.push(param("job.args ILIKE ?::text"));
        }
        if filters.retries_only {
            conditions.push("job.state = 'scheduled' AND job.retry_count > 0".to_owned());
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        // Scheduled jobs soonest run first, every other list newest state change first.
        let (sort, direction) = if filters.by_run_time {
            ("run_at", "ASC")
        } else {
            ("state_at", "DESC")
        };
        format!(
            "WITH matching AS MATERIALIZED (
                 SELECT job.id, job.{sort} FROM {schema}.jobs AS job {filter}
             ),
             page AS (
                 SELECT id FROM matching ORDER BY {sort} {direction}, id {direction}
                 OFFSET $1 LIMIT $2
             )
             SELECT (SELECT count(*) FROM matching) AS total, {columns}
             FROM (SELECT 1) AS one
             LEFT JOIN (page JOIN {schema}.jobs AS job ON job.id = page.id) ON true
             ORDER BY job.{sort} {direction}, job.id {direction}",
            schema = self.quoted_schema,
            columns = RECORD_COLUMNS.replace("__SCHEMA__", &self.quoted_schema),
        )
    }
}

/// Which `list_jobs` filters are present.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ListFilters {
    pub(crate) state: bool,
    pub(crate) queue: bool,
    pub(crate) name: bool,
    pub(crate) args: bool,
    pub(crate) retries_only: bool,
    /// Sorted by run time ([`jobs::storage::JobQuery::by_run_time`]).
    pub(crate) by_run_time: bool,
}
