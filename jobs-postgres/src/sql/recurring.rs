//! Recurring job definitions and the atomic claim of each occurrence.

use chrono::{DateTime, Utc};
use jobs::storage::{Misfire, RecurringClaim, RecurringJob};
use jobs::{Error, JobId, Result};
use tokio_postgres::Row;

use super::{big, ts};
use crate::database::{Database, Db, Template};
use crate::error::{describe, PostgresError};
use crate::row::{column, state_from_sql};

/// Creates or replaces a recurring job, keeping `created_at` of an existing one.
pub(crate) const UPSERT_RECURRING: Template = Template::text(
    "upsert recurring",
    "
INSERT INTO __SCHEMA__.recurring_jobs (id, cron, time_zone, job_name, queue, args, misfire,
    skip_if_running, paused, next_run, last_run, last_job_id, last_error, created_at, priority,
    mutex, limited)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
ON CONFLICT (id) DO UPDATE
SET cron = excluded.cron, time_zone = excluded.time_zone, job_name = excluded.job_name,
    queue = excluded.queue, args = excluded.args, misfire = excluded.misfire,
    priority = excluded.priority, mutex = excluded.mutex, limited = excluded.limited,
    skip_if_running = excluded.skip_if_running, paused = excluded.paused,
    next_run = excluded.next_run, last_run = excluded.last_run,
    last_job_id = excluded.last_job_id, last_error = excluded.last_error",
);

/// Columns of a recurring job with its last job's current state.
pub(crate) const RECURRING_COLUMNS: &str = "
    recurring.id, recurring.cron, recurring.time_zone, recurring.job_name, recurring.queue,
    recurring.priority, recurring.mutex, recurring.limited, recurring.args, recurring.misfire, recurring.skip_if_running, recurring.paused,
    recurring.next_run, recurring.last_run, recurring.last_job_id, recurring.last_error,
    recurring.created_at, last_job.state AS last_job_state";

pub(crate) fn recurring_sql(filter: &str) -> String {
    format!(
        "SELECT {RECURRING_COLUMNS}
         FROM __SCHEMA__.recurring_jobs AS recurring
         LEFT JOIN __SCHEMA__.jobs AS last_job ON last_job.id = recurring.last_job_id
         {filter}"
    )
}

pub(crate) const REMOVE_RECURRING: Template = Template::text(
    "remove recurring",
    "DELETE FROM __SCHEMA__.recurring_jobs WHERE id = $1",
);

pub(crate) const SET_RECURRING_PAUSED: Template = Template::text(
    "set recurring paused",
    "UPDATE __SCHEMA__.recurring_jobs SET paused = $2 WHERE id = $1",
);

/// The compare-and-set of a recurring claim: moves `next_run` only if it is still `$4`.
pub(crate) const CLAIM_RECURRING: Template = Template::text(
    "claim recurring",
    "
UPDATE __SCHEMA__.recurring_jobs
SET next_run = $2, last_error = $3
WHERE id = $1 AND next_run IS NOT DISTINCT FROM $4
RETURNING id",
);

pub(crate) const RECORD_RECURRING_RUN: Template = Template::text(
    "record recurring run",
    "
UPDATE __SCHEMA__.recurring_jobs SET last_run = $2, last_job_id = $3 WHERE id = $1",
);

/// [`Storage::upsert_recurring`](jobs::Storage::upsert_recurring) on PostgreSQL.
pub(crate) async fn upsert_recurring(storage: &Database, job: RecurringJob) -> Result<()> {
    storage
        .execute(
            "upsert recurring",
            &storage.statement(&UPSERT_RECURRING),
            &[
                &job.id,
                &job.cron,
                &job.time_zone,
                &job.job_name,
                &job.queue,
                &job.args,
                &misfire_to_sql(job.misfire),
                &job.skip_if_running,
                &job.paused,
                &job.next_run.map(ts),
                &job.last_run.map(ts),
                &job.last_job_id.map(|id| id.0),
                &job.last_error,
                &ts(job.created_at),
                &i16::from(job.priority),
                &job.mutex,
                &job.limited,
            ],
        )
        .await?;
    Ok(())
}

/// [`Storage::recurring`](jobs::Storage::recurring) on PostgreSQL.
pub(crate) async fn recurring(storage: &Database, id: &str) -> Result<Option<RecurringJob>> {
    let rows = storage
        .query("recurring", &storage.statement(&RECURRING), &[&id])
        .await?;
    Ok(rows.first().map(recurring_job).transpose()?)
}

/// [`Storage::list_recurring`](jobs::Storage::list_recurring) on PostgreSQL.
pub(crate) async fn list_recurring(storage: &Database) -> Result<Vec<RecurringJob>> {
    let rows = storage
        .query("list recurring", &storage.statement(&LIST_RECURRING), &[])
        .await?;
    Ok(rows
        .iter()
        .map(recurring_job)
        .collect::<Result<Vec<_>, _>>()?)
}

/// [`Storage::remove_recurring`](jobs::Storage::remove_recurring) on PostgreSQL.
pub(crate) async fn remove_recurring(storage: &Database, id: &str) -> Result<bool> {
    let removed = storage
        .execute(
            "remove recurring",
            &storage.statement(&REMOVE_RECURRING),
            &[&id],
        )
        .await?;
    Ok(removed > 0)
}

/// [`Storage::set_recurring_paused`](jobs::Storage::set_recurring_paused) on PostgreSQL.
pub(crate) async fn set_recurring_paused(
    storage: &Database,
    id: &str,
    paused: bool,
) -> Result<bool> {
    let changed = storage
        .execute(
            "pause recurring",
            &storage.statement(&SET_RECURRING_PAUSED),
            &[&id, &paused],
        )
        .await?;
    Ok(changed > 0)
}

