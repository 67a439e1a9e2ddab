//! [`PostgresStorage`]: the constructors, migrations, the helpers every operation runs its
//! statements through, and the [`Storage`] implementation: each method a one-line delegation to
//! the operation's module in `sql/`, within the query timeout.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use jobs::storage::{
    Completion, FetchRequest, FetchedJob, Granularity, InitialState, JobPage, JobQuery, NewJob,
    PruneRequest, RecurringClaim, RecurringJob, ServerInfo, ServerRecord, StatPoint, StateCounts,
    Storage,
};
use jobs::{
    Enqueued, Error, Job, JobId, JobLimits, JobRecord, QueueInfo, QueueLimits, QueueSettings,
    Result,
};
use tokio_postgres::{NoTls, Transaction};

use crate::connection::{bound_connections, Suspect, KEEPALIVES_INTERVAL, KEEPALIVES_RETRIES};
use crate::database::{Database, Db};
use crate::error::PostgresError;
use crate::migrate;
use crate::notify;
use crate::options::{PostgresOptions, SESSION_OPTIONS};
use crate::sql;

/// A [`Storage`] in PostgreSQL: jobs survive restarts and are shared by every process that
/// connects to the same schema.
///
/// Cheap to clone (one shared pool). See the [crate docs](crate) for the schema, the fetch
/// statement and the guarantees.
#[derive(Clone)]
pub struct PostgresStorage {
    pub(crate) inner: Arc<Database>,
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
        drop(storage.inner.client().await?);
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
            inner: Arc::new(Database::new(
                pool,
                options.channel_name().to_owned(),
                options.schema,
                options.max_payload_bytes,
                options.listen_config,
                options.notify_throttle,
                options.query_timeout,
                suspect,
            )),
        })
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
            .map(|job| NewJob::from_job(job, InitialState::Enqueued))
            .collect::<Result<Vec<_>>>()?;
        let enqueued = self.enqueue_new_tx(tx, jobs, Utc::now()).await?;
        Ok(enqueued.into_iter().map(|enqueued| enqueued.id).collect())
    }

    /// Creates jobs in any initial state (scheduled, continuations, unique) inside the
    /// caller's transaction, as [`Storage::enqueue`] does outside one. A unique key stays
    /// locked until the transaction ends.
    pub async fn enqueue_new_tx(
        &self,
        tx: &Transaction<'_>,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
    ) -> Result<Vec<jobs::Enqueued>> {
        let db = Db {
            client: tx.client(),
            cache: None,
            storage: &self.inner,
        };
        // Inside the caller's transaction the NOTIFY goes out at their commit, never before.
        self.inner
            .insert(&db, jobs, now, Some(&self.inner.channel))
            .await
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
    pub fn __statements(&self) -> [(&'static str, String); 5] {
        let text = |template| self.inner.statement(template).to_string();
        [
            ("enqueue", text(&sql::enqueue::ENQUEUE)),
            ("fetch", text(&sql::fetch::FETCH)),
            ("complete", text(&sql::complete::COMPLETE)),
            ("release", text(&sql::release::RELEASE)),
            ("counts", text(&sql::dashboard::COUNTS)),
        ]
    }

    /// The fetch statement of this schema (for `EXPLAIN` in tests).
    #[cfg(feature = "test-util")]
    pub(crate) fn fetch_sql(&self) -> String {
        self.inner.statement(&sql::fetch::FETCH).to_string()
    }

    /// Creates the schema if needed and applies every migration not applied yet, in one
    /// transaction under an advisory lock: safe to call from many processes at once, and a
    /// no-op when the schema is up to date. Returns the versions it applied.
    pub async fn migrate(&self) -> Result<Vec<u32>, PostgresError> {
        let mut client = self.inner.client().await?;
        migrate::up(&mut client, &self.inner.schema).await
    }

    /// Reverts the applied migrations newer than `version`, newest first (`0` removes every
    /// table, keeping the schema and its `jobs_migrations` table). For tests and rollbacks;
    /// the data of the reverted tables is lost. Returns the versions it reverted.
    pub async fn migrate_down_to(&self, version: u32) -> Result<Vec<u32>, PostgresError> {
        let mut client = self.inner.client().await?;
        migrate::down_to(&mut client, &self.inner.schema, version).await
    }

    /// The migration versions applied to the schema, oldest first (empty before `migrate`).
    pub async fn applied_migrations(&self) -> Result<Vec<u32>, PostgresError> {
        let client = self.inner.client().await?;
        migrate::applied(&client, &self.inner.schema).await
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
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn enqueue(&self, jobs: Vec<NewJob>, now: DateTime<Utc>) -> Result<Vec<Enqueued>> {
        self.bounded("enqueue", sql::enqueue::enqueue(&self.inner, jobs, now))
            .await
    }

    async fn queue_settings(&self) -> Result<Vec<QueueSettings>> {
        self.bounded("queue settings", sql::flow::queue_settings(&self.inner))
            .await
    }

    async fn gated_queues(&self) -> Result<Vec<String>> {
        self.bounded("gated queues", sql::flow::gated_queues(&self.inner))
            .await
    }

    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<()> {
        self.bounded(
            "set queue paused",
            sql::flow::set_queue_paused(&self.inner, queue, paused),
        )
        .await
    }

    async fn set_queue_limits(&self, queue: &str, limits: QueueLimits) -> Result<()> {
        self.bounded(
            "set queue limits",
            sql::flow::set_queue_limits(&self.inner, queue, limits),
        )
        .await
    }

    async fn register_job_limits(&self, limits: &[JobLimits]) -> Result<()> {
        self.bounded(
            "register job limits",
            sql::flow::register_job_limits(&self.inner, limits),
        )
        .await
    }

    async fn queues(&self) -> Result<Vec<QueueInfo>> {
        self.bounded("queues", sql::flow::queues(&self.inner)).await
    }

    async fn fetch(&self, request: FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        self.bounded("fetch", sql::fetch::fetch(&self.inner, request))
            .await
    }

    async fn complete(&self, completions: &[Completion]) -> Result<()> {
        self.bounded(
            "complete",
            sql::complete::complete(&self.inner, completions),
        )
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
            sql::lease::keep_alive(&self.inner, server_id, ids, lease_until),
        )
        .await
    }

    async fn delete(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        self.bounded("delete", sql::manual::delete(&self.inner, id, reason, now))
            .await
    }

    async fn requeue(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        self.bounded(
            "requeue",
            sql::manual::requeue(&self.inner, id, reason, now),
        )
        .await
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        self.bounded("job", sql::read::job(&self.inner, id)).await
    }

    async fn jobs(&self, ids: &[JobId]) -> Result<Vec<JobRecord>> {
        self.bounded("jobs", sql::read::jobs(&self.inner, ids))
            .await
    }

    async fn wait_for_work(&self, max_wait: Duration) {
        self.ensure_listener();
        let _ = tokio::time::timeout(max_wait, self.inner.work.notified()).await;
    }

    async fn promote_scheduled(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        self.bounded(
            "promote scheduled",
            sql::maintenance::promote_scheduled(&self.inner, now, limit),
        )
        .await
    }

    async fn rescue_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        self.bounded(
            "rescue expired",
            sql::maintenance::rescue_expired(&self.inner, now, limit),
        )
        .await
    }

    async fn prune(&self, request: PruneRequest) -> Result<usize> {
        self.bounded("prune", sql::maintenance::prune(&self.inner, request))
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
            sql::maintenance::try_lead(&self.inner, server_id, now, until),
        )
        .await
    }

    async fn resign(&self, server_id: &str) -> Result<()> {
        self.bounded("resign", sql::maintenance::resign(&self.inner, server_id))
            .await
    }

    async fn register_server(&self, server: &ServerInfo, now: DateTime<Utc>) -> Result<()> {
        self.bounded(
            "register server",
            sql::servers::register_server(&self.inner, server, now),
        )
        .await
    }

    async fn heartbeat(&self, server_id: &str, now: DateTime<Utc>) -> Result<()> {
        self.bounded(
            "heartbeat",
            sql::servers::heartbeat(&self.inner, server_id, now),
        )
        .await
    }

    async fn unregister_server(&self, server_id: &str) -> Result<()> {
        self.bounded(
            "unregister server",
            sql::servers::unregister_server(&self.inner, server_id),
        )
        .await
    }

    async fn remove_dead_servers(&self, before: DateTime<Utc>) -> Result<usize> {
        self.bounded(
            "remove dead servers",
            sql::servers::remove_dead_servers(&self.inner, before),
        )
        .await
    }

    async fn servers(&self) -> Result<Vec<ServerRecord>> {
        self.bounded("servers", sql::servers::servers(&self.inner))
            .await
    }

    async fn upsert_recurring(&self, job: RecurringJob) -> Result<()> {
        self.bounded(
            "upsert recurring",
            sql::recurring::upsert_recurring(&self.inner, job),
        )
        .await
    }

    async fn recurring(&self, id: &str) -> Result<Option<RecurringJob>> {
        self.bounded("recurring", sql::recurring::recurring(&self.inner, id))
            .await
    }

    async fn list_recurring(&self) -> Result<Vec<RecurringJob>> {
        self.bounded(
            "list recurring",
            sql::recurring::list_recurring(&self.inner),
        )
        .await
    }

    async fn remove_recurring(&self, id: &str) -> Result<bool> {
        self.bounded(
            "remove recurring",
            sql::recurring::remove_recurring(&self.inner, id),
        )
        .await
    }

    async fn set_recurring_paused(&self, id: &str, paused: bool) -> Result<bool> {
        self.bounded(
            "set recurring paused",
            sql::recurring::set_recurring_paused(&self.inner, id, paused),
        )
        .await
    }

    async fn due_recurring(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<RecurringJob>> {
        self.bounded(
            "due recurring",
            sql::recurring::due_recurring(&self.inner, now, limit),
        )
        .await
    }

    async fn claim_recurring(&self, claim: RecurringClaim) -> Result<Option<Option<JobId>>> {
        self.bounded(
            "claim recurring",
            sql::recurring::claim_recurring(&self.inner, claim),
        )
        .await
    }

    async fn counts(&self) -> Result<StateCounts> {
        self.bounded("counts", sql::dashboard::counts(&self.inner))
            .await
    }

    async fn list_jobs(&self, query: JobQuery) -> Result<JobPage> {
        self.bounded("list jobs", sql::dashboard::list_jobs(&self.inner, query))
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
            sql::dashboard::statistics(&self.inner, granularity, from, to),
        )
        .await
    }
}
