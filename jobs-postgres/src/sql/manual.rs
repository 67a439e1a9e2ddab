//! Changes made by hand (the dashboard, the client): delete and requeue, with the continuations they release or re-arm.

use chrono::{DateTime, Utc};
use jobs::storage::CONTINUATION_NOT_MET;
use jobs::{Error, JobId, JobState, Result};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::release::Released;
use super::ts;
use crate::database::{Database, Db, Template};
use crate::row;

/// A manual state change of job `$1` to `$5` (`deleted` or `enqueued`) with reason `$2` at
/// `$3`, unless it is in that state already. Returns its previous state (no row: no job). A
/// requeue goes to the tail of its queue and wakes the servers listening on `$4`; a requeued
/// job whose unique key another job holds comes back without it (`jobs::Unique`), its history
/// saying so.
///
/// The history row of the new state carries the Processing entry of the attempt it ends (a
/// running job's, from the row: migration 0005). A Succeeded job's own entry and its
/// attempt's, held by the row (migration 0006), are written out first, as a history row of
/// their own.
pub(crate) const CHANGE: Template =
    Template::built("manual change", || super::with_held_states(CHANGE_SQL));

const CHANGE_SQL: &str = "
WITH target AS (
    SELECT id, state, state_at, server_id, retry_count, result, succeeded_data, started_at,
           unique_key
    FROM __SCHEMA__.jobs WHERE id = $1 FOR NO KEY UPDATE
),
holder AS (
    SELECT other.id, other.unique_key AS key
    FROM target
    JOIN __SCHEMA__.jobs AS other ON other.unique_key = target.unique_key
    WHERE $5::text = 'enqueued' AND other.id <> target.id
      AND other.state IN __HELD_STATES__
    LIMIT 1
),
changed AS (
    UPDATE __SCHEMA__.jobs AS job
    SET state = $5::text, state_at = $3, run_at = NULL, server_id = NULL,
        lease_until = NULL, succeeded_data = NULL, started_at = NULL,
        unique_key = CASE WHEN EXISTS (SELECT 1 FROM holder) THEN NULL ELSE job.unique_key END,
        position = CASE WHEN $5::text = 'enqueued' THEN nextval('__SCHEMA__.job_positions')
                        ELSE job.position END,
        enqueued_at = CASE WHEN $5::text = 'enqueued' THEN $3 ELSE job.enqueued_at END
    FROM target
    WHERE job.id = target.id AND target.state <> $5::text
    RETURNING job.id, job.queue
),
history AS (
    INSERT INTO __SCHEMA__.job_history
        (job_id, state, at, reason, data, attempt_at, attempt_data)
    SELECT job_id, state, at, reason, data, attempt_at, attempt_data
    FROM (
            SELECT 0 AS ord, target.id AS job_id, 'succeeded' AS state,
                   target.state_at AS at, NULL::text AS reason,
                   __SCHEMA__.succeeded_entry_data(target.succeeded_data, target.result) AS data,
                   target.started_at AS attempt_at,
                   __SCHEMA__.attempt_data(target.server_id, target.retry_count) AS attempt_data
            FROM target WHERE target.succeeded_data IS NOT NULL
        UNION ALL
            SELECT 1, changed.id, $5::text, $3,
                   coalesce($2 || '; ' || (SELECT __SCHEMA__.released_note(key, id) FROM holder),
                            $2),
                   CASE WHEN $5::text = 'enqueued'
                        THEN __SCHEMA__.enqueued_data(changed.queue, NULL) ELSE '{}'::jsonb END,
                   CASE WHEN target.state = 'processing' THEN target.state_at END,
                   CASE WHEN target.state = 'processing'
                        THEN __SCHEMA__.attempt_data(target.server_id, target.retry_count)
                   END
            FROM changed, target
    ) AS entries
    ORDER BY ord
),
notified AS (
    SELECT pg_notify($4, '') FROM changed WHERE $5::text = 'enqueued'
)
SELECT state FROM target WHERE (SELECT count(*) FROM notified) >= 0";

/// Puts back to Awaiting the continuations a requeued parent's deletion had deleted (their last
/// history reason starts with `$3`), down the chain. A job whose unique key another job holds
/// comes back without it (`jobs::Unique`), its history saying so.
pub(crate) const REARM: Template = Template::built("rearm", || super::with_held_states(REARM_SQL));

const REARM_SQL: &str = "
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
keyed AS (
    -- Each re-armed job's unique key and the job holding it, if any: another job in a
    -- non-final state, or the first re-armed job with the same key (which keeps it).
    SELECT armed.id, job.unique_key AS key,
           coalesce((SELECT other.id FROM __SCHEMA__.jobs AS other
                     WHERE other.unique_key = job.unique_key
                       AND other.state IN __HELD_STATES__
                     LIMIT 1),
                    nullif(first_value(armed.id) OVER (PARTITION BY job.unique_key
                                                       ORDER BY armed.depth, armed.id),
                           armed.id)) AS holder
    FROM armed JOIN __SCHEMA__.jobs AS job ON job.id = armed.id
    WHERE job.unique_key IS NOT NULL
),
rearmed AS (
    UPDATE __SCHEMA__.jobs AS job
    SET state = 'awaiting', state_at = $2, run_at = NULL, server_id = NULL, lease_until = NULL,
        unique_key = CASE WHEN EXISTS (SELECT 1 FROM keyed WHERE keyed.id = job.id
                                                             AND keyed.holder IS NOT NULL)
                          THEN NULL ELSE job.unique_key END
    FROM armed
    WHERE job.id = armed.id AND job.state = 'deleted'
    RETURNING job.id, job.parent_id, armed.depth
),
history AS (
    INSERT INTO __SCHEMA__.job_history (job_id, state, at, reason, data)
    SELECT rearmed.id, 'awaiting', $2,
           'parent job ' || rearmed.parent_id || ' was requeued'
               || coalesce('; ' || __SCHEMA__.released_note(keyed.key, keyed.holder), ''),
           __SCHEMA__.awaiting_data(rearmed.parent_id)
    FROM rearmed LEFT JOIN keyed ON keyed.id = rearmed.id
    ORDER BY rearmed.depth, rearmed.id
)
SELECT count(*) FROM rearmed";

