//! Every operation of the storage, one module per operation or small family, each holding
//! its SQL (a [`Template`](crate::database::Template)), the parameters it binds and the rows it
//! reads back. `impl Storage for PostgresStorage` (in `storage.rs`) delegates to these; each
//! runs on the [`Database`](crate::database::Database).
//!
//! The templates name tables as `__SCHEMA__.table`; the database substitutes the quoted schema
//! once per storage, and each statement is prepared once per connection (deadpool's statement
//! cache). Parameters are typed with casts so a statement prepares the same way everywhere.
//! What a job's history is made of, and which SQL function builds each entry's data, is in
//! `docs/storage.md`.

pub(crate) mod complete;
pub(crate) mod dashboard;
pub(crate) mod enqueue;
pub(crate) mod fetch;
pub(crate) mod flow;
pub(crate) mod lease;
pub(crate) mod maintenance;
pub(crate) mod manual;
pub(crate) mod read;
pub(crate) mod recurring;
pub(crate) mod release;
pub(crate) mod servers;
pub(crate) mod shares;

use chrono::{DateTime, Utc};

/// The non-final states, in which a job holds its unique key: the predicate of the index
/// `jobs_unique_held_idx` (migration 0011), which a statement must spell alike to use it.
pub(crate) const HELD_STATES: &str = "('enqueued', 'scheduled', 'awaiting', 'processing')";

/// `sql` with `__HELD_STATES__` replaced by [`HELD_STATES`].
pub(crate) fn with_held_states(sql: &str) -> String {
    sql.replace("__HELD_STATES__", HELD_STATES)
}

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
