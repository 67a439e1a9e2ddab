//! Reading jobs back with their whole history.

use jobs::{JobId, JobRecord, Result};

use crate::database::{Database, Template};
use crate::row;

/// Columns of a job record, for `job` and `list_jobs` (`job` is the row's alias).
pub(crate) const RECORD_COLUMNS: &str = "
    job.id, job.name, job.queue, job.priority, job.unique_key, job.mutex, job.args, job.state, job.created_at, job.state_at, job.run_at,
    job.retry_count,
    -- A Succeeded row keeps the server of its entry (migration 0006): not a lease holder.
    CASE WHEN job.state = 'processing' THEN job.server_id END AS server_id,
    job.parent_id, job.continue_on, job.recurring_id,
    job.result, job.error,
    ARRAY(SELECT child.id FROM __SCHEMA__.jobs AS child
          WHERE child.parent_id = job.id ORDER BY child.id) AS children";

/// The jobs `$1` names that exist, in its order, with their whole histories (one snapshot: each
/// record and its history agree), read from `job_entries`, the view that gathers every entry
/// wherever it is stored (migration 0008, and docs/storage.md).
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
             FROM __SCHEMA__.job_entries AS e
             WHERE e.job_id = job.id
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
