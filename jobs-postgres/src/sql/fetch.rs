//! Claiming Enqueued jobs: one `SKIP LOCKED` statement in the served queues' order.

use jobs::storage::{FetchRequest, FetchedJob};
use jobs::{JobId, Result};
use tokio_postgres::Row;

use super::{big, ts};
use crate::database::{Database, Template};
use crate::error::{describe, PostgresError};
use crate::row::{column, retry_count};

/// Claims up to `$2` Enqueued jobs that are not gated (a gated job, with a mutex or kind
/// limits, waits for a flow-controlled fetch: `sql::flow`): the head of each served queue (lowest job priority, then
/// position: `jobs_fetch_idx`'s order), the queues in the order given, skipping
/// rows other fetchers hold, and marks them Processing under the server's lease. The update
/// finds the locked rows by `ctid` (a locked row cannot move), a TID scan whatever the
/// estimates: joined on `id`, the generic plan (`LIMIT $2` guessed at a tenth of the table)
/// was a hash join over a sequential scan of every job, 124 ms at 200,000 rows.
///
/// No history row is written: the attempt's Processing entry is the row itself while it runs
/// (`state_at`, `server_id`, `retry_count`), and goes into the history row of the state that
/// ends the attempt (columns `attempt_at` and `attempt_data`, built by the function
/// `attempt_data()`: migration 0005).
pub(crate) const FETCH: Template = Template::text(
    "fetch",
    "
WITH picked AS MATERIALIZED (
    SELECT job.ctid
    FROM unnest($1::text[]) WITH ORDINALITY AS queue_list(name, rank)
    CROSS JOIN LATERAL (
        SELECT ctid, priority, position
        FROM __SCHEMA__.jobs
        WHERE state = 'enqueued' AND queue = queue_list.name AND NOT gated
        ORDER BY priority, position
        LIMIT $2
        FOR NO KEY UPDATE SKIP LOCKED
    ) AS job
    ORDER BY queue_list.rank, job.priority, job.position
    LIMIT $2
),
claimed AS (
    UPDATE __SCHEMA__.jobs AS job
    SET state = 'processing', state_at = $4, server_id = $3, lease_until = $5, run_at = NULL
    WHERE job.ctid = ANY (ARRAY(SELECT ctid FROM picked))
    RETURNING job.id, job.name, job.queue, job.args, job.retry_count, job.created_at,
              job.enqueued_at, job.parent_id, job.parent_result,
              array_position($1::text[], job.queue) AS rank, job.priority, job.position
)
SELECT id, name, queue, args, retry_count, created_at, enqueued_at, parent_id, parent_result
FROM claimed ORDER BY rank, priority, position",
);

/// [`Storage::fetch`](jobs::Storage::fetch) on PostgreSQL.
pub(crate) async fn fetch(
    storage: &Database,
    request: FetchRequest<'_>,
) -> Result<Vec<FetchedJob>> {
    let mut queues: Vec<&str> = Vec::with_capacity(request.queues.len());
    for queue in request.queues {
        if !queues.contains(&queue.as_str()) {
            queues.push(queue);
        }
    }
    if request.limit == 0 || queues.is_empty() {
        return Ok(Vec::new());
    }
    if request.flow {
        return super::flow::fetch_flow(storage, &queues, &request).await;
    }
    // Shares this server held (its queues had limits a moment ago) end: this path counts
    // nothing.
    super::shares::release(storage, request.server_id, request.now).await?;
    claim(storage, &FETCH, &queues, request.limit, &request).await
}

/// Runs a fetch statement that takes the served queues, at most `limit` jobs, the server, the
/// time and the lease (`FETCH`, `FETCH_LIMITED`, `FETCH_SHARED`), and reads the jobs it claimed.
pub(crate) async fn claim(
    storage: &Database,
    statement: &Template,
    queues: &[&str],
    limit: usize,
    request: &FetchRequest<'_>,
) -> Result<Vec<FetchedJob>> {
    let rows = storage
        .query(
            "fetch",
            &storage.statement(statement),
            &[
                &queues,
                &big(limit),
                &request.server_id,
                &ts(request.now),
                &ts(request.lease_until),
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(fetched_job)
        .collect::<Result<Vec<_>, _>>()?)
}

/// A claimed job from the columns of `FETCH`.
pub(crate) fn fetched_job(row: &Row) -> Result<FetchedJob, PostgresError> {
    let id: i64 = row
        .try_get("id")
        .map_err(|error| PostgresError::decode("a fetched job, column `id`", describe(&error)))?;
    let what = || format!("job {id}");
    let what: &dyn Fn() -> String = &what;
    Ok(FetchedJob {
        id: JobId(id),
        name: column::<&str>(row, "name", what)?.into(),
        queue: column::<&str>(row, "queue", what)?.into(),
        args: column::<&str>(row, "args", what)?.into(),
        retry_count: retry_count(column(row, "retry_count", what)?, what)?,
        created_at: column(row, "created_at", what)?,
        enqueued_at: column(row, "enqueued_at", what)?,
        parent: column::<Option<i64>>(row, "parent_id", what)?.map(JobId),
        parent_result: column(row, "parent_result", what)?,
    })
}
