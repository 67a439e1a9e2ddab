//! The dashboard's reads: counts per state, pages of jobs, statistics per hour.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use jobs::storage::{Granularity, JobPage, JobQuery, StatPoint, StateCounts};
use jobs::{JobState, Result};
use tokio_postgres::types::ToSql;

use super::read::RECORD_COLUMNS;
use super::{big, ts};
use crate::database::{Database, Template};
use crate::row;

/// Counts per state but Enqueued, Enqueued per queue (their sum is the Enqueued count),
/// retries, recurring jobs and servers, in one trip. Each part reads the index that holds its
/// jobs (migration 0007): `jobs_state_idx` all but the Enqueued, `jobs_fetch_idx` those.
pub(crate) const COUNTS: Template = Template::text(
    "counts",
    "
SELECT 'state' AS kind, state AS key, count(*) AS count FROM __SCHEMA__.jobs
WHERE state <> 'enqueued' GROUP BY state
UNION ALL
SELECT 'queue', queue, count(*) FROM __SCHEMA__.jobs WHERE state = 'enqueued' GROUP BY queue
UNION ALL
SELECT 'retries', '', count(*) FROM __SCHEMA__.jobs WHERE state = 'scheduled' AND retry_count > 0
UNION ALL
SELECT 'recurring', '', count(*) FROM __SCHEMA__.recurring_jobs
UNION ALL
SELECT 'servers', '', count(*) FROM __SCHEMA__.servers",
);

pub(crate) const STATISTICS: Template = Template::text(
    "statistics",
    "
SELECT hour, sum(succeeded)::bigint AS succeeded, sum(failed)::bigint AS failed
FROM __SCHEMA__.stats
WHERE hour >= $1 AND hour < $2
GROUP BY hour
ORDER BY hour",
);

/// Which `list_jobs` filters are present.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ListFilters {
    pub(crate) state: bool,
    pub(crate) queue: bool,
    pub(crate) name: bool,
    pub(crate) args: bool,
    pub(crate) unique_key: bool,
    pub(crate) retries_only: bool,
    /// Sorted by run time ([`jobs::storage::JobQuery::by_run_time`]).
    pub(crate) by_run_time: bool,
}

/// `%needle%` for ILIKE, with the pattern characters of `needle` escaped.
pub(crate) fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// [`Storage::counts`](jobs::Storage::counts) on PostgreSQL.
pub(crate) async fn counts(storage: &Database) -> Result<StateCounts> {
    let rows = storage
        .query("counts", &storage.statement(&COUNTS), &[])
        .await?;
    let mut counts = StateCounts::default();
    let what = || "the counts".to_owned();
    for row in &rows {
        let kind: String = row::column(row, "kind", &what)?;
        let key: String = row::column(row, "key", &what)?;
        let value: i64 = row::column(row, "count", &what)?;
        let value = u64::try_from(value).unwrap_or(0);
        match kind.as_str() {
            "state" => {
                let state = row::state_from_sql(&key, &what)?;
                counts.by_state.insert(state, value);
            }
            "queue" => {
                counts.enqueued_by_queue.insert(key, value);
            }
            "retries" => counts.retries = value,
            "recurring" => counts.recurring = value,
            "servers" => counts.servers = value,
            _ => {}
        }
    }
    // Enqueued jobs are counted once, per queue (see COUNTS).
    let enqueued: u64 = counts.enqueued_by_queue.values().sum();
    if enqueued > 0 {
        counts.by_state.insert(JobState::Enqueued, enqueued);
    }
    Ok(counts)
}

/// A page of `list_jobs` on the (quoted) `schema`, for the filters present (one statement per combination, each
/// prepared once, so every plan can use the indexes its filters allow). `$1` offset and
/// `$2` limit come first; filter parameters follow in the order of [`ListFilters`].
pub(crate) fn list_sql(schema: &str, filters: ListFilters) -> String {
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
    if filters.unique_key {
        conditions.push(param("job.unique_key ILIKE ?::text"));
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
        schema = schema,
        columns = RECORD_COLUMNS.replace("__SCHEMA__", schema),
    )
}

/// [`Storage::list_jobs`](jobs::Storage::list_jobs) on PostgreSQL.
pub(crate) async fn list_jobs(storage: &Database, query: JobQuery) -> Result<JobPage> {
    let filters = ListFilters {
        state: query.state.is_some(),
        queue: query.queue.is_some(),
        name: query.name_contains.is_some(),
        args: query.args_contains.is_some(),
        unique_key: query.unique_key_contains.is_some(),
        retries_only: query.retries_only,
        by_run_time: query.by_run_time(),
    };
    let sql = list_sql(storage.quoted_schema(), filters);
    let limit = big(if query.limit == 0 { 20 } else { query.limit });
    let offset = big(query.offset);
    let state = query.state.map(JobState::as_str);
    let name = query.name_contains.as_deref().map(contains_pattern);
    let args = query.args_contains.as_deref().map(contains_pattern);
    let unique_key = query.unique_key_contains.as_deref().map(contains_pattern);
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&offset, &limit];
    if let Some(state) = &state {
        params.push(state);
    }
    if let Some(queue) = &query.queue {
        params.push(queue);
    }
    if let Some(name) = &name {
        params.push(name);
    }
    if let Some(args) = &args {
        params.push(args);
    }
    if let Some(unique_key) = &unique_key {
        params.push(unique_key);
    }
    let rows = storage.query("list jobs", &sql, &params).await?;
    let mut page = JobPage::default();
    for row in &rows {
        let total: i64 = row::column(row, "total", &|| "the job list".to_owned())?;
        page.total = u64::try_from(total).unwrap_or(0);
        let id: Option<i64> = row::column(row, "id", &|| "the job list".to_owned())?;
        if id.is_some() {
            page.jobs.push(row::job_record(row, false)?);
        }
    }
    Ok(page)
}

/// [`Storage::statistics`](jobs::Storage::statistics) on PostgreSQL.
pub(crate) async fn statistics(
    storage: &Database,
    granularity: Granularity,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<StatPoint>> {
    let step = match granularity {
        Granularity::Hour => TimeDelta::hours(1),
        Granularity::Day => TimeDelta::days(1),
    };
    let start = from.duration_trunc(step).unwrap_or(from);
    // The buckets cover whole steps: the last one may end after `to`.
    let mut end = start;
    while end < to {
        end += step;
    }
    let rows = storage
        .query(
            "statistics",
            &storage.statement(&STATISTICS),
            &[&ts(start), &ts(end)],
        )
        .await?;
    let mut hours = BTreeMap::new();
    let what = || "the statistics".to_owned();
    for row in &rows {
        let hour: DateTime<Utc> = row::column(row, "hour", &what)?;
        let succeeded: i64 = row::column(row, "succeeded", &what)?;
        let failed: i64 = row::column(row, "failed", &what)?;
        hours.insert(
            hour,
            (
                u64::try_from(succeeded).unwrap_or(0),
                u64::try_from(failed).unwrap_or(0),
            ),
        );
    }
    let mut points = Vec::new();
    let mut at = start;
    while at < to {
        let end = at + step;
        let (succeeded, failed) = hours
            .range(at..end)
            .fold((0, 0), |(s, f), (_, (ds, df))| (s + ds, f + df));
        points.push(StatPoint {
            at,
            succeeded,
            failed,
        });
        at = end;
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn patterns_escape_wildcards() {
        assert_eq!(contains_pattern("ada@"), "%ada@%");
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
