//! Flow control's stored settings (`queue_settings`, `job_limits`: migration 0010), the
//! Queues page's read, and the flow-controlled fetch (the SQL function `fetch_flow`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;

use jobs::storage::{FetchRequest, FetchedJob};
use jobs::{JobLimits, QueueInfo, QueueLimits, QueueSettings, Rate, Result};
use tokio_postgres::Row;

use super::ts;
use crate::database::{Database, Template};
use crate::error::PostgresError;
use crate::row;

/// Every queue's stored settings.
pub(crate) const QUEUE_SETTINGS: Template = Template::text(
    "queue settings",
    "
SELECT queue, paused, concurrency, rate_count, rate_period_ms
FROM __SCHEMA__.queue_settings
ORDER BY queue",
);

/// The queues holding Enqueued gated jobs (read from `jobs_gated_idx`).
pub(crate) const GATED_QUEUES: Template = Template::text(
    "gated queues",
    "
SELECT DISTINCT queue FROM __SCHEMA__.jobs WHERE state = 'enqueued' AND gated ORDER BY queue",
);

/// Pauses or resumes a queue (its limits kept; `set_queue_paused`, migration 0012): its shares
/// end and its claims are made again; a resumed queue wakes the servers.
pub(crate) const SET_QUEUE_PAUSED: Template = Template::text(
    "set queue paused",
    "SELECT __SCHEMA__.set_queue_paused($1::text, $2::boolean, $3::timestamptz, $4::text)",
);

/// Replaces a queue's limits (its paused state kept; the rate window restarts when the period
/// changes; `set_queue_limits`, migration 0012) and wakes the servers. Its shares end, and its
/// running jobs become the claims its concurrency limit counts.
pub(crate) const SET_QUEUE_LIMITS: Template = Template::text(
    "set queue limits",
    "
SELECT __SCHEMA__.set_queue_limits($1::text, $2::integer, $3::integer, $4::bigint,
                                   $5::timestamptz, $6::text)",
);

/// Stores job kinds' limits: `$1` names, `$2` concurrency, `$3` rate count, `$4` rate period;
/// a kind with none is removed.
pub(crate) const REGISTER_JOB_LIMITS: Template = Template::text(
    "register job limits",
    "
WITH given AS (
    SELECT * FROM unnest($1::text[], $2::integer[], $3::integer[], $4::bigint[])
        AS g(name, concurrency, rate_count, rate_period_ms)
),
removed AS (
    DELETE FROM __SCHEMA__.job_limits AS l
    USING given
    WHERE l.name = given.name AND given.concurrency IS NULL AND given.rate_count IS NULL
)
INSERT INTO __SCHEMA__.job_limits (name, concurrency, rate_count, rate_period_ms)
SELECT name, concurrency, rate_count, rate_period_ms FROM given
WHERE concurrency IS NOT NULL OR rate_count IS NOT NULL
ON CONFLICT (name) DO UPDATE
SET concurrency = excluded.concurrency, rate_count = excluded.rate_count,
    rate_period_ms = excluded.rate_period_ms",
);

/// Each queue's jobs per non-final state (and Failed), and every queue with settings.
pub(crate) const QUEUES: Template = Template::text(
    "queues",
    "
SELECT queue, state, count(*) AS count
FROM __SCHEMA__.jobs
WHERE state IN ('enqueued', 'scheduled', 'awaiting', 'processing', 'failed')
GROUP BY queue, state
UNION ALL
SELECT queue, NULL, 0 FROM __SCHEMA__.queue_settings",
);

/// The flow-controlled fetch of a server whose queues hold no gated job
/// ([`FetchRequest::gated`]): queue limits and pauses only, in one statement, the function
/// `fetch_limited` (migration 0011, which says how it counts a queue's running claims and why
/// it is a function: its plan is made once per connection, not on every call).
pub(crate) const FETCH_LIMITED: Template = Template::text(
    "fetch limited",
    "
SELECT * FROM __SCHEMA__.fetch_limited($1::text[], $2::bigint, $3::text, $4::timestamptz,
                                       $5::timestamptz)",
);

/// The flow-controlled fetch: `fetch_flow` (migration 0010, planned once per connection since
/// 0011) with the scan bound of
/// `MemoryStorage`'s.
pub(crate) const FETCH_FLOW: Template = Template::text(
    "fetch flow",
    "
SELECT * FROM __SCHEMA__.fetch_flow($1::text[], $2::integer, $3::text, $4::timestamptz,
                                    $5::timestamptz, $6::integer)",
);

fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

fn rate_params(rate: Option<Rate>) -> (Option<i32>, Option<i64>) {
    (
        rate.map(|rate| int(rate.count)),
        rate.map(|rate| rate.period_ms()),
    )
}

fn settings(row: &Row) -> Result<QueueSettings, PostgresError> {
    let what = || "a queue's settings".to_owned();
    let count = |value: Option<i32>| value.map(|value| u32::try_from(value).unwrap_or(0));
    let rate_count = count(row::column(row, "rate_count", &what)?);
    let period: Option<i64> = row::column(row, "rate_period_ms", &what)?;
    Ok(QueueSettings {
        queue: row::column(row, "queue", &what)?,
        paused: row::column(row, "paused", &what)?,
        limits: QueueLimits {
            concurrency: count(row::column(row, "concurrency", &what)?),
            rate: rate_count.zip(period).map(|(count, period)| Rate {
                count,
                period: Duration::from_millis(u64::try_from(period).unwrap_or(1)),
            }),
        },
    })
}

/// Every stored queue setting, the empty ones included.
async fn all_settings(storage: &Database) -> Result<Vec<QueueSettings>> {
    let rows = storage
        .query("queue settings", &storage.statement(&QUEUE_SETTINGS), &[])
        .await?;
    Ok(rows.iter().map(settings).collect::<Result<_, _>>()?)
}

