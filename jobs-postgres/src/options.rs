//! [`PostgresOptions`]: the schema, pool and notification settings of a [`PostgresStorage`],
//! and the identifier rule every configurable name follows.
//!
//! [`PostgresStorage`]: crate::PostgresStorage

use std::time::Duration;

use crate::error::PostgresError;

/// The default schema.
pub const DEFAULT_SCHEMA: &str = "jobs";

/// The default largest job arguments accepted, in bytes (1 MiB).
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// Session settings of the connections [`PostgresStorage::connect`] opens (the startup
/// `options` parameter, added to any the URL gives). Give a pool of your own the same
/// (`tokio_postgres::Config::options`) before [`PostgresStorage::from_pool`].
///
/// - `jit=off`: every statement touches a few rows, but the generic plans of the batch
///   statements are costed above `jit_above_cost`, and JIT compilation took 40 ms to 1 s per
///   execution (auto_explain in the `process` benchmark).
/// - `enable_seqscan`, `enable_hashjoin`, `enable_mergejoin` off: each statement has an index
///   (or `ctid`) path per row, and must take it whatever the statistics say. A plan cached
///   while the jobs table was small (a fresh schema, before autovacuum's first `ANALYZE`)
///   scanned the whole table per batch once it had grown: 20-45 ms per fetch and completion,
///   and the `steady` benchmark fell behind at 5,000 jobs/s; with these settings it keeps up
///   with 15,000. The settings are penalties, not bans: a query with no index path (a
///   dashboard search by name) still scans.
///
/// [`PostgresStorage`]: crate::PostgresStorage
/// [`PostgresStorage::connect`]: crate::PostgresStorage::connect
/// [`PostgresStorage::from_pool`]: crate::PostgresStorage::from_pool
pub const SESSION_OPTIONS: &str =
    "-c jit=off -c enable_seqscan=off -c enable_hashjoin=off -c enable_mergejoin=off";

/// Settings of a [`PostgresStorage`](crate::PostgresStorage). Every field has a default:
///
/// | setting | default | what |
/// | --- | --- | --- |
/// | [`schema`](Self::schema) | `jobs` | the schema holding the tables (created by `migrate`) |
/// | [`pool_size`](Self::pool_size) | 10 | connections in the pool `connect` builds |
/// | [`notify_channel`](Self::notify_channel) | the schema name | the `LISTEN`/`NOTIFY` channel of enqueues |
/// | [`application_name`](Self::application_name) | `jobs:<schema>` | `application_name` of the connections `connect` opens (unless the URL sets one) |
/// | [`max_payload_bytes`](Self::max_payload_bytes) | 1 MiB | largest job arguments accepted |
/// | [`connect_timeout`](Self::connect_timeout) | 10 s | how long opening a connection may take (unless the URL sets one) |
/// | [`query_timeout`](Self::query_timeout) | 30 s | how long one storage operation may take, waiting for a pooled connection included |
/// | [`tcp_user_timeout`](Self::tcp_user_timeout) | 30 s | how long sent data may stay unacknowledged before the connection is dropped (unless the URL sets `tcp_user_timeout`) |
/// | [`keepalives_idle`](Self::keepalives_idle) | 15 s | idle time before TCP keepalive probes (5 s apart, 3 of them; unless the URL sets `keepalives_idle`) |
///
/// Every call to the database is bounded: a network that drops packets silently (a partition,
/// a failed-over address) surfaces as an error within these times, instead of a call that
/// never returns. The server side is told the same (`tcp_keepalives_*` session settings), so
/// it ends a vanished client's session, and its locks, as soon.
///
/// Names (schema, channel) must match `^[a-z_][a-z0-9_]{0,62}$`; they are checked when the
/// storage is built and always quoted in SQL.
///
/// ```
/// use jobs_postgres::PostgresOptions;
///
/// let options = PostgresOptions::new().schema("billing_jobs").pool_size(4);
/// assert_eq!(options.schema_name(), "billing_jobs");
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct PostgresOptions {
    pub(crate) schema: String,
    pub(crate) pool_size: usize,
    pub(crate) notify_channel: Option<String>,
    pub(crate) application_name: Option<String>,
    pub(crate) max_payload_bytes: Option<usize>,
    pub(crate) connect_timeout: Duration,
    pub(crate) listen_config: Option<tokio_postgres::Config>,
    pub(crate) notify_throttle: Duration,
    pub(crate) query_timeout: Duration,
    pub(crate) tcp_user_timeout: Duration,
    pub(crate) keepalives_idle: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            schema: DEFAULT_SCHEMA.to_owned(),
            pool_size: 10,
            notify_channel: None,
            application_name: None,
            max_payload_bytes: Some(DEFAULT_MAX_PAYLOAD_BYTES),
            connect_timeout: Duration::from_secs(10),
            listen_config: None,
            notify_throttle: Duration::from_millis(5),
            query_timeout: Duration::from_secs(30),
            tcp_user_timeout: Duration::from_secs(30),
            keepalives_idle: Duration::from_secs(15),
        }
    }
}

impl PostgresOptions {
    /// The defaults (see the table above).
    pub fn new() -> Self {
        PostgresOptions::default()
    }

    /// The schema holding the tables: one per application, or one per test. Default `jobs`.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Connections in the pool that [`connect`](crate::PostgresStorage::connect_with) builds
    /// (not counting the one `LISTEN` connection). Default 10.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// The channel enqueues `NOTIFY` and idle servers `LISTEN` on. Default: the schema name,
    /// so applications in different schemas of one database do not wake each other.
    pub fn notify_channel(mut self, channel: impl Into<String>) -> Self {
        self.notify_channel = Some(channel.into());
        self
    }

