//! [`Server`]: a pool of workers that fetches jobs from the storage and runs them.
//!
//! Inside, one task per role: the `producer` fetches up to the free worker slots and hands the
//! jobs to the `worker` tasks, each of which runs one job at a time (the `executor`); the
//! `completer` persists outcomes in batches, the `heartbeat` keeps the server and its jobs'
//! leases alive, and the `maintenance` loop (on the elected server only) promotes due jobs,
//! rescues lapsed leases, fires recurring jobs and prunes.

mod claims;
mod completer;
mod config;
mod executor;
mod flow;
mod health;
mod heartbeat;
mod maintenance;
mod producer;
mod worker;

pub use config::ServerBuilder;

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rustc_hash::FxHashMap;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::container::Container;
use crate::error::{Error, Result};
use crate::job::JobId;
use crate::registry::Registry;
use crate::retry::RetryPolicies;
use crate::storage::{ServerInfo, Storage};
use config::ServerConfig;

/// Runs jobs. Build one with [`Server::builder`], then [`Server::run_until`] a shutdown signal,
/// or [`Server::start`] it and [`ServerHandle::shutdown`] it later.
///
/// ```no_run
/// # #[tokio::main] async fn main() -> jobs::Result<()> {
/// use jobs::prelude::*;
///
/// let storage = MemoryStorage::new();
/// Server::builder(storage)
///     .queues(["critical", "default"])
///     .workers(10)
///     .build()?
///     .run_until(async { tokio::signal::ctrl_c().await.ok(); })
///     .await
/// # }
/// ```
pub struct Server {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("id", &self.shared.server_id)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// What every part of a running server shares.
pub(crate) struct Shared {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) registry: Registry,
    pub(crate) container: Arc<dyn Container>,
    pub(crate) config: ServerConfig,
    pub(crate) server_id: Arc<str>,
    /// The retry policy of each job.
    pub(crate) retry: RetryPolicies,
    /// Running jobs and their cancellation tokens.
    pub(crate) running: Mutex<FxHashMap<JobId, CancellationToken>>,
    /// Fires first on shutdown: no more fetching.
    pub(crate) stop_fetching: CancellationToken,
    /// Fires after the grace period, with every running job's token.
    pub(crate) cancel_jobs: CancellationToken,
    /// Fires last: heartbeat and maintenance stop.
    pub(crate) stop_background: CancellationToken,
    /// Whether the storage answers; fetching waits while it does not.
    pub(crate) health: health::Health,
    /// Whether fetches apply flow control.
    pub(crate) flow: flow::FlowSwitch,
}

impl Shared {
    pub(crate) fn running(&self) -> MutexGuard<'_, FxHashMap<JobId, CancellationToken>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs `round` (named `operation` in logs) every `interval`, never two at once, until the
/// server's background tasks stop. A failed round is retried with backoff (from `interval`,
/// doubling, up to [`health::MAX_BACKOFF`] or `interval` if longer) and reported to the
/// server's [`health::Health`], which logs the outage once. A round that asked nothing of the
/// storage returns `None` and tells the health nothing.
pub(crate) async fn every<F, R>(
    shared: Arc<Shared>,
    operation: &'static str,
    interval: std::time::Duration,
    round: F,
) where
    F: Fn(Arc<Shared>) -> R,
    R: Future<Output = Option<Result<()>>>,
{
    let mut backoff = health::Backoff::new(interval, health::MAX_BACKOFF);
    let mut wait = std::time::Duration::ZERO;
    loop {
        tokio::select! {
            () = shared.stop_background.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        // A round stops with the server: every storage call in it is atomic on its own.
        let result = tokio::select! {
            () = shared.stop_background.cancelled() => return,
            result = round(shared.clone()) => result,
        };
        wait = match result {
            None => interval,
            Some(Ok(())) => {
                shared.health.succeeded();
                backoff.reset();
                interval
            }
            Some(Err(error)) => {
                shared.health.failed(operation, &error);
                backoff.next_delay()
            }
        };
    }
}

fn server_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let suffix: u32 = rand::random();
    format!("{host}:{}:{suffix:08x}", std::process::id())
}

impl Server {
    /// Starts building a server on `storage`.
    pub fn builder(storage: impl Storage) -> ServerBuilder {
        ServerBuilder::new(Arc::new(storage))
    }

    /// Starts building a server on a shared storage.
    pub fn builder_from_arc(storage: Arc<dyn Storage>) -> ServerBuilder {
        ServerBuilder::new(storage)
    }

    pub(crate) fn new(builder: ServerBuilder, registry: Registry) -> Self {
        let cancel_jobs = CancellationToken::new();
        Server {
            shared: Arc::new(Shared {
                storage: builder.storage,
                clock: builder.clock,
                container: builder.container,
                config: builder.config,
                server_id: server_id().into(),
                retry: RetryPolicies::new(builder.retry, builder.job_retry, &registry),
                registry,
                running: Mutex::new(FxHashMap::default()),
                stop_fetching: CancellationToken::new(),
                cancel_jobs,
                stop_background: CancellationToken::new(),
                health: health::Health::default(),
                flow: flow::FlowSwitch::default(),
            }),
        }
    }

