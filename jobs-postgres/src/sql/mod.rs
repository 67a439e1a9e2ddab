//! Every operation of the storage, one module per operation or small family, each holding
//! its SQL, the parameters it binds and the rows it reads back; [`Sql`] holds the statements
//! of one schema. `impl Storage for PostgresStorage` (in `storage.rs`) delegates to these.
//!
//! The templates name tables as `__SCHEMA__.table`; [`Sql::new`] substitutes the quoted schema
//! once per storage, and each statement is prepared once per connection (deadpool's statement
//! cache). Parameters are typed with casts so a statement prepares the same way everywhere.

pub(crate) mod complete;
pub(crate) mod dashboard;
pub(crate) mod enqueue;
pub(crate) mod fetch;
pub(crate) mod lease;
pub(crate) mod maintenance;
pub(crate) mod manual;
pub(crate) mod read;
pub(crate) mod recurring;
pub(crate) mod release;
pub(crate) mod servers;

use chrono::{DateTime, Utc};

use crate::options::quote_identifier;

/// A time Postgres can store: chrono reaches further into the past than `timestamptz`
/// (4713 BC), so "before the beginning of time" (a retention longer than history) is clamped.
pub(crate) fn ts(at: DateTime<Utc>) -> DateTime<Utc> {
    let earliest = DateTime::<Utc>::from_timestamp(-200_000_000_000, 0).unwrap_or(at);
    at.max(earliest)
}

/// A count or limit as the `bigint` SQL wants.
pub(crate) fn big(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn count(value: i64) -> usize {
    usize::try_from(value).unwrap_or(0)
}

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
            enqueue: t(enqueue::ENQUEUE),
            lock_parents: t(enqueue::LOCK_PARENTS),
            release: t(release::RELEASE),
            fetch: t(fetch::FETCH),
            complete: t(complete::COMPLETE),
            keep_alive: t(lease::KEEP_ALIVE),
            delete: t(&manual::delete_sql()),
            requeue: t(&manual::requeue_sql()),
            rearm: t(manual::REARM),
            jobs: t(&read::jobs_sql()),
            promote_scheduled: t(maintenance::PROMOTE_SCHEDULED),
            rescue_expired: t(maintenance::RESCUE_EXPIRED),
            prune: t(maintenance::PRUNE),
            try_lead: t(maintenance::TRY_LEAD),
            resign: t(maintenance::RESIGN),
            register_server: t(servers::REGISTER_SERVER),
            heartbeat: t(servers::HEARTBEAT),
            unregister_server: t(servers::UNREGISTER_SERVER),
            remove_dead_servers: t(servers::REMOVE_DEAD_SERVERS),
            servers: t(servers::SERVERS),
            upsert_recurring: t(recurring::UPSERT_RECURRING),
            recurring: t(&recurring::recurring_sql("WHERE recurring.id = $1")),
            list_recurring: t(&recurring::recurring_sql("ORDER BY recurring.id")),
            due_recurring: t(&recurring::recurring_sql(
                "WHERE NOT recurring.paused AND recurring.next_run <= $1 \
                 ORDER BY recurring.id LIMIT $2",
            )),
            remove_recurring: t(recurring::REMOVE_RECURRING),
            set_recurring_paused: t(recurring::SET_RECURRING_PAUSED),
            claim_recurring: t(recurring::CLAIM_RECURRING),
            record_recurring_run: t(recurring::RECORD_RECURRING_RUN),
            counts: t(dashboard::COUNTS),
            statistics: t(dashboard::STATISTICS),
            quoted_schema,
        }
    }

    /// A page of `list_jobs`, for the filters present (one statement per combination, each
    /// prepared once, so every plan can use the indexes its filters allow). `$1` offset and
    /// `$2` limit come first; filter parameters follow in the order of [`dashboard::ListFilters`].
    pub(crate) fn list_jobs(&self, filters: dashboard::ListFilters) -> String {
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
            columns = read::RECORD_COLUMNS.replace("__SCHEMA__", &self.quoted_schema),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_clamped_to_what_postgres_stores() {
        let min = ts(DateTime::<Utc>::MIN_UTC);
        assert!(min > DateTime::<Utc>::MIN_UTC);
        let now = Utc::now();
        assert_eq!(ts(now), now);
        assert_eq!(ts(DateTime::<Utc>::MAX_UTC), DateTime::<Utc>::MAX_UTC);
    }
}