    /// The `application_name` of the connections the storage opens, as seen in
    /// `pg_stat_activity`. Default `jobs:<schema>`; a URL that sets one wins.
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }

    /// The largest job arguments (JSON text) an enqueue accepts, in bytes; `None` for no limit.
    /// Default 1 MiB: every fetch carries the arguments, so big payloads belong in a table or
    /// an object store, with their key as the argument.
    pub fn max_payload_bytes(mut self, limit: Option<usize>) -> Self {
        self.max_payload_bytes = limit;
        self
    }

    /// How long opening a connection may take, unless the URL sets `connect_timeout`.
    /// Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one storage operation (a fetch, a batch of completions, a lease renewal, ...)
    /// may take in all, waiting for a pooled connection included; then it fails with
    /// [`PostgresError::Timeout`](crate::PostgresError::Timeout) and the connections the pool
    /// held at that moment are replaced as they are next taken (one that hung once may be
    /// dead). Default 30 s: every statement of the library touches a bounded number of rows
    /// and takes milliseconds, so an operation this slow is waiting on a lock or a network
    /// that is gone. Migrations are not bounded by it.
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// How long data sent on a connection may stay unacknowledged before the kernel drops the
    /// connection (`TCP_USER_TIMEOUT`), unless the URL sets `tcp_user_timeout`. Default 30 s.
    pub fn tcp_user_timeout(mut self, timeout: Duration) -> Self {
        self.tcp_user_timeout = timeout;
        self
    }

    /// Idle time before a connection sends TCP keepalive probes (then every 5 s, dropped after
    /// 3 unanswered), unless the URL sets `keepalives_idle`. Default 15 s (the operating
    /// system's default, 2 hours, lets a `LISTEN` connection to a vanished server hang that
    /// long).
    pub fn keepalives_idle(mut self, idle: Duration) -> Self {
        self.keepalives_idle = idle;
        self
    }

    /// Where the `LISTEN` connection of a storage built with
    /// [`from_pool_with`](crate::PostgresStorage::from_pool_with) connects (without TLS).
    /// Without it such a storage is woken only by its own enqueues and otherwise polls.
    /// [`connect`](crate::PostgresStorage::connect) sets it from the URL.
    pub fn listen_config(mut self, config: tokio_postgres::Config) -> Self {
        self.listen_config = Some(config);
        self
    }

    /// At most one enqueue `NOTIFY` per this window: every NOTIFY holds a cluster-wide lock
    /// until its commit, so one per insert serialises concurrent enqueuers. An enqueue inside
    /// the window sends none; one NOTIFY follows at the window's end, so other processes wake
    /// at most this late (this process's own servers are woken in memory at once). Enqueues in
    /// a caller's transaction always NOTIFY at their commit. Default 5 ms; zero notifies on
    /// every enqueue.
    pub fn notify_throttle(mut self, window: Duration) -> Self {
        self.notify_throttle = window;
        self
    }

    /// The schema name these options use.
    pub fn schema_name(&self) -> &str {
        &self.schema
    }

    /// The notification channel these options use.
    pub fn channel_name(&self) -> &str {
        self.notify_channel.as_deref().unwrap_or(&self.schema)
    }

    /// The application name of the connections `connect` opens.
    pub fn application_name_or_default(&self) -> String {
        self.application_name
            .clone()
            .unwrap_or_else(|| format!("jobs:{}", self.schema))
    }

    /// Checks every name and size.
    pub(crate) fn validate(&self) -> Result<(), PostgresError> {
        validate_identifier("schema name", &self.schema)?;
        validate_identifier("notify channel", self.channel_name())?;
        if self.query_timeout.is_zero() {
            return Err(PostgresError::InvalidOption(
                "query_timeout must be longer than zero".to_owned(),
            ));
        }
        if self.pool_size == 0 {
            return Err(PostgresError::InvalidOption(
                "pool_size must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Checks that `name` matches `^[a-z_][a-z0-9_]{0,62}$`: a lowercase Postgres identifier that
/// needs no escaping and is not truncated (63 bytes at most).
///
/// ```
/// use jobs_postgres::validate_identifier;
///
/// assert!(validate_identifier("schema name", "jobs_test_1").is_ok());
/// let error = validate_identifier("schema name", "bad\"name").unwrap_err();
/// assert!(error.to_string().contains("invalid schema name"));
/// ```
pub fn validate_identifier(kind: &'static str, name: &str) -> Result<(), PostgresError> {
    let bytes = name.as_bytes();
    let valid = matches!(bytes.first(), Some(b'a'..=b'z' | b'_'))
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'));
    if valid {
        Ok(())
    } else {
        Err(PostgresError::InvalidIdentifier {
            kind,
            name: name.to_owned(),
        })
    }
}

/// `name` as a quoted SQL identifier. Only called on validated names; quotes are doubled
/// anyway so a mistake can never become an injection.
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_the_rule() {
        for good in ["jobs", "_x", "a1_b2", &"a".repeat(63)] {
            assert!(validate_identifier("schema name", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "Jobs",
            "with space",
            "quo\"te",
            "semi;colon",
            "dash-ed",
            "é",
            &"a".repeat(64),
        ] {
            assert!(validate_identifier("schema name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote_identifier("jobs"), "\"jobs\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn defaults_derive_from_the_schema() {
        let options = PostgresOptions::new().schema("app");
        assert_eq!(options.channel_name(), "app");
        assert_eq!(options.application_name_or_default(), "jobs:app");
        assert!(options.validate().is_ok());
        let bad = PostgresOptions::new().schema("x\"; drop table y; --");
        let error = bad.validate().unwrap_err().to_string();
        assert!(error.starts_with("invalid schema name"), "{error}");
    }
}
