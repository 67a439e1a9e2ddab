//! [`PostgresStorage`]: the constructors, migrations, transactional enqueue, and the
//! [`Storage`] implementation, one method per trait method.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, StatementCache};
use jobs::storage::{
    Completion, FetchRequest, FetchedJob, Granularity, InitialState, JobPage, JobQuery, NewJob,
    PruneRequest, RecurringClaim, RecurringJob, ServerInfo, ServerRecord, StatPoint, StateCounts,
    StateData, Storage, CONTINUATION_NOT_MET,
};
use jobs::{Error, Job, JobId, JobRecord, JobState, Result};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::{NoTls, Statement, Transaction};

use crate::error::PostgresError;
use crate::migrate;
use crate::notify;
use crate::options::{PostgresOptions, SESSION_OPTIONS};
use crate::row;
use crate::sql::{ListFilters, Sql};

/// A [`Storage`] in PostgreSQL: jobs survive restarts and are shared by every process that
/// connects to the same schema.
///
/// Cheap to clone (one shared pool). See the [crate docs](crate) for the schema, the fetch
/// statement and the guarantees.
#[derive(Clone)]
pub struct PostgresStorage {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    schema: String,
    channel: String,
    sql: Sql,
    max_payload_bytes: Option<usize>,
    listen_config: Option<tokio_postgres::Config>,
    work: Arc<Notify>,
    listener: Mutex<Option<JoinHandle<()>>>,
    throttle: notify::Throttle,
    last_vacuum: Mutex<Option<std::time::Instant>>,
    vacuum_failed: std::sync::atomic::AtomicBool,
    /// The bound on each storage operation (`PostgresOptions::query_timeout`).
    query_timeout: Duration,
    /// Pooled connections older than the last timed-out operation (see `bounded`).
    suspect: Arc<Suspect>,
}

/// Probes 5 s apart, 3 unanswered drop the connection (with `PostgresOptions::keepalives_idle`).
const KEEPALIVES_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVES_RETRIES: u32 = 3;

/// Bounds how long a dead network can hold a connection: unacknowledged data
/// (`TCP_USER_TIMEOUT`) and idle keepalive probes, each unless the URL sets its own.
fn bound_connections(config: &mut tokio_postgres::Config, options: &PostgresOptions) {
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(options.tcp_user_timeout);
    }
    // tokio-postgres reports its default (2 hours) when the URL sets none.
    if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
        config.keepalives_idle(options.keepalives_idle);
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(KEEPALIVES_INTERVAL);
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(KEEPALIVES_RETRIES);
    }
}

/// When an operation last timed out. A connection it was using may be dead (a partition
/// leaves it open with nothing arriving) and went back to the pool when the operation was
/// dropped; which one is not known, so every connection opened before that moment is replaced
/// when next taken from the pool (a reconnect costs milliseconds; a dead connection costs a
/// whole timeout per use).
#[derive(Debug)]
struct Suspect {
    since: std::time::Instant,
    /// Nanoseconds after `since` of the last timeout; 0 for none.
    before: std::sync::atomic::AtomicU64,
}

