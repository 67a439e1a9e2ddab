//! The elected server's work: promotion of due jobs, rescue of lapsed leases, pruning, vacuuming, and the election itself.

use std::sync::PoisonError;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs::storage::PruneRequest;
use jobs::Result;

use super::{big, ts};
use crate::database::{Database, Template};

/// Moves due Scheduled jobs to the tail of their queues, earliest first.
pub(crate) const PROMOTE_SCHEDULED: Template = Template::text(
    "promote scheduled",
    "
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
    SELECT id, 'enqueued', $1, 'scheduled time reached',
           __SCHEMA__.enqueued_data(queue, NULL)
    FROM promoted ORDER BY position
),
notified AS (
    SELECT pg_notify($3, '') FROM (SELECT 1 FROM promoted LIMIT 1) AS found
)
SELECT count(*) FROM promoted WHERE (SELECT count(*) FROM notified) >= 0",
);

/// Puts Processing jobs whose lease lapsed back at their original place in their queue.
pub(crate) const RESCUE_EXPIRED: Template = Template::text(
    "rescue expired",
    "
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
SELECT count(*) FROM rescued WHERE (SELECT count(*) FROM notified) >= 0",
);

/// Deletes up to `$3` expired jobs and their history: Succeeded and Deleted jobs that finished
/// before `$1` (oldest first), then Failed ones before `$2` if given.
pub(crate) const PRUNE: Template = Template::text(
    "prune",
    "
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
SELECT count(*) FROM removed",
);

/// Takes the leadership if it is free, expired, or already `$1`'s. A row back means leader.
pub(crate) const TRY_LEAD: Template = Template::text(
    "try lead",
    "
INSERT INTO __SCHEMA__.leader AS leader (role, server_id, expires_at)
VALUES ('maintenance', $1, $3)
ON CONFLICT (role) DO UPDATE
SET server_id = excluded.server_id, expires_at = excluded.expires_at
WHERE leader.server_id = excluded.server_id OR leader.expires_at < $2
RETURNING server_id",
);

pub(crate) const RESIGN: Template = Template::text(
    "resign",
    "DELETE FROM __SCHEMA__.leader WHERE role = 'maintenance' AND server_id = $1",
);

/// How often the elected server looks at the jobs table's dead rows (see `vacuum_if_due`).
pub(crate) const VACUUM_INTERVAL: Duration = Duration::from_secs(10);

/// Dead row versions in the jobs table above which the elected server vacuums it.
pub(crate) const VACUUM_DEAD_ROWS: i64 = 50_000;

/// `VACUUM (SKIP_LOCKED)` of `table` if the statistics count more than [`VACUUM_DEAD_ROWS`]
/// dead rows in it (a vacuum of a table that is mostly live costs more than it saves).
pub(crate) async fn vacuum_when_bloated(
    client: &tokio_postgres::Client,
    table: &str,
) -> std::result::Result<(), tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT coalesce(max(n_dead_tup), 0)::bigint FROM pg_stat_user_tables WHERE relid = $1::text::regclass",
            &[&table],
        )
        .await?;
    let dead: i64 = row.get(0);
    if dead > VACUUM_DEAD_ROWS {
        client
            .batch_execute(&format!("VACUUM (SKIP_LOCKED) {table}"))
            .await?;
    }
    Ok(())
}

impl Database {
    /// Every [`VACUUM_INTERVAL`], vacuums the jobs table if it holds more than
    /// [`VACUUM_DEAD_ROWS`] dead rows (the elected server's maintenance calls `prune` every
    /// round). Every state change leaves a dead row version and dead index
    /// entries, and the fetch walks over the dead entries at the head of its queue's index
    /// until a vacuum removes them; autovacuum looks at a database only once a minute by
    /// default, which under thousands of jobs a second lets them pile up into the hundreds of
    /// thousands. `SKIP_LOCKED`: never waits. A failure (say, no ownership of the table) is
    /// logged once and autovacuum is left to it.
    pub(crate) async fn vacuum_if_due(&self) {
        {
            let mut last = self
                .last_vacuum
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match *last {
                Some(at) if at.elapsed() < VACUUM_INTERVAL => return,
                _ => *last = Some(std::time::Instant::now()),
            }
        }
        let table = format!("{}.jobs", self.quoted_schema());
        let outcome = match self.client().await {
            Ok(client) => vacuum_when_bloated(&client, &table)
                .await
                .map_err(|e| self.error("vacuum", e).to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = outcome {
            if !self
                .vacuum_failed
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                tracing::warn!(%error, "vacuuming the jobs table failed; relying on autovacuum");
            }
        }
    }
}

/// [`Storage::promote_scheduled`](jobs::Storage::promote_scheduled) on PostgreSQL.
pub(crate) async fn promote_scheduled(
    storage: &Database,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<usize> {
    requeue_due(storage, "promote scheduled", &PROMOTE_SCHEDULED, now, limit).await
}

/// [`Storage::rescue_expired`](jobs::Storage::rescue_expired) on PostgreSQL.
pub(crate) async fn rescue_expired(
    storage: &Database,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<usize> {
    requeue_due(storage, "rescue expired", &RESCUE_EXPIRED, now, limit).await
}

/// Runs `statement`, which moves up to `limit` jobs due at `now` to their queues and notifies
/// once, and wakes this process's servers if it moved any.
async fn requeue_due(
    storage: &Database,
    operation: &'static str,
    statement: &Template,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<usize> {
    if limit == 0 {
        return Ok(0);
    }
    let moved = storage
        .count_query(
            operation,
            &storage.statement(statement),
            &[&ts(now), &big(limit), &storage.channel],
        )
        .await?;
    if moved > 0 {
        storage.wake();
    }
    Ok(moved)
}

/// [`Storage::prune`](jobs::Storage::prune) on PostgreSQL.
pub(crate) async fn prune(storage: &Database, request: PruneRequest) -> Result<usize> {
    if request.limit == 0 {
        return Ok(0);
    }
    let pruned = storage
        .count_query(
            "prune",
            &storage.statement(&PRUNE),
            &[
                &ts(request.finished_before),
                &request.failed_before.map(ts),
                &big(request.limit),
            ],
        )
        .await?;
    storage.vacuum_if_due().await;
    Ok(pruned)
}

/// [`Storage::try_lead`](jobs::Storage::try_lead) on PostgreSQL.
pub(crate) async fn try_lead(
    storage: &Database,
    server_id: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool> {
    let rows = storage
        .query(
            "try lead",
            &storage.statement(&TRY_LEAD),
            &[&server_id, &ts(now), &ts(until)],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// [`Storage::resign`](jobs::Storage::resign) on PostgreSQL.
pub(crate) async fn resign(storage: &Database, server_id: &str) -> Result<()> {
    storage
        .execute("resign", &storage.statement(&RESIGN), &[&server_id])
        .await?;
    Ok(())
}
