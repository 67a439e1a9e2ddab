//! [`ServerBuilder`]: the server's settings, validated when built.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::container::{Container, Services};
use crate::error::{Error, Result};
use crate::queue::validate_queue;
use crate::registry::Registry;
use crate::retry::{HangfireBackoff, RetryPolicy};
use crate::storage::Storage;

use super::Server;

/// Timings and sizes of a server. Every field has a default; see [`ServerBuilder`].
#[derive(Debug, Clone)]
pub(crate) struct ServerConfig {
    pub(crate) queues: Vec<String>,
    pub(crate) workers: usize,
    /// `usize::MAX` until set: then half the workers.
    pub(crate) fetch_buffer: usize,
    pub(crate) poll_interval: Duration,
    pub(crate) lease: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) maintenance_interval: Duration,
    pub(crate) leader_ttl: Duration,
    pub(crate) server_timeout: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) retention: Duration,
    pub(crate) failed_retention: Option<Duration>,
    pub(crate) completion_batch: usize,
}

impl ServerConfig {
    /// Jobs fetched and not finished at most: the workers plus the fetch buffer.
    pub(crate) fn claims(&self) -> usize {
        self.workers + self.fetch_buffer
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        ServerConfig {
            queues: vec!["default".to_owned()],
            workers: (5 * cores).min(20),
            fetch_buffer: usize::MAX,
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(5 * 60),
            heartbeat_interval: Duration::from_secs(2),
            maintenance_interval: Duration::from_secs(1),
            leader_ttl: Duration::from_secs(15),
            server_timeout: Duration::from_secs(5 * 60),
            shutdown_grace: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(15),
            retention: Duration::from_secs(24 * 60 * 60),
            failed_retention: None,
            completion_batch: 1000,
        }
    }
}