/// [`Storage::queue_settings`](jobs::Storage::queue_settings) on PostgreSQL.
pub(crate) async fn queue_settings(storage: &Database) -> Result<Vec<QueueSettings>> {
    let mut settings = all_settings(storage).await?;
    settings.retain(QueueSettings::restricts);
    Ok(settings)
}

/// [`Storage::gated_queues`](jobs::Storage::gated_queues) on PostgreSQL.
pub(crate) async fn gated_queues(storage: &Database) -> Result<Vec<String>> {
    let rows = storage
        .query("gated queues", &storage.statement(&GATED_QUEUES), &[])
        .await?;
    let what = || "the gated queues".to_owned();
    Ok(rows
        .iter()
        .map(|row| row::column(row, "queue", &what))
        .collect::<Result<_, _>>()?)
}

/// [`Storage::set_queue_paused`](jobs::Storage::set_queue_paused) on PostgreSQL.
pub(crate) async fn set_queue_paused(storage: &Database, queue: &str, paused: bool) -> Result<()> {
    storage
        .query(
            "set queue paused",
            &storage.statement(&SET_QUEUE_PAUSED),
            &[&queue, &paused, &ts(Utc::now()), &storage.channel],
        )
        .await?;
    storage.shares.forget_all();
    if !paused {
        storage.wake();
    }
    Ok(())
}

/// [`Storage::set_queue_limits`](jobs::Storage::set_queue_limits) on PostgreSQL.
pub(crate) async fn set_queue_limits(
    storage: &Database,
    queue: &str,
    limits: QueueLimits,
) -> Result<()> {
    let (count, period) = rate_params(limits.rate);
    storage
        .query(
            "set queue limits",
            &storage.statement(&SET_QUEUE_LIMITS),
            &[
                &queue,
                &limits.concurrency.map(int),
                &count,
                &period,
                &ts(Utc::now()),
                &storage.channel,
            ],
        )
        .await?;
    storage.shares.forget_all();
    storage.wake();
    Ok(())
}

/// [`Storage::register_job_limits`](jobs::Storage::register_job_limits) on PostgreSQL.
pub(crate) async fn register_job_limits(storage: &Database, limits: &[JobLimits]) -> Result<()> {
    let names: Vec<&str> = limits.iter().map(|kind| kind.name.as_str()).collect();
    let concurrency: Vec<Option<i32>> = limits
        .iter()
        .map(|kind| kind.concurrency.map(int))
        .collect();
    let (counts, periods): (Vec<Option<i32>>, Vec<Option<i64>>) =
        limits.iter().map(|kind| rate_params(kind.rate)).unzip();
    storage
        .execute(
            "register job limits",
            &storage.statement(&REGISTER_JOB_LIMITS),
            &[&names, &concurrency, &counts, &periods],
        )
        .await?;
    Ok(())
}

/// [`Storage::queues`](jobs::Storage::queues) on PostgreSQL.
pub(crate) async fn queues(storage: &Database) -> Result<Vec<QueueInfo>> {
    let rows = storage
        .query("queues", &storage.statement(&QUEUES), &[])
        .await?;
    let what = || "the queues".to_owned();
    let mut queues: BTreeMap<String, QueueInfo> = BTreeMap::new();
    for row in &rows {
        let queue: String = row::column(row, "queue", &what)?;
        let state: Option<String> = row::column(row, "state", &what)?;
        let count: i64 = row::column(row, "count", &what)?;
        let info = queues.entry(queue.clone()).or_insert_with(|| QueueInfo {
            settings: QueueSettings {
                queue: queue.clone(),
                ..QueueSettings::default()
            },
            queue,
            ..QueueInfo::default()
        });
        if let Some(state) = state {
            let state = row::state_from_sql(&state, &what)?;
            info.counts.insert(state, u64::try_from(count).unwrap_or(0));
        }
    }
    for settings in all_settings(storage).await? {
        if let Some(info) = queues.get_mut(&settings.queue) {
            info.settings = settings;
        }
    }
    Ok(queues.into_values().collect())
}

/// The limited fetch by [`FETCH_LIMITED`]: counting a queue's claims on every fetch.
pub(crate) async fn fetch_limited(
    storage: &Database,
    queues: &[&str],
    request: &FetchRequest<'_>,
) -> Result<Vec<FetchedJob>> {
    super::fetch::claim(storage, &FETCH_LIMITED, queues, request.limit, request).await
}

/// The flow-controlled [`Storage::fetch`](jobs::Storage::fetch) on PostgreSQL: under queue
/// shares or by [`FETCH_LIMITED`] for a server whose queues hold no gated job
/// (`sql/shares.rs`), else by [`FETCH_FLOW`].
pub(crate) async fn fetch_flow(
    storage: &Database,
    queues: &[&str],
    request: &FetchRequest<'_>,
) -> Result<Vec<FetchedJob>> {
    if !request.gated {
        return super::shares::fetch(storage, queues, request).await;
    }
    // Gated jobs are counted by `fetch_flow` alone: a share this server held ends first.
    super::shares::release(storage, request.server_id, request.now).await?;
    let scan = i32::try_from(jobs::storage::scan_bound(request.limit)).unwrap_or(i32::MAX);
    let limit = i32::try_from(request.limit).unwrap_or(i32::MAX);
    let rows = storage
        .query(
            "fetch",
            &storage.statement(&FETCH_FLOW),
            &[
                &queues,
                &limit,
                &request.server_id,
                &ts(request.now),
                &ts(request.lease_until),
                &scan,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(super::fetch::fetched_job)
        .collect::<Result<Vec<_>, _>>()?)
}
