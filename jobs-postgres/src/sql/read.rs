//! Reading jobs back with their whole history.

use jobs::{JobId, JobRecord, Result};

use crate::database::{Database, Template};
use crate::row;

/// Columns of a job record, for `job` and `list_jobs` (`job` is the row's alias).
pub(crate) const RECORD_COLUMNS: &str = "
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
pub(crate) fn jobs_sql() -> String {
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

/// [`Storage::job`](jobs::Storage::job) on PostgreSQL.
pub(crate) async fn job(storage: &Database, id: JobId) -> Result<Option<JobRecord>> {
    Ok(jobs(storage, &[id]).await?.pop())
}

/// [`Storage::jobs`](jobs::Storage::jobs) on PostgreSQL.
pub(crate) async fn jobs(storage: &Database, ids: &[JobId]) -> Result<Vec<JobRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let raw: Vec<i64> = ids.iter().map(|id| id.0).collect();
    let rows = storage
        .query("jobs", &storage.statement(&JOBS), &[&raw])
        .await?;
    Ok(rows
        .iter()
        .map(|row| row::job_record(row, true))
        .collect::<Result<Vec<_>, _>>()?)
}

/// Jobs by id with their histories (see `jobs_sql`).
pub(crate) const JOBS: Template = Template::built("jobs", jobs_sql);