impl Default for Suspect {
    fn default() -> Self {
        Suspect {
            since: std::time::Instant::now(),
            before: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Suspect {
    fn mark(&self) {
        let nanos = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.before
            .fetch_max(nanos.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    fn covers(&self, created: std::time::Instant) -> bool {
        let before = self.before.load(std::sync::atomic::Ordering::Relaxed);
        before > 0 && created <= self.since + Duration::from_nanos(before)
    }
}

/// How often the elected server looks at the jobs table's dead rows (see `vacuum_if_due`).
const VACUUM_INTERVAL: Duration = Duration::from_secs(10);

/// Dead row versions in the jobs table above which the elected server vacuums it.
const VACUUM_DEAD_ROWS: i64 = 50_000;

/// `VACUUM (SKIP_LOCKED)` of `table` if the statistics count more than [`VACUUM_DEAD_ROWS`]
/// dead rows in it (a vacuum of a table that is mostly live costs more than it saves).
async fn vacuum_when_bloated(
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

impl Drop for Inner {
    fn drop(&mut self) {
        let listener = self
            .listener
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = listener.take() {
            handle.abort();
        }
    }
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("schema", &self.inner.schema)
            .field("channel", &self.inner.channel)
            .field("pool", &self.inner.pool.status())
            .finish_non_exhaustive()
    }
}

/// Where a statement runs: a pooled connection (statements cached per connection) or a
/// caller's transaction (prepared on the spot).
struct Db<'a> {
    client: &'a tokio_postgres::Client,
    cache: Option<&'a StatementCache>,
    storage: &'a Inner,
}

impl Db<'_> {
    async fn prepare(
        &self,
        operation: &'static str,
        sql: &str,
    ) -> Result<Statement, PostgresError> {
        let prepared = match self.cache {
            Some(cache) => cache.prepare(self.client, sql).await,
            None => self.client.prepare(sql).await,
        };
        prepared.map_err(|error| self.storage.error(operation, error))
    }
}

/// What a release statement (`RELEASE`) did: the continuations it enqueued, and the jobs it
/// deleted with the time of their deletion (their own children are released in turn).
#[derive(Debug, Default)]
struct Released {
    enqueued: i64,
    deleted: Vec<i64>,
    deleted_at: Vec<DateTime<Utc>>,
}

impl Released {
    fn from_rows(rows: &[tokio_postgres::Row]) -> Result<Released, PostgresError> {
        let what = || "released continuations".to_owned();
        let mut released = Released::default();
        for row in rows {
            released.enqueued += row::column::<i64>(row, "count", &what)?;
            released
                .deleted
                .extend(row::column::<Vec<i64>>(row, "deleted", &what)?);
            released
                .deleted_at
                .extend(row::column::<Vec<DateTime<Utc>>>(row, "deleted_at", &what)?);
        }
        Ok(released)
    }
}

/// A time Postgres can store: chrono reaches further into the past than `timestamptz`
/// (4713 BC), so "before the beginning of time" (a retention longer than history) is clamped.
fn ts(at: DateTime<Utc>) -> DateTime<Utc> {
    let earliest = DateTime::<Utc>::from_timestamp(-200_000_000_000, 0).unwrap_or(at);
    at.max(earliest)
}

/// A count or limit as the `bigint` SQL wants.
fn big(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn count(value: i64) -> usize {
    usize::try_from(value).unwrap_or(0)
}

/// `%needle%` for ILIKE, with the pattern characters of `needle` escaped.
fn contains_pattern(needle: &str) -> String {
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

/// The first history entry of a new job: the same reason and data as `MemoryStorage`.
fn initial_entry(job: &NewJob) -> (JobState, Option<String>, StateData) {
    match job.initial {
        InitialState::Enqueued => (
            JobState::Enqueued,
            job.recurring.as_ref().map(|origin| origin.reason()),
            StateData {
                queue: Some(job.queue.clone()),
                occurrence: job.recurring.as_ref().map(|origin| origin.occurrence),
                ..StateData::default()
            },
        ),
        InitialState::Scheduled { at } => (
            JobState::Scheduled,
            None,
            StateData {
                run_at: Some(at),
                ..StateData::default()
            },
        ),
        InitialState::Awaiting { parent, .. } => (
            JobState::Awaiting,
            None,
            StateData {
                parent: Some(parent),
                ..StateData::default()
            },
        ),
    }
}

fn to_json(data: &StateData) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(data)?)
}

impl PostgresStorage {
    /// Connects to `url` (`postgres://user:password@host:port/database`, or the key=value
    /// form) with the default [`PostgresOptions`]: schema `jobs`, 10 connections. Fails if
    /// the database cannot be reached. Call [`migrate`](Self::migrate) before first use.
    pub async fn connect(url: &str) -> Result<PostgresStorage, PostgresError> {
        PostgresStorage::connect_with(url, PostgresOptions::new()).await
    }

    /// Connects to `url` with `options` (schema, pool size, channel, ...). The connections run
    /// with [`SESSION_OPTIONS`]. The pool and the `LISTEN` connection use no TLS; for TLS, build
    /// a pool and use [`from_pool_with`](Self::from_pool_with).
    pub async fn connect_with(
        url: &str,
        options: PostgresOptions,
    ) -> Result<PostgresStorage, PostgresError> {
        options.validate()?;
        let mut config: tokio_postgres::Config =
            url.parse()
                .map_err(|source: tokio_postgres::Error| PostgresError::InvalidUrl {
                    message: crate::error::describe(&source),
                    source,
                })?;
        if config.get_application_name().is_none() {
            config.application_name(options.application_name_or_default());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        bound_connections(&mut config, &options);
        let session = match config.get_options() {
            Some(given) => format!("{given} {SESSION_OPTIONS}"),
            None => SESSION_OPTIONS.to_owned(),
        };
        // The server probes the connection as often as the client does, so a vanished
        // client's session (and any lock it holds) ends as soon.
        let idle = config.get_keepalives_idle().as_secs().max(1);
        let session = format!(
            "{session} -c tcp_keepalives_idle={idle} -c tcp_keepalives_interval={} -c tcp_keepalives_count={}",
            KEEPALIVES_INTERVAL.as_secs(),
            KEEPALIVES_RETRIES
        );
        config.options(&session);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let suspect = Arc::new(Suspect::default());
        let marked = suspect.clone();
        let connect_timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(options.connect_timeout);
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(options.query_timeout))
            .create_timeout(Some(connect_timeout))
            .recycle_timeout(Some(options.query_timeout))
            .pre_recycle(deadpool_postgres::Hook::sync_fn(move |_, metrics| {
                if marked.covers(metrics.created) {
                    Err(deadpool_postgres::HookError::message(
                        "opened before an operation timed out",
                    ))
                } else {
                    Ok(())
                }
            }))
            .build()
            .map_err(PostgresError::Pool)?;
        let options = PostgresOptions {
            listen_config: Some(options.listen_config.clone().unwrap_or(config)),
            ..options
        };
        let storage = PostgresStorage::build(pool, options, suspect)?;
        // Fail now, with the driver's reason, if the database cannot be reached.
        drop(storage.client().await?);
        Ok(storage)
    }

    /// A storage on an existing pool, with the default options. Its wake-ups come only from
    /// its own enqueues (the pool's connection settings are not readable, so no `LISTEN`
    /// connection is opened): prefer [`from_pool_with`](Self::from_pool_with) and
    /// [`PostgresOptions::listen_config`] for servers.
    pub fn from_pool(pool: Pool) -> Result<PostgresStorage, PostgresError> {
        PostgresStorage::from_pool_with(pool, PostgresOptions::new())
    }

    /// A storage on an existing pool (TLS or not, any size), with `options`. Its connections
    /// keep their own session settings: give them [`SESSION_OPTIONS`] (the startup `options`
    /// of their `tokio_postgres::Config`) unless the pool serves other queries that must keep
    /// the planner's defaults. Each operation is still bounded by
    /// [`PostgresOptions::query_timeout`]; give the pool's `Config` a `tcp_user_timeout`,
    /// keepalives and pool timeouts too, as [`connect_with`](Self::connect_with) does, so
    /// that a connection left dead by a partition is dropped rather than reused.
    pub fn from_pool_with(
        pool: Pool,
        options: PostgresOptions,
    ) -> Result<PostgresStorage, PostgresError> {
        PostgresStorage::build(pool, options, Arc::new(Suspect::default()))
    }

    /// A storage on `pool`, whose pre-recycle hook (if any) reads `suspect`.
    fn build(
        pool: Pool,
        options: PostgresOptions,
        suspect: Arc<Suspect>,
    ) -> Result<PostgresStorage, PostgresError> {
        options.validate()?;
        Ok(PostgresStorage {
            inner: Arc::new(Inner {
                pool,
                channel: options.channel_name().to_owned(),
                sql: Sql::new(&options.schema),
                schema: options.schema,
                max_payload_bytes: options.max_payload_bytes,
                listen_config: options.listen_config,
                work: Arc::new(Notify::new()),
                listener: Mutex::new(None),
                throttle: notify::Throttle::new(options.notify_throttle),
                last_vacuum: Mutex::new(None),
                vacuum_failed: std::sync::atomic::AtomicBool::new(false),
                query_timeout: options.query_timeout,
                suspect,
            }),
        })
    }

    /// The connection pool.
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The schema holding the tables.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The `LISTEN`/`NOTIFY` channel.
    pub fn channel(&self) -> &str {
        &self.inner.channel
    }

    /// The SQL of `enqueue`, `fetch`, `complete`, the continuation release and `counts`, as
    /// this storage runs them. For the benchmark's `ceiling` scenario, which drives the same
    /// statements without the library, and plan tests; not API.
    #[doc(hidden)]
    pub fn __statements(&self) -> [(&'static str, &str); 5] {
        let sql = &self.inner.sql;
        [
            ("enqueue", sql.enqueue.as_str()),
            ("fetch", sql.fetch.as_str()),
            ("complete", sql.complete.as_str()),
            ("release", sql.release.as_str()),
            ("counts", sql.counts.as_str()),
        ]
    }

    /// Creates the schema if needed and applies every migration not applied yet, in one
    /// transaction under an advisory lock: safe to call from many processes at once, and a
    /// no-op when the schema is up to date. Returns the versions it applied.
    pub async fn migrate(&self) -> Result<Vec<u32>, PostgresError> {
        let mut client = self.client().await?;
        migrate::up(&mut client, &self.inner.schema).await
    }

    /// Reverts the applied migrations newer than `version`, newest first (`0` removes every
    /// table, keeping the schema and its `jobs_migrations` table). For tests and rollbacks;
    /// the data of the reverted tables is lost. Returns the versions it reverted.
    pub async fn migrate_down_to(&self, version: u32) -> Result<Vec<u32>, PostgresError> {
        let mut client = self.client().await?;
        migrate::down_to(&mut client, &self.inner.schema, version).await
    }

    /// The migration versions applied to the schema, oldest first (empty before `migrate`).
    pub async fn applied_migrations(&self) -> Result<Vec<u32>, PostgresError> {
        let client = self.client().await?;
        migrate::applied(&client, &self.inner.schema).await
    }

    /// Enqueues `job` inside the caller's transaction: it exists (and workers are notified)
    /// only if the transaction commits, together with the caller's own writes.
    ///
    /// Works with a `tokio_postgres::Transaction` and with deadpool's `Transaction` (pass
    /// `&tx`; it derefs). The transaction must be on the database of this storage.
    pub async fn enqueue_tx<J: Job>(&self, tx: &Transaction<'_>, job: &J) -> Result<JobId> {
        let mut ids = self.enqueue_many_tx(tx, std::iter::once(job)).await?;
        ids.pop()
            .ok_or_else(|| Error::storage("the storage created no job"))
    }

    /// Enqueues many jobs of one type inside the caller's transaction (one statement).
    pub async fn enqueue_many_tx<'j, J: Job>(
        &self,
        tx: &Transaction<'_>,
        jobs: impl IntoIterator<Item = &'j J>,
    ) -> Result<Vec<JobId>> {
        let jobs = jobs
            .into_iter()
            .map(|job| {
                Ok(NewJob {
                    name: J::NAME.to_owned(),
                    queue: J::QUEUE.to_owned(),
                    args: serde_json::to_string(job)?,
                    initial: InitialState::Enqueued,
                    recurring: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.enqueue_new_tx(tx, jobs, Utc::now()).await
    }

    /// Creates jobs in any initial state (scheduled, continuations) inside the caller's
    /// transaction, as [`Storage::enqueue`] does outside one.
    pub async fn enqueue_new_tx(
        &self,
        tx: &Transaction<'_>,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
    ) -> Result<Vec<JobId>> {
        let db = Db {
            client: tx.client(),
            cache: None,
            storage: &self.inner,
        };
        // Inside the caller's transaction the NOTIFY goes out at their commit, never before.
        self.insert(&db, jobs, now, Some(&self.inner.channel)).await
    }

    async fn client(&self) -> Result<Object, PostgresError> {
        self.inner
            .pool
            .get()
            .await
            .map_err(PostgresError::connection)
    }

    fn db<'a>(&'a self, client: &'a Object) -> Db<'a> {
        Db {
            client,
            cache: Some(&client.statement_cache),
            storage: &self.inner,
        }
    }

    fn wake(&self) {
        notify::wake(&self.inner.work);
    }

    /// Runs one storage operation within the query timeout. A timed-out operation is dropped
    /// where it stands: a transaction it began is rolled back by the server when the
    /// connection goes, and the connections of the pool are replaced (see `Suspect`).
    async fn bounded<T>(
        &self,
        operation: &'static str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let timeout = self.inner.query_timeout;
        match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => {
                self.inner.suspect.mark();
                Err(PostgresError::Timeout { operation, timeout }.into())
            }
        }
    }

    pub(crate) fn inner_throttle(&self) -> &notify::Throttle {
        &self.inner.throttle
    }

    /// Every [`VACUUM_INTERVAL`], vacuums the jobs table if it holds more than
    /// [`VACUUM_DEAD_ROWS`] dead rows (the elected server's maintenance calls `prune` every
    /// round). Every state change leaves a dead row version and dead index
    /// entries, and the fetch walks over the dead entries at the head of its queue's index
    /// until a vacuum removes them; autovacuum looks at a database only once a minute by
    /// default, which under thousands of jobs a second lets them pile up into the hundreds of
    /// thousands. `SKIP_LOCKED`: never waits. A failure (say, no ownership of the table) is
    /// logged once and autovacuum is left to it.
    async fn vacuum_if_due(&self) {
        {
            let mut last = self
                .inner
                .last_vacuum
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match *last {
                Some(at) if at.elapsed() < VACUUM_INTERVAL => return,
                _ => *last = Some(std::time::Instant::now()),
            }
        }
        let table = format!(
            "{}.jobs",
            crate::options::quote_identifier(&self.inner.schema)
        );
        let outcome = match self.client().await {
            Ok(client) => vacuum_when_bloated(&client, &table)
                .await
                .map_err(|e| self.inner.error("vacuum", e).to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = outcome {
            if !self
                .inner
                .vacuum_failed
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                tracing::warn!(%error, "vacuuming the jobs table failed; relying on autovacuum");
            }
        }
    }

    /// Sends a NOTIFY on the channel now (the throttle's deferred one).
    pub(crate) async fn send_notify(&self) -> Result<()> {
        let client = self.client().await?;
        client
            .execute("SELECT pg_notify($1, '')", &[&self.inner.channel])
            .await
            .map_err(|e| self.inner.error("notify", e))?;
        Ok(())
    }

    /// The fetch statement of this schema (for `EXPLAIN` in tests).
    #[cfg(feature = "test-util")]
    pub(crate) fn fetch_sql(&self) -> &str {
        &self.inner.sql.fetch
    }

    /// Starts the `LISTEN` task if it is not running (first wait, or its runtime ended).
    fn ensure_listener(&self) {
        let Some(config) = &self.inner.listen_config else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let mut listener = self
            .inner
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if listener
            .as_ref()
            .is_some_and(|handle| !handle.is_finished())
        {
            return;
        }
        *listener = Some(tokio::spawn(notify::listen(
            config.clone(),
            self.inner.channel.clone(),
            self.inner.work.clone(),
        )));
    }

    /// Creates jobs through `db` (autocommit, or inside a transaction when continuations need
    /// their parents locked). Continuations of finished parents are released at once.
    async fn insert(
        &self,
        db: &Db<'_>,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
        channel: Option<&str>,
    ) -> Result<Vec<JobId>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        for job in &jobs {
            jobs::validate_queue(&job.queue)?;
        }
        if let Some(limit) = self.inner.max_payload_bytes {
            if let Some(job) = jobs.iter().find(|job| job.args.len() > limit) {
                return Err(PostgresError::PayloadTooLarge {
                    name: job.name.clone(),
                    size: job.args.len(),
                    limit,
                }
                .into());
            }
        }
        let mut parents: Vec<i64> = Vec::new();
        for job in &jobs {
            if let InitialState::Awaiting { parent, .. } = job.initial {
                if !parents.contains(&parent.0) {
                    parents.push(parent.0);
                }
            }
        }
        let sql = &self.inner.sql;
        if !parents.is_empty() {
            let statement = db.prepare("enqueue", &sql.lock_parents).await?;
            let rows = db
                .client
                .query(&statement, &[&parents])
                .await
                .map_err(|e| self.inner.error("enqueue", e))?;
            let mut found = HashSet::new();
            for row in &rows {
                let id: i64 = row::column(row, "id", &|| "a parent job".to_owned())?;
                found.insert(id);
            }
            if let Some(missing) = parents.iter().find(|parent| !found.contains(parent)) {
                return Err(Error::ParentNotFound(JobId(*missing)));
            }
        }
        let mut names = Vec::with_capacity(jobs.len());
        let mut queues = Vec::with_capacity(jobs.len());
        let mut args = Vec::with_capacity(jobs.len());
        let mut states = Vec::with_capacity(jobs.len());
        let mut run_ats: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(jobs.len());
        let mut parent_ids: Vec<Option<i64>> = Vec::with_capacity(jobs.len());
        let mut conditions: Vec<Option<&str>> = Vec::with_capacity(jobs.len());
        let mut recurring_ids: Vec<Option<&str>> = Vec::with_capacity(jobs.len());
        let mut reasons: Vec<Option<String>> = Vec::with_capacity(jobs.len());
        let mut data = Vec::with_capacity(jobs.len());
        for job in &jobs {
            // Created Enqueued with no reason: the entry is the row itself, its data NULL (see
            // ENQUEUE); otherwise a history row with the entry `MemoryStorage` records.
            let plain = matches!(job.initial, InitialState::Enqueued) && job.recurring.is_none();
            let (state, reason, entry) = if plain {
                (JobState::Enqueued, None, None)
            } else {
                let (state, reason, entry) = initial_entry(job);
                (state, reason, Some(to_json(&entry)?))
            };
            names.push(job.name.as_str());
            queues.push(job.queue.as_str());
            args.push(job.args.as_str());
            states.push(state.as_str());
            run_ats.push(match job.initial {
                InitialState::Scheduled { at } => Some(ts(at)),
                _ => None,
            });
            let (parent, condition) = match job.initial {
                InitialState::Awaiting { parent, on } => {
                    (Some(parent.0), Some(row::continue_on_to_sql(on)))
                }
                _ => (None, None),
            };
            parent_ids.push(parent);
            conditions.push(condition);
            recurring_ids.push(job.recurring.as_ref().map(|origin| origin.id.as_str()));
            reasons.push(reason);
            data.push(entry);
        }
        let now = ts(now);
        let statement = db.prepare("enqueue", &sql.enqueue).await?;
        let params: [&(dyn ToSql + Sync); 12] = [
            &names,
            &queues,
            &args,
            &states,
            &run_ats,
            &parent_ids,
            &conditions,
            &recurring_ids,
            &reasons,
            &data,
            &now,
            &channel,
        ];
        let rows = db
            .client
            .query(&statement, &params)
            .await
            .map_err(|e| self.inner.error("enqueue", e))?;
        let ids = rows
            .iter()
            .map(|row| row::column::<i64>(row, "id", &|| "an enqueued job".to_owned()).map(JobId))
            .collect::<Result<Vec<_>, _>>()?;
        if ids.len() != jobs.len() {
            return Err(Error::storage(format!(
                "enqueue created {} jobs of {}",
                ids.len(),
                jobs.len()
            )));
        }
        if !parents.is_empty() {
            self.release(db, &parents, now).await?;
        }
        Ok(ids)
    }

    /// Releases the Awaiting continuations of `parents` that reached a final state.
    async fn release(&self, db: &Db<'_>, parents: &[i64], now: DateTime<Utc>) -> Result<()> {
        let statement = db
            .prepare("release continuations", &self.inner.sql.release)
            .await?;
        let times = vec![now; parents.len()];
        let rows = db
            .client
            .query(
                &statement,
                &[&parents, &times, &self.inner.channel, &CONTINUATION_NOT_MET],
            )
            .await
            .map_err(|e| self.inner.error("release continuations", e))?;
        let released = Released::from_rows(&rows)?;
        let enqueued = released.enqueued + self.release_deleted(db, released).await?;
        if enqueued > 0 {
            self.wake();
        }
        Ok(())
    }

    /// Releases the children of the jobs a release statement deleted, with a new snapshot per
    /// round, until a round deletes nothing (see `RELEASE`: a continuation committed while
    /// the statement waited for its parent's row lock is not in its snapshot). Returns the
    /// continuations enqueued; none is, as a deleted parent only deletes, unless a child waits
    /// for any finish.
    async fn release_deleted(&self, db: &Db<'_>, mut released: Released) -> Result<i64> {
        let mut enqueued = 0;
        while !released.deleted.is_empty() {
            let statement = db
                .prepare("release continuations", &self.inner.sql.release)
                .await?;
            let rows = db
                .client
                .query(
                    &statement,
                    &[
                        &released.deleted,
                        &released.deleted_at,
                        &self.inner.channel,
                        &CONTINUATION_NOT_MET,
                    ],
                )
                .await
                .map_err(|e| self.inner.error("release continuations", e))?;
            released = Released::from_rows(&rows)?;
            enqueued += released.enqueued;
        }
        Ok(enqueued)
    }

    /// Runs `statement` (a one-row count) on a pooled connection.
    async fn count_query(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<usize> {
        let client = self.client().await?;
        let db = self.db(&client);
        let statement = db.prepare(operation, sql).await?;
        let row = client
            .query_one(&statement, params)
            .await
            .map_err(|e| self.inner.error(operation, e))?;
        let value: i64 = row::column(&row, "count", &|| operation.to_owned())?;
        Ok(count(value))
    }

    async fn execute(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        let client = self.client().await?;
        let statement = self.db(&client).prepare(operation, sql).await?;
        Ok(client
            .execute(&statement, params)
            .await
            .map_err(|e| self.inner.error(operation, e))?)
    }

    async fn query(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let client = self.client().await?;
        let statement = self.db(&client).prepare(operation, sql).await?;
        Ok(client
            .query(&statement, params)
            .await
            .map_err(|e| self.inner.error(operation, e))?)
    }
}

impl Inner {
    fn error(&self, operation: &'static str, error: tokio_postgres::Error) -> PostgresError {
        PostgresError::query(operation, &self.schema, error)
    }
}

/// One completion as the parallel arrays of `COMPLETE` want it. The entry's data is serialized
/// straight into the statement's parameters (no `serde_json::Value` built per job).
struct CompletionRow<'a> {
    id: i64,
    server_id: &'a str,
    at: DateTime<Utc>,
    state: JobState,
    reason: Option<&'a str>,
    data: Cow<'a, StateData>,
    run_at: Option<DateTime<Utc>>,
    failed: bool,
}

impl<'a> CompletionRow<'a> {
    fn new(completion: &'a Completion) -> CompletionRow<'a> {
        let outcome = &completion.outcome;
        let data = outcome.data();
        CompletionRow {
            id: completion.id.0,
            server_id: &completion.server_id,
            at: ts(completion.at),
            state: completion.state(),
            reason: outcome.reason(),
            run_at: completion.run_at().map(ts),
            data,
            failed: outcome.failed_attempt(),
        }
    }
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn enqueue(&self, jobs: Vec<NewJob>, now: DateTime<Utc>) -> Result<Vec<JobId>> {
        self.bounded("enqueue", async move {
            let continuations = jobs
                .iter()
                .any(|job| matches!(job.initial, InitialState::Awaiting { .. }));
            let enqueued = jobs
                .iter()
                .any(|job| matches!(job.initial, InitialState::Enqueued));
            let mut client = self.client().await?;
            let ids = if continuations {
                // The parents are locked until the children are committed (see `LOCK_PARENTS`).
                let tx = client
                    .transaction()
                    .await
                    .map_err(|e| self.inner.error("enqueue", e))?;
                let db = Db {
                    client: tx.client(),
                    cache: Some(&tx.statement_cache),
                    storage: &self.inner,
                };
                let ids = self
                    .insert(&db, jobs, now, Some(&self.inner.channel))
                    .await?;
                tx.commit()
                    .await
                    .map_err(|e| self.inner.error("enqueue", e))?;
                ids
            } else {
                let db = self.db(&client);
                // At most one NOTIFY per throttle window: a NOTIFY in every insert serialises
                // the commits of concurrent enqueuers. A skipped one is sent by the throttle at
                // the end of the window, so other processes still wake within it.
                let channel = (!enqueued || self.inner.throttle.notify_now(self))
                    .then_some(self.inner.channel.as_str());
                self.insert(&db, jobs, now, channel).await?
            };
            if enqueued || continuations {
                self.wake();
            }
            Ok(ids)
        })
        .await
    }

    async fn fetch(&self, request: FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        self.bounded("fetch", async move {
            let mut queues: Vec<&str> = Vec::with_capacity(request.queues.len());
            for queue in request.queues {
                if !queues.contains(&queue.as_str()) {
                    queues.push(queue);
                }
            }
            if request.limit == 0 || queues.is_empty() {
                return Ok(Vec::new());
            }
            let rows = self
                .query(
                    "fetch",
                    &self.inner.sql.fetch,
                    &[
                        &queues,
                        &big(request.limit),
                        &request.server_id,
                        &ts(request.now),
                        &ts(request.lease_until),
                    ],
                )
                .await?;
            Ok(rows
                .iter()
                .map(row::fetched_job)
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn complete(&self, completions: &[Completion]) -> Result<()> {
        self.bounded("complete", async move {
            let mut seen = HashSet::new();
            let rows = completions
                .iter()
                .filter(|completion| seen.insert(completion.id))
                .map(CompletionRow::new)
                .collect::<Vec<_>>();
            if rows.is_empty() {
                return Ok(());
            }
            let (finished, finished_at): (Vec<i64>, Vec<DateTime<Utc>>) = rows
                .iter()
                .filter(|row| {
                    matches!(
                        row.state,
                        JobState::Succeeded | JobState::Failed | JobState::Deleted
                    )
                })
                .map(|row| (row.id, row.at))
                .unzip();
            let requeued = rows.iter().any(|row| row.state == JobState::Enqueued);
            let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
            let servers: Vec<&str> = rows.iter().map(|row| row.server_id).collect();
            let ats: Vec<DateTime<Utc>> = rows.iter().map(|row| row.at).collect();
            let states: Vec<&str> = rows.iter().map(|row| row.state.as_str()).collect();
            let reasons: Vec<Option<&str>> = rows.iter().map(|row| row.reason).collect();
            let data: Vec<Json<&StateData>> = rows.iter().map(|row| Json(&*row.data)).collect();
            let run_ats: Vec<Option<DateTime<Utc>>> = rows.iter().map(|row| row.run_at).collect();
            let failed: Vec<bool> = rows.iter().map(|row| row.failed).collect();
            let params: [&(dyn ToSql + Sync); 9] = [
                &ids,
                &servers,
                &ats,
                &states,
                &reasons,
                &data,
                &run_ats,
                &failed,
                &self.inner.channel,
            ];
            let client = self.client().await?;
            if finished.is_empty() {
                // Nothing can release a continuation: one autocommit statement.
                let statement = self
                    .db(&client)
                    .prepare("complete", &self.inner.sql.complete)
                    .await?;
                client
                    .query(&statement, &params)
                    .await
                    .map_err(|e| self.inner.error("complete", e))?;
            } else {
                // One round trip: BEGIN, the batch, the release, COMMIT are pipelined. The release
                // is a second statement so its snapshot sees continuations committed while the
                // first one waited for its row locks. Every message is queued on the first poll,
                // so the transaction ends (COMMIT, or ROLLBACK after an error) even if this future
                // is dropped; an error anywhere aborts the whole transaction.
                let (complete, release) = {
                    let db = self.db(&client);
                    (
                        db.prepare("complete", &self.inner.sql.complete).await?,
                        db.prepare("release continuations", &self.inner.sql.release)
                            .await?,
                    )
                };
                let release_params: [&(dyn ToSql + Sync); 4] = [
                    &finished,
                    &finished_at,
                    &self.inner.channel,
                    &CONTINUATION_NOT_MET,
                ];
                let (begun, completed, released, committed) = tokio::join!(
                    biased; // first polled in this order, so sent in this order
                    client.batch_execute("BEGIN"),
                    client.query(&complete, &params),
                    client.query(&release, &release_params),
                    client.batch_execute("COMMIT"),
                );
                let released = match (begun, completed, released, committed) {
                    (Ok(()), Ok(_), Ok(rows), Ok(())) => Released::from_rows(&rows)?,
                    (Err(error), ..)
                    | (_, Err(error), ..)
                    | (_, _, Err(error), _)
                    | (.., Err(error)) => return Err(self.inner.error("complete", error).into()),
                };
                // Deletions are rare (a child waiting for another outcome): their children are
                // checked again after the commit, so the common batch stays one round trip.
                let enqueued =
                    released.enqueued + self.release_deleted(&self.db(&client), released).await?;
                if enqueued > 0 {
                    self.wake();
                }
            }
            if requeued {
                self.wake();
            }
            Ok(())
        })
        .await
    }

    async fn keep_alive(
        &self,
        server_id: &str,
        ids: &[JobId],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<JobId>> {
        self.bounded("keep alive", async move {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let raw: Vec<i64> = ids.iter().map(|id| id.0).collect();
            let rows = self
                .query(
                    "keep alive",
                    &self.inner.sql.keep_alive,
                    &[&server_id, &raw, &ts(lease_until)],
                )
                .await?;
            let mut held = HashSet::new();
            for row in &rows {
                held.insert(row::column::<i64>(row, "id", &|| {
                    "a leased job".to_owned()
                })?);
            }
            Ok(ids
                .iter()
                .copied()
                .filter(|id| !held.contains(&id.0))
                .collect())
        })
        .await
    }

    async fn delete(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        self.bounded("delete", async move {
            let now = ts(now);
            let mut client = self.client().await?;
            let (delete, release) = {
                let db = self.db(&client);
                (
                    db.prepare("delete", &self.inner.sql.delete).await?,
                    db.prepare("release continuations", &self.inner.sql.release)
                        .await?,
                )
            };
            let tx = client
                .transaction()
                .await
                .map_err(|e| self.inner.error("delete", e))?;
            let parents = [id.0];
            let parents = &parents[..];
            let times = [now];
            let times = &times[..];
            let delete_params: [&(dyn ToSql + Sync); 3] = [&id.0, &reason, &now];
            let release_params: [&(dyn ToSql + Sync); 4] =
                [&parents, &times, &self.inner.channel, &CONTINUATION_NOT_MET];
            let (target, released) = tokio::try_join!(
                biased;
                tx.query_opt(&delete, &delete_params),
                tx.query(&release, &release_params),
            )
            .map_err(|e| self.inner.error("delete", e))?;
            let Some(target) = target else {
                return Err(Error::JobNotFound(id));
            };
            let previous: String = row::column(&target, "state", &|| format!("job {id}"))?;
            let db = Db {
                client: tx.client(),
                cache: Some(&tx.statement_cache),
                storage: &self.inner,
            };
            if self
                .release_deleted(&db, Released::from_rows(&released)?)
                .await?
                > 0
            {
                self.wake();
            }
            tx.commit()
                .await
                .map_err(|e| self.inner.error("delete", e))?;
            Ok(previous != JobState::Deleted.as_str())
        })
        .await
    }

    async fn requeue(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        self.bounded("requeue", async move {
            let now = ts(now);
            let mut client = self.client().await?;
            let (requeue, rearm) = {
                let db = self.db(&client);
                (
                    db.prepare("requeue", &self.inner.sql.requeue).await?,
                    db.prepare("requeue", &self.inner.sql.rearm).await?,
                )
            };
            let tx = client
                .transaction()
                .await
                .map_err(|e| self.inner.error("requeue", e))?;
            let target = tx
                .query_opt(&requeue, &[&id.0, &reason, &now, &self.inner.channel])
                .await
                .map_err(|e| self.inner.error("requeue", e))?;
            let Some(target) = target else {
                return Err(Error::JobNotFound(id));
            };
            let previous: String = row::column(&target, "state", &|| format!("job {id}"))?;
            if previous == JobState::Enqueued.as_str() {
                return Ok(false);
            }
            tx.query(&rearm, &[&id.0, &now, &CONTINUATION_NOT_MET])
                .await
                .map_err(|e| self.inner.error("requeue", e))?;
            tx.commit()
                .await
                .map_err(|e| self.inner.error("requeue", e))?;
            self.wake();
            Ok(true)
        })
        .await
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        self.bounded("job", async move { Ok(self.jobs(&[id]).await?.pop()) })
            .await
    }

    async fn jobs(&self, ids: &[JobId]) -> Result<Vec<JobRecord>> {
        self.bounded("jobs", async move {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let raw: Vec<i64> = ids.iter().map(|id| id.0).collect();
            let rows = self.query("jobs", &self.inner.sql.jobs, &[&raw]).await?;
            Ok(rows
                .iter()
                .map(|row| row::job_record(row, true))
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn wait_for_work(&self, max_wait: Duration) {
        self.ensure_listener();
        let _ = tokio::time::timeout(max_wait, self.inner.work.notified()).await;
    }

    async fn promote_scheduled(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        self.bounded("promote scheduled", async move {
            if limit == 0 {
                return Ok(0);
            }
            let promoted = self
                .count_query(
                    "promote scheduled",
                    &self.inner.sql.promote_scheduled,
                    &[&ts(now), &big(limit), &self.inner.channel],
                )
                .await?;
            if promoted > 0 {
                self.wake();
            }
            Ok(promoted)
        })
        .await
    }

    async fn rescue_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        self.bounded("rescue expired", async move {
            if limit == 0 {
                return Ok(0);
            }
            let rescued = self
                .count_query(
                    "rescue expired",
                    &self.inner.sql.rescue_expired,
                    &[&ts(now), &big(limit), &self.inner.channel],
                )
                .await?;
            if rescued > 0 {
                self.wake();
            }
            Ok(rescued)
        })
        .await
    }

    async fn prune(&self, request: PruneRequest) -> Result<usize> {
        self.bounded("prune", async move {
            if request.limit == 0 {
                return Ok(0);
            }
            let pruned = self
                .count_query(
                    "prune",
                    &self.inner.sql.prune,
                    &[
                        &ts(request.finished_before),
                        &request.failed_before.map(ts),
                        &big(request.limit),
                    ],
                )
                .await?;
            self.vacuum_if_due().await;
            Ok(pruned)
        })
        .await
    }

    async fn try_lead(
        &self,
        server_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        self.bounded("try lead", async move {
            let rows = self
                .query(
                    "try lead",
                    &self.inner.sql.try_lead,
                    &[&server_id, &ts(now), &ts(until)],
                )
                .await?;
            Ok(!rows.is_empty())
        })
        .await
    }

    async fn resign(&self, server_id: &str) -> Result<()> {
        self.bounded("resign", async move {
            self.execute("resign", &self.inner.sql.resign, &[&server_id])
                .await?;
            Ok(())
        })
        .await
    }

    async fn register_server(&self, server: &ServerInfo, now: DateTime<Utc>) -> Result<()> {
        self.bounded("register server", async move {
            self.execute(
                "register server",
                &self.inner.sql.register_server,
                &[
                    &server.id,
                    &server.queues,
                    &big(server.workers),
                    &ts(server.started_at),
                    &ts(now),
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn heartbeat(&self, server_id: &str, now: DateTime<Utc>) -> Result<()> {
        self.bounded("heartbeat", async move {
            self.execute(
                "heartbeat",
                &self.inner.sql.heartbeat,
                &[&server_id, &ts(now)],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn unregister_server(&self, server_id: &str) -> Result<()> {
        self.bounded("unregister server", async move {
            self.execute(
                "unregister server",
                &self.inner.sql.unregister_server,
                &[&server_id],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn remove_dead_servers(&self, before: DateTime<Utc>) -> Result<usize> {
        self.bounded("remove dead servers", async move {
            let removed = self
                .execute(
                    "remove dead servers",
                    &self.inner.sql.remove_dead_servers,
                    &[&ts(before)],
                )
                .await?;
            Ok(usize::try_from(removed).unwrap_or(usize::MAX))
        })
        .await
    }

    async fn servers(&self) -> Result<Vec<ServerRecord>> {
        self.bounded("servers", async move {
            let rows = self.query("servers", &self.inner.sql.servers, &[]).await?;
            Ok(rows
                .iter()
                .map(row::server)
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn upsert_recurring(&self, job: RecurringJob) -> Result<()> {
        self.bounded("upsert recurring", async move {
            self.execute(
                "upsert recurring",
                &self.inner.sql.upsert_recurring,
                &[
                    &job.id,
                    &job.cron,
                    &job.time_zone,
                    &job.job_name,
                    &job.queue,
                    &job.args,
                    &row::misfire_to_sql(job.misfire),
                    &job.skip_if_running,
                    &job.paused,
                    &job.next_run.map(ts),
                    &job.last_run.map(ts),
                    &job.last_job_id.map(|id| id.0),
                    &job.last_error,
                    &ts(job.created_at),
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn recurring(&self, id: &str) -> Result<Option<RecurringJob>> {
        self.bounded("recurring", async move {
            let rows = self
                .query("recurring", &self.inner.sql.recurring, &[&id])
                .await?;
            Ok(rows.first().map(row::recurring_job).transpose()?)
        })
        .await
    }

    async fn list_recurring(&self) -> Result<Vec<RecurringJob>> {
        self.bounded("list recurring", async move {
            let rows = self
                .query("list recurring", &self.inner.sql.list_recurring, &[])
                .await?;
            Ok(rows
                .iter()
                .map(row::recurring_job)
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn remove_recurring(&self, id: &str) -> Result<bool> {
        self.bounded("remove recurring", async move {
            let removed = self
                .execute("remove recurring", &self.inner.sql.remove_recurring, &[&id])
                .await?;
            Ok(removed > 0)
        })
        .await
    }

    async fn set_recurring_paused(&self, id: &str, paused: bool) -> Result<bool> {
        self.bounded("set recurring paused", async move {
            let changed = self
                .execute(
                    "pause recurring",
                    &self.inner.sql.set_recurring_paused,
                    &[&id, &paused],
                )
                .await?;
            Ok(changed > 0)
        })
        .await
    }

    async fn due_recurring(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<RecurringJob>> {
        self.bounded("due recurring", async move {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let rows = self
                .query(
                    "due recurring",
                    &self.inner.sql.due_recurring,
                    &[&ts(now), &big(limit)],
                )
                .await?;
            Ok(rows
                .iter()
                .map(row::recurring_job)
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn claim_recurring(&self, claim: RecurringClaim) -> Result<Option<Option<JobId>>> {
        self.bounded("claim recurring", async move {
            let now = ts(claim.now);
            let mut client = self.client().await?;
            let (claim_statement, record_statement) = {
                let db = self.db(&client);
                (
                    db.prepare("claim recurring", &self.inner.sql.claim_recurring)
                        .await?,
                    db.prepare("claim recurring", &self.inner.sql.record_recurring_run)
                        .await?,
                )
            };
            let tx = client
                .transaction()
                .await
                .map_err(|e| self.inner.error("claim recurring", e))?;
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
                .map_err(|e| self.inner.error("claim recurring", e))?;
            if claimed.is_none() {
                return Ok(None);
            }
            let created = match claim.job {
                Some(job) => {
                    let db = Db {
                        client: tx.client(),
                        cache: Some(&tx.statement_cache),
                        storage: &self.inner,
                    };
                    let ids = self
                        .insert(&db, vec![job], now, Some(&self.inner.channel))
                        .await?;
                    let id = ids
                        .first()
                        .copied()
                        .ok_or_else(|| Error::storage("the storage created no job"))?;
                    tx.execute(&record_statement, &[&claim.id, &now, &id.0])
                        .await
                        .map_err(|e| self.inner.error("claim recurring", e))?;
                    Some(id)
                }
                None => None,
            };
            tx.commit()
                .await
                .map_err(|e| self.inner.error("claim recurring", e))?;
            if created.is_some() {
                self.wake();
            }
            Ok(Some(created))
        })
        .await
    }

    async fn counts(&self) -> Result<StateCounts> {
        self.bounded("counts", async move {
            let rows = self.query("counts", &self.inner.sql.counts, &[]).await?;
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
        })
        .await
    }

    async fn list_jobs(&self, query: JobQuery) -> Result<JobPage> {
        self.bounded("list jobs", async move {
            let filters = ListFilters {
                state: query.state.is_some(),
                queue: query.queue.is_some(),
                name: query.name_contains.is_some(),
                args: query.args_contains.is_some(),
                retries_only: query.retries_only,
                by_run_time: query.by_run_time(),
            };
            let sql = self.inner.sql.list_jobs(filters);
            let limit = big(if query.limit == 0 { 20 } else { query.limit });
            let offset = big(query.offset);
            let state = query.state.map(JobState::as_str);
            let name = query.name_contains.as_deref().map(contains_pattern);
            let args = query.args_contains.as_deref().map(contains_pattern);
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
            let rows = self.query("list jobs", &sql, &params).await?;
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
        })
        .await
    }

    async fn statistics(
        &self,
        granularity: Granularity,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StatPoint>> {
        self.bounded("statistics", async move {
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
            let rows = self
                .query(
                    "statistics",
                    &self.inner.sql.statistics,
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
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_wildcards() {
        assert_eq!(contains_pattern("ada@"), "%ada@%");
        assert_eq!(contains_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn times_are_clamped_to_what_postgres_stores() {
        let min = ts(DateTime::<Utc>::MIN_UTC);
        assert!(min > DateTime::<Utc>::MIN_UTC);
        let now = Utc::now();
        assert_eq!(ts(now), now);
        assert_eq!(ts(DateTime::<Utc>::MAX_UTC), DateTime::<Utc>::MAX_UTC);
    }
}