/// [`Storage::due_recurring`](jobs::Storage::due_recurring) on PostgreSQL.
pub(crate) async fn due_recurring(
    storage: &Database,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<RecurringJob>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let rows = storage
        .query(
            "due recurring",
            &storage.statement(&DUE_RECURRING),
            &[&ts(now), &big(limit)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(recurring_job)
        .collect::<Result<Vec<_>, _>>()?)
}

/// [`Storage::claim_recurring`](jobs::Storage::claim_recurring) on PostgreSQL.
pub(crate) async fn claim_recurring(
    storage: &Database,
    claim: RecurringClaim,
) -> Result<Option<Option<JobId>>> {
    let now = ts(claim.now);
    let mut client = storage.client().await?;
    let (claim_statement, record_statement) = {
        let db = storage.db(&client);
        (
            db.prepare("claim recurring", &storage.statement(&CLAIM_RECURRING))
                .await?,
            db.prepare("claim recurring", &storage.statement(&RECORD_RECURRING_RUN))
                .await?,
        )
    };
    let tx = client
        .transaction()
        .await
        .map_err(|e| storage.error("claim recurring", e))?;
    let claimed = tx
        .query_opt(
            &claim_statement,
            &[
                &claim.id,
                &claim.next_run.map(ts),
                &claim.note,
                &claim.expected_next.map(ts),
            ],
        )
        .await
        .map_err(|e| storage.error("claim recurring", e))?;
    if claimed.is_none() {
        return Ok(None);
    }
    let created = match claim.job {
        Some(job) => {
            let db = Db {
                client: tx.client(),
                cache: Some(&tx.statement_cache),
                storage,
            };
            let ids = storage
                .insert(&db, vec![job], now, Some(&storage.channel))
                .await?;
            let id = ids
                .first()
                .map(|enqueued| enqueued.id)
                .ok_or_else(|| Error::storage("the storage created no job"))?;
            tx.execute(&record_statement, &[&claim.id, &now, &id.0])
                .await
                .map_err(|e| storage.error("claim recurring", e))?;
            Some(id)
        }
        None => None,
    };
    tx.commit()
        .await
        .map_err(|e| storage.error("claim recurring", e))?;
    if created.is_some() {
        storage.wake();
    }
    Ok(Some(created))
}

pub(crate) fn misfire_to_sql(misfire: Misfire) -> &'static str {
    match misfire {
        Misfire::FireOnce => "fire_once",
        Misfire::FireAll => "fire_all",
    }
}

pub(crate) fn misfire_from_sql(
    value: &str,
    what: &dyn Fn() -> String,
) -> Result<Misfire, PostgresError> {
    match value {
        "fire_once" => Ok(Misfire::FireOnce),
        "fire_all" => Ok(Misfire::FireAll),
        other => Err(PostgresError::decode(
            format!("{}, column `misfire`", what()),
            format!("unknown misfire policy `{other}`"),
        )),
    }
}

/// A recurring job from the columns of `RECURRING_COLUMNS`.
pub(crate) fn recurring_job(row: &Row) -> Result<RecurringJob, PostgresError> {
    let id: String = row.try_get("id").map_err(|error| {
        PostgresError::decode("a recurring job row, column `id`", describe(&error))
    })?;
    let what = || format!("recurring job `{id}`");
    let what: &dyn Fn() -> String = &what;
    let misfire: String = column(row, "misfire", what)?;
    let last_job_state: Option<String> = column(row, "last_job_state", what)?;
    Ok(RecurringJob {
        cron: column(row, "cron", what)?,
        time_zone: column(row, "time_zone", what)?,
        job_name: column(row, "job_name", what)?,
        queue: column(row, "queue", what)?,
        priority: crate::row::priority(column(row, "priority", what)?, what)?,
        mutex: column(row, "mutex", what)?,
        limited: column(row, "limited", what)?,
        args: column(row, "args", what)?,
        misfire: misfire_from_sql(&misfire, what)?,
        skip_if_running: column(row, "skip_if_running", what)?,
        paused: column(row, "paused", what)?,
        next_run: column(row, "next_run", what)?,
        last_run: column(row, "last_run", what)?,
        last_job_id: column::<Option<i64>>(row, "last_job_id", what)?.map(JobId),
        last_job_state: last_job_state
            .map(|state| state_from_sql(&state, &|| format!("{}, its last job", what())))
            .transpose()?,
        last_error: column(row, "last_error", what)?,
        created_at: column(row, "created_at", what)?,
        id,
    })
}

/// One recurring job by id.
pub(crate) const RECURRING: Template =
    Template::built("recurring", || recurring_sql("WHERE recurring.id = $1"));

/// Every recurring job, by id.
pub(crate) const LIST_RECURRING: Template =
    Template::built("list recurring", || recurring_sql("ORDER BY recurring.id"));

/// The recurring jobs due at `$1`, at most `$2`.
pub(crate) const DUE_RECURRING: Template = Template::built("due recurring", || {
    recurring_sql(
        "WHERE NOT recurring.paused AND recurring.next_run <= $1 ORDER BY recurring.id LIMIT $2",
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misfire_names_round_trip() {
        for misfire in [Misfire::FireOnce, Misfire::FireAll] {
            let sql = misfire_to_sql(misfire);
            assert_eq!(misfire_from_sql(sql, &String::new).ok(), Some(misfire));
            // The same spelling as the type's serde form, which the dashboard shows.
            assert_eq!(
                serde_json::to_value(misfire).ok(),
                Some(serde_json::json!(sql))
            );
        }
    }
}
