//! [`PostgresStorage`]: the constructors, migrations, the helpers every operation runs its
//! statements through, and the [`Storage`] implementation: each method a one-line delegation to
//! the operation's module in `sql/`, within the query timeout.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use jobs::storage::{
    Completion, FetchRequest, FetchedJob, Granularity, JobPage, JobQuery, NewJob, PruneRequest,
    RecurringClaim, RecurringJob, ServerInfo, ServerRecord, StatPoint, StateCounts, Storage,
};
use jobs::{JobId, JobRecord, Result};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

use crate::connection::{bound_connections, Db, Suspect, KEEPALIVES_INTERVAL, KEEPALIVES_RETRIES};
use crate::error::PostgresError;
use crate::migrate;
use crate::notify;
use crate::options::{PostgresOptions, SESSION_OPTIONS};
use crate::row;
use crate::sql::{self, count, Sql};

/// A [`Storage`] in PostgreSQL: jobs survive restarts and are shared by every process that
/// connects to the same schema.
///
/// Cheap to clone (one shared pool). See the [crate docs](crate) for the schema, the fetch
/// statement and the guarantees.
#[derive(Clone)]
pub struct PostgresStorage {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) schema: String,
    pub(crate) channel: String,
    pub(crate) sql: Sql,
    pub(crate) max_payload_bytes: Option<usize>,
    pub(crate) listen_config: Option<tokio_postgres::Config>,
    pub(crate) work: Arc<Notify>,
    pub(crate) listener: Mutex<Option<JoinHandle<()>>>,
    pub(crate) throttle: notify::Throttle,
    pub(crate) last_vacuum: Mutex<Option<std::time::Instant>>,
    pub(crate) vacuum_failed: std::sync::atomic::AtomicBool,
    /// The bound on each storage operation (`PostgresOptions::query_timeout`).
    pub(crate) query_timeout: Duration,
    /// Pooled connections older than the last timed-out operation (see `bounded`).
    pub(crate) suspect: Arc<Suspect>,
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

    pub(crate) async fn client(&self) -> Result<Object, PostgresError> {
        self.inner
            .pool
            .get()
            .await
            .map_err(PostgresError::connection)
    }

    pub(crate) fn db<'a>(&'a self, client: &'a Object) -> Db<'a> {
        Db {
            client,
            cache: Some(&client.statement_cache),
            storage: &self.inner,
        }
    }

    pub(crate) fn wake(&self) {
        notify::wake(&self.inner.work);
    }

    /// Runs one storage operation within the query timeout. A timed-out operation is dropped
    /// where it stands: a transaction it began is rolled back by the server when the
    /// connection goes, and the connections of the pool are replaced (see `Suspect`).
    pub(crate) async fn bounded<T>(
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

    /// Sends a NOTIFY on the channel now (the throttle's deferred one).
    pub(crate) async fn send_notify(&self) -> Result<()> {
        let client = self.client().await?;
        client
            .execute("SELECT pg_notify($1, '')", &[&self.inner.channel])
            .await
            .map_err(|e| self.inner.error("notify", e))?;
        Ok(())
    }

    /// Starts the `LISTEN` task if it is not running (first wait, or its runtime ended).
    pub(crate) fn ensure_listener(&self) {
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

    /// Runs `statement` (a one-row count) on a pooled connection.
    pub(crate) async fn count_query(
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

    pub(crate) async fn execute(
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

    pub(crate) async fn query(
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
    pub(crate) fn error(
        &self,
        operation: &'static str,
        error: tokio_postgres::Error,
    ) -> PostgresError {
        PostgresError::query(operation, &self.schema, error)
    }
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn enqueue(&self, jobs: Vec<NewJob>, now: DateTime<Utc>) -> Result<Vec<JobId>> {
        self.bounded("enqueue", sql::enqueue::enqueue(self, jobs, now))
            .await
    }

    async fn fetch(&self, request: FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        self.bounded("fetch", sql::fetch::fetch(self, request))
            .await
    }

    async fn complete(&self, completions: &[Completion]) -> Result<()> {
        self.bounded("complete", sql::complete::complete(self, completions))
            .await
    }

    async fn keep_alive(
        &self,
        server_id: &str,
        ids: &[JobId],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<JobId>> {
        self.bounded(
            "keep alive",
            sql::lease::keep_alive(self, server_id, ids, lease_until),
        )
        .await
    }

    async fn delete(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        self.bounded("delete", sql::manual::delete(self, id, reason, now))
            .await
    }

    async fn requeue(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        self.bounded("requeue", sql::manual::requeue(self, id, reason, now))
            .await
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        self.bounded("job", sql::read::job(self, id)).await
    }

    async fn jobs(&self, ids: &[JobId]) -> Result<Vec<JobRecord>> {
        self.bounded("jobs", sql::read::jobs(self, ids)).await
    }

    async fn wait_for_work(&self, max_wait: Duration) {
        self.ensure_listener();
        let _ = tokio::time::timeout(max_wait, self.inner.work.notified()).await;
    }

    async fn promote_scheduled(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        self.bounded(
            "promote scheduled",
            sql::maintenance::promote_scheduled(self, now, limit),
        )
        .await
    }

    async fn rescue_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        self.bounded(
            "rescue expired",
            sql::maintenance::rescue_expired(self, now, limit),
        )
        .await
    }

    async fn prune(&self, request: PruneRequest) -> Result<usize> {
        self.bounded("prune", sql::maintenance::prune(self, request))
            .await
    }

    async fn try_lead(
        &self,
        server_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        self.bounded(
            "try lead",
            sql::maintenance::try_lead(self, server_id, now, until),
        )
        .await
    }

    async fn resign(&self, server_id: &str) -> Result<()> {
        self.bounded("resign", sql::maintenance::resign(self, server_id))
            .await
    }

    async fn register_server(&self, server: &ServerInfo, now: DateTime<Utc>) -> Result<()> {
        self.bounded(
            "register server",
            sql::servers::register_server(self, server, now),
        )
        .await
    }

    async fn heartbeat(&self, server_id: &str, now: DateTime<Utc>) -> Result<()> {
        self.bounded("heartbeat", sql::servers::heartbeat(self, server_id, now))
            .await
    }

    async fn unregister_server(&self, server_id: &str) -> Result<()> {
        self.bounded(
            "unregister server",
            sql::servers::unregister_server(self, server_id),
        )
        .await
    }

    async fn remove_dead_servers(&self, before: DateTime<Utc>) -> Result<usize> {
        self.bounded(
            "remove dead servers",
            sql::servers::remove_dead_servers(self, before),
        )
        .await
    }

    async fn servers(&self) -> Result<Vec<ServerRecord>> {
        self.bounded("servers", sql::servers::servers(self)).await
    }

    async fn upsert_recurring(&self, job: RecurringJob) -> Result<()> {
        self.bounded(
            "upsert recurring",
            sql::recurring::upsert_recurring(self, job),
        )
        .await
    }

    async fn recurring(&self, id: &str) -> Result<Option<RecurringJob>> {
        self.bounded("recurring", sql::recurring::recurring(self, id))
            .await
    }

    async fn list_recurring(&self) -> Result<Vec<RecurringJob>> {
        self.bounded("list recurring", sql::recurring::list_recurring(self))
            .await
    }

    async fn remove_recurring(&self, id: &str) -> Result<bool> {
        self.bounded(
            "remove recurring",
            sql::recurring::remove_recurring(self, id),
        )
        .await
    }

    async fn set_recurring_paused(&self, id: &str, paused: bool) -> Result<bool> {
        self.bounded(
            "set recurring paused",
            sql::recurring::set_recurring_paused(self, id, paused),
        )
        .await
    }

    async fn due_recurring(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<RecurringJob>> {
        self.bounded(
            "due recurring",
            sql::recurring::due_recurring(self, now, limit),
        )
        .await
    }

    async fn claim_recurring(&self, claim: RecurringClaim) -> Result<Option<Option<JobId>>> {
        self.bounded(
            "claim recurring",
            sql::recurring::claim_recurring(self, claim),
        )
        .await
    }

    async fn counts(&self) -> Result<StateCounts> {
        self.bounded("counts", sql::dashboard::counts(self)).await
    }

    async fn list_jobs(&self, query: JobQuery) -> Result<JobPage> {
        self.bounded("list jobs", sql::dashboard::list_jobs(self, query))
            .await
    }

    async fn statistics(
        &self,
        granularity: Granularity,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StatPoint>> {
        self.bounded(
            "statistics",
            sql::dashboard::statistics(self, granularity, from, to),
        )
        .await
    }
}