/// Builds a [`Server`]: `Server::builder(storage).queues([..]).workers(n).container(c).build()?`.
#[must_use]
pub struct ServerBuilder {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) config: ServerConfig,
    pub(crate) container: Arc<dyn Container>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) retry: Arc<dyn RetryPolicy>,
    pub(crate) job_retry: HashMap<String, Arc<dyn RetryPolicy>>,
    pub(crate) registry: Option<Registry>,
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ServerBuilder {
    pub(crate) fn new(storage: Arc<dyn Storage>) -> Self {
        ServerBuilder {
            storage,
            config: ServerConfig::default(),
            container: Arc::new(Services::new()),
            clock: Arc::new(SystemClock),
            retry: Arc::new(HangfireBackoff::default()),
            job_retry: HashMap::new(),
            registry: None,
        }
    }

    /// Queues to serve, in priority order: a job of a later queue runs only when every earlier
    /// queue is empty. Default `["default"]`.
    pub fn queues<I, Q>(mut self, queues: I) -> Self
    where
        I: IntoIterator<Item = Q>,
        Q: Into<String>,
    {
        self.config.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// Jobs run at once. Default `min(5 × cores, 20)`.
    pub fn workers(mut self, workers: usize) -> Self {
        self.config.workers = workers;
        self
    }

    /// Jobs claimed ahead of free workers, so a fetch round trip brings work for the workers
    /// that free up meanwhile. Buffered jobs are leased to this server; on shutdown they go
    /// back to their place in the queue unstarted. A job of a higher-priority queue enqueued
    /// meanwhile waits behind at most this many. Default: half the workers.
    pub fn fetch_buffer(mut self, jobs: usize) -> Self {
        self.config.fetch_buffer = jobs;
        self
    }

    /// The container instance jobs and `#[inject]` parameters are resolved from.
    pub fn container(mut self, container: impl Container) -> Self {
        self.container = Arc::new(container);
        self
    }

    /// The clock every stored time is read from (a `ManualClock` in tests).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The retry policy of every job without its own (default [`HangfireBackoff`]).
    pub fn retry_policy(mut self, policy: impl RetryPolicy) -> Self {
        self.retry = Arc::new(policy);
        self
    }

    /// The retry policy of the job named `name`.
    pub fn job_retry_policy(mut self, name: impl Into<String>, policy: impl RetryPolicy) -> Self {
        self.job_retry.insert(name.into(), Arc::new(policy));
        self
    }

    /// How long an idle server waits for a wake-up before polling the storage. Default 1 s.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = interval;
        self
    }

    /// How long a fetched job stays leased without a keep-alive before another server may
    /// take it (its server died). Default 5 min.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease;
        self
    }

    /// How often the server records its heartbeat, renews its jobs' leases and looks for
    /// running jobs deleted meanwhile. Default 2 s.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.config.heartbeat_interval = interval;
        self
    }

    /// How often the elected server promotes due jobs, rescues lapsed leases and prunes.
    /// Default 1 s.
    pub fn maintenance_interval(mut self, interval: Duration) -> Self {
        self.config.maintenance_interval = interval;
        self
    }

    /// How long running jobs may finish on shutdown before their cancellation tokens fire.
    /// Default 5 s.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }

    /// How long the elected maintenance leader keeps its leadership without renewing it (it
    /// renews every maintenance round). When it dies, another server takes over after this.
    /// Default 15 s.
    pub fn leader_ttl(mut self, ttl: Duration) -> Self {
        self.config.leader_ttl = ttl;
        self
    }

    /// How long cancelled jobs may take to return on shutdown before they are abandoned
    /// (their leases lapse and another server runs them). Default 15 s.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// How long Succeeded and Deleted jobs are kept. Default 1 day.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.config.retention = retention;
        self
    }

    /// How long Failed jobs are kept. Default: until deleted.
    pub fn failed_retention(mut self, retention: Duration) -> Self {
        self.config.failed_retention = Some(retention);
        self
    }

    /// A server with no heartbeat for this long is removed from the registry. Default 5 min.
    pub fn server_timeout(mut self, timeout: Duration) -> Self {
        self.config.server_timeout = timeout;
        self
    }

    /// Runs only the given registry instead of every `#[job]` of the process.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Validates the settings, collects the registry (duplicate names are an error naming both
    /// source locations) and checks that the container resolves every service that jobs of the
    /// served queues need.
    pub fn build(mut self) -> Result<Server> {
        if self.config.fetch_buffer == usize::MAX {
            self.config.fetch_buffer = self.config.workers / 2;
        }
        let config = &self.config;
        if config.queues.is_empty() {
            return Err(Error::InvalidConfig(
                "a server needs at least one queue".into(),
            ));
        }
        for queue in &config.queues {
            validate_queue(queue)?;
        }
        if config.workers == 0 {
            return Err(Error::InvalidConfig(
                "a server needs at least one worker".into(),
            ));
        }
        for (name, value) in [
            ("poll_interval", config.poll_interval),
            ("lease", config.lease),
            ("heartbeat_interval", config.heartbeat_interval),
            ("maintenance_interval", config.maintenance_interval),
        ] {
            if value.is_zero() {
                return Err(Error::InvalidConfig(format!(
                    "{name} must be greater than zero"
                )));
            }
        }
        if config.leader_ttl <= config.maintenance_interval {
            return Err(Error::InvalidConfig(format!(
                "leader_ttl ({:?}) must be longer than maintenance_interval ({:?})",
                config.leader_ttl, config.maintenance_interval
            )));
        }
        if config.heartbeat_interval >= config.lease {
            return Err(Error::InvalidConfig(format!(
                "heartbeat_interval ({:?}) must be shorter than the lease ({:?})",
                config.heartbeat_interval, config.lease
            )));
        }
        let registry = match self.registry.clone() {
            Some(registry) => registry,
            None => Registry::collect()?,
        };
        let unresolved = registry.unresolved(self.container.as_ref(), &config.queues);
        if !unresolved.is_empty() {
            return Err(Error::UnresolvedServices(unresolved));
        }
        Ok(Server::new(self, registry))
    }
}