    /// This server's id, as registered in the storage.
    pub fn id(&self) -> &str {
        &self.shared.server_id
    }

    /// Registers the server and starts its workers in the background.
    pub async fn start(self) -> Result<ServerHandle> {
        let shared = self.shared;
        let info = ServerInfo {
            id: shared.server_id.to_string(),
            queues: shared.config.queues.clone(),
            workers: shared.config.workers,
            started_at: shared.clock.now(),
        };
        shared
            .storage
            .register_server(&info, shared.clock.now())
            .await?;
        flow::start(&shared).await?;
        tracing::info!(
            server = %shared.server_id,
            queues = ?shared.config.queues,
            workers = shared.config.workers,
            "server started"
        );
        let tracker = TaskTracker::new();
        let outbox = Arc::new(completer::Outbox::default());
        let completer = tokio::spawn(completer::run(shared.clone(), outbox.clone()));
        let (jobs, claimed) = async_channel::unbounded();
        worker::start(&shared, &tracker, claimed, outbox);
        let producer = tokio::spawn(producer::run(
            shared.clone(),
            claims::Claims::new(shared.config.claims()),
            jobs,
        ));
        let heartbeat = tokio::spawn(heartbeat::run(shared.clone()));
        let leases = tokio::spawn(heartbeat::renew_leases(shared.clone()));
        let maintenance = tokio::spawn(maintenance::run(shared.clone()));
        let flow = tokio::spawn(flow::run(shared.clone()));
        Ok(ServerHandle {
            shared,
            tracker,
            producer,
            completer,
            background: vec![heartbeat, leases, maintenance, flow],
        })
    }

    /// Runs until `signal` completes, then shuts down gracefully (see [`ServerHandle::shutdown`]).
    pub async fn run_until<F: Future>(self, signal: F) -> Result<()> {
        let handle = self.start().await?;
        signal.await;
        handle.shutdown().await
    }
}

/// The most time [`ServerHandle::shutdown`] takes beyond the grace period and the shutdown
/// timeout, when the jobs used all of them: to record their outcomes and unregister.
const FINAL_STEPS: std::time::Duration = std::time::Duration::from_secs(2);

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    tracker: TaskTracker,
    producer: JoinHandle<()>,
    completer: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("server_id", &self.server_id)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// This server's id.
    pub fn id(&self) -> &str {
        &self.shared.server_id
    }

    /// Stops gracefully: no more fetching; running jobs get the grace period to finish; then
    /// their cancellation tokens fire, and a job that ends with an error after that goes back
    /// to the head of its queue (not Failed). Jobs still running after the shutdown timeout
    /// are abandoned: their leases lapse and another server runs them.
    ///
    /// Returns within the grace period plus the shutdown timeout, even when the storage does
    /// not answer (a fetch, a batch of outcomes or the unregistration hung on a lost
    /// connection is abandoned at that deadline: what it would have stored is redone when the
    /// jobs' leases lapse). When the jobs took all of it, recording their last outcomes and
    /// unregistering get at most 2 s more.
    pub async fn shutdown(self) -> Result<()> {
        let shared = &self.shared;
        let config = &shared.config;
        let started = tokio::time::Instant::now();
        let deadline = started + config.shutdown_grace + config.shutdown_timeout;
        shared.stop_fetching.cancel();
        let mut producer = self.producer;
        if tokio::time::timeout_at(deadline, &mut producer)
            .await
            .is_err()
        {
            tracing::warn!("a fetch did not return before the shutdown deadline; abandoning it");
            producer.abort();
        }
        self.tracker.close();
        let mut result = Ok(());
        if tokio::time::timeout_at(started + config.shutdown_grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::info!(
                running = shared.running().len(),
                "grace period over, cancelling running jobs"
            );
            shared.cancel_jobs.cancel();
            for token in shared.running().values() {
                token.cancel();
            }
            if tokio::time::timeout_at(deadline, self.tracker.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    running = shared.running().len(),
                    "jobs did not stop in time; their leases will lapse and another server will run them"
                );
                result = Err(Error::ShutdownTimeout(
                    config.shutdown_grace + config.shutdown_timeout,
                ));
            }
        }
        // Every job task has ended (or was abandoned): the completer drains what is left,
        // and the server unregisters, within what is left of the deadline.
        let last = deadline.max(tokio::time::Instant::now() + FINAL_STEPS);
        shared.stop_background.cancel();
        let mut completer = self.completer;
        if tokio::time::timeout_at(last, &mut completer).await.is_err() {
            tracing::error!(
                "could not record the last job outcomes before the shutdown deadline; their leases will lapse and they will run again"
            );
            completer.abort();
        }
        for task in self.background {
            let _ = task.await;
        }
        let storage = &shared.storage;
        let unregister = async {
            if let Err(error) = storage.resign(&shared.server_id).await {
                tracing::warn!(%error, "could not resign leadership");
            }
            if let Err(error) = storage.unregister_server(&shared.server_id).await {
                tracing::warn!(%error, "could not unregister the server");
            }
        };
        if tokio::time::timeout_at(last, unregister).await.is_err() {
            tracing::warn!(
                "could not unregister before the shutdown deadline; the server record expires by itself"
            );
        }
        tracing::info!(server = %shared.server_id, "server stopped");
        result
    }
}
