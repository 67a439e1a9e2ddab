//! Changes made by hand (the dashboard, the client): delete and requeue, with the continuations they release or re-arm.

use chrono::{DateTime, Utc};
use jobs::storage::CONTINUATION_NOT_MET;
use jobs::{Error, JobId, JobState, Result};
use tokio_postgres::types::ToSql;

use super::release::Released;
use super::ts;
use crate::database::{Database, Db, Template};
use crate::row;

/// Moves a job to Deleted unless it already is. Returns its previous state (no row: no job).
pub(crate) fn delete_sql() -> String {
    manual_change_sql("deleted", "", "'{}'::jsonb", "SELECT state FROM target")
}

/// Moves a job to the tail of its queue unless it is Enqueued already. Returns its previous
/// state (no row: no job).
pub(crate) fn requeue_sql() -> String {
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
pub(crate) fn manual_change_sql(state: &str, set: &str, data: &str, tail: &str) -> String {
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
pub(crate) const REARM: Template = Template::text(
    "rearm",
    "
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
SELECT count(*) FROM rearmed",
);

/// [`Storage::delete`](jobs::Storage::delete) on PostgreSQL.
pub(crate) async fn delete(
    storage: &Database,
    id: JobId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let now = ts(now);
    let mut client = storage.client().await?;
    let (delete, release) = {
        let db = storage.db(&client);
        (
            db.prepare("delete", &storage.statement(&DELETE)).await?,
            db.prepare(
                "release continuations",
                &storage.statement(&super::release::RELEASE),
            )
            .await?,
        )
    };
    let tx = client
        .transaction()
        .await
        .map_err(|e| storage.error("delete", e))?;
    let parents = [id.0];
    let parents = &parents[..];
    let times = [now];
    let times = &times[..];
    let delete_params: [&(dyn ToSql + Sync); 3] = [&id.0, &reason, &now];
    let release_params: [&(dyn ToSql + Sync); 4] =
        [&parents, &times, &storage.channel, &CONTINUATION_NOT_MET];
    let (target, released) = tokio::try_join!(
        biased;
        tx.query_opt(&delete, &delete_params),
        tx.query(&release, &release_params),
    )
    .map_err(|e| storage.error("delete", e))?;
    let Some(target) = target else {
        return Err(Error::JobNotFound(id));
    };
    let previous: String = row::column(&target, "state", &|| format!("job {id}"))?;
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
    tx.commit().await.map_err(|e| storage.error("delete", e))?;
    Ok(previous != JobState::Deleted.as_str())
}

/// [`Storage::requeue`](jobs::Storage::requeue) on PostgreSQL.
pub(crate) async fn requeue(
    storage: &Database,
    id: JobId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let now = ts(now);
    let mut client = storage.client().await?;
    let (requeue, rearm) = {
        let db = storage.db(&client);
        (
            db.prepare("requeue", &storage.statement(&REQUEUE)).await?,
            db.prepare("requeue", &storage.statement(&REARM)).await?,
        )
    };
    let tx = client
        .transaction()
        .await
        .map_err(|e| storage.error("requeue", e))?;
    let target = tx
        .query_opt(&requeue, &[&id.0, &reason, &now, &storage.channel])
        .await
        .map_err(|e| storage.error("requeue", e))?;
    let Some(target) = target else {
        return Err(Error::JobNotFound(id));
    };
    let previous: String = row::column(&target, "state", &|| format!("job {id}"))?;
    if previous == JobState::Enqueued.as_str() {
        return Ok(false);
    }
    tx.query(&rearm, &[&id.0, &now, &CONTINUATION_NOT_MET])
        .await
        .map_err(|e| storage.error("requeue", e))?;
    tx.commit().await.map_err(|e| storage.error("requeue", e))?;
    storage.wake();
    Ok(true)
}

/// Deletes a job (see `delete_sql`).
pub(crate) const DELETE: Template = Template::built("delete", delete_sql);

/// Requeues a job (see `requeue_sql`).
pub(crate) const REQUEUE: Template = Template::built("requeue", requeue_sql);