/// [`Storage::delete`](jobs::Storage::delete) on PostgreSQL: the change, then the release of
/// the continuations that can no longer run (or run on any outcome), down the chain.
pub(crate) async fn delete(
    storage: &Database,
    id: JobId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    change(storage, id, reason, now, JobState::Deleted).await
}

/// [`Storage::requeue`](jobs::Storage::requeue) on PostgreSQL: the change, then the re-arming
/// of the continuations its deletion had deleted.
pub(crate) async fn requeue(
    storage: &Database,
    id: JobId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    change(storage, id, reason, now, JobState::Enqueued).await
}

/// How many times a requeue tries when a concurrent enqueue takes its job's unique key.
const MAX_REQUEUE_ATTEMPTS: u32 = 3;

/// Whether `error` is a requeued (or re-armed) job's unique key taken by an enqueue that
/// committed after the requeue's snapshot: the next attempt sees that holder, and the job
/// comes back without the key.
fn key_taken_meanwhile(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::UNIQUE_VIOLATION)
        && error.as_db_error().and_then(|db| db.constraint()) == Some("jobs_unique_held_idx")
}

/// The requeue's change and re-arming in `tx`; the job's row before (none: no such job).
async fn requeue_in(
    tx: &tokio_postgres::Transaction<'_>,
    change: &tokio_postgres::Statement,
    change_params: &[&(dyn ToSql + Sync)],
    rearm: &tokio_postgres::Statement,
    id: JobId,
    now: DateTime<Utc>,
) -> Result<Option<tokio_postgres::Row>, tokio_postgres::Error> {
    let target = tx.query_opt(change, change_params).await?;
    let changed = target
        .as_ref()
        .and_then(|row| row.try_get::<_, String>("state").ok())
        .is_some_and(|previous| previous != JobState::Enqueued.as_str());
    if changed {
        tx.query(rearm, &[&id.0, &now, &CONTINUATION_NOT_MET])
            .await?;
    }
    Ok(target)
}

/// Moves job `id` to `to` (Deleted or Enqueued) in one transaction with what that does to its
/// continuations. `Ok(false)`: it was in that state already.
async fn change(
    storage: &Database,
    id: JobId,
    reason: &str,
    now: DateTime<Utc>,
    to: JobState,
) -> Result<bool> {
    let operation = match to {
        JobState::Enqueued => "requeue",
        _ => "delete",
    };
    let failed = |e| storage.error(operation, e);
    let now = ts(now);
    let mut client = storage.client().await?;
    let (change, follow_up) = {
        let db = storage.db(&client);
        let follow_up = match to {
            JobState::Enqueued => &REARM,
            _ => &super::release::RELEASE,
        };
        (
            db.prepare(operation, &storage.statement(&CHANGE)).await?,
            db.prepare(operation, &storage.statement(follow_up)).await?,
        )
    };
    let state = to.as_str();
    let change_params: [&(dyn ToSql + Sync); 5] = [&id.0, &reason, &now, &storage.channel, &state];
    let previous = |target: Option<tokio_postgres::Row>| -> Result<String> {
        let target = target.ok_or(Error::JobNotFound(id))?;
        Ok(row::column(&target, "state", &|| format!("job {id}"))?)
    };
    if to == JobState::Enqueued {
        let mut attempt = 1;
        let target = loop {
            let tx = client.transaction().await.map_err(failed)?;
            match requeue_in(&tx, &change, &change_params, &follow_up, id, now).await {
                Ok(target) => {
                    tx.commit().await.map_err(failed)?;
                    break target;
                }
                Err(error) if attempt < MAX_REQUEUE_ATTEMPTS && key_taken_meanwhile(&error) => {
                    attempt += 1;
                }
                Err(error) => return Err(failed(error).into()),
            }
        };
        if previous(target)? == state {
            return Ok(false);
        }
        storage.wake();
        return Ok(true);
    }
    let tx = client.transaction().await.map_err(failed)?;
    // The release reads the deletion's effect: the two are pipelined in one transaction.
    let parents = [id.0];
    let parents = &parents[..];
    let times = [now];
    let times = &times[..];
    let release_params: [&(dyn ToSql + Sync); 4] =
        [&parents, &times, &storage.channel, &CONTINUATION_NOT_MET];
    let (target, released) = tokio::try_join!(
        biased;
        tx.query_opt(&change, &change_params),
        tx.query(&follow_up, &release_params),
    )
    .map_err(failed)?;
    let previous = previous(target)?;
    let db = Db {
        client: tx.client(),
        cache: Some(&tx.statement_cache),
        storage,
    };
    if storage
        .release_deleted(&db, Released::from_rows(&released)?)
        .await?
        > 0
    {
        storage.wake();
    }
    tx.commit().await.map_err(failed)?;
    Ok(previous != state)
}
