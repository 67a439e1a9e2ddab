//! [`Client`]: creates jobs and changes their state through a [`Storage`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::{self, Clock, SystemClock};
use crate::error::{Error, Result};
use crate::job::{Job, JobId};
use std::collections::BTreeMap;

use crate::flow::{EnqueueOptions, Enqueued, QueueInfo, QueueLimits, QueueSettings};
use crate::registry::Registry;
use crate::storage::{ContinueOn, InitialState, JobRecord, NewJob, Storage};

/// Creates jobs and changes their state. Cheap to clone; share one per application.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> jobs::Result<()> {
/// use jobs::prelude::*;
///
/// #[job]
/// async fn greet(name: String) {
///     println!("hello, {name}");
/// }
///
/// let client = Client::new(MemoryStorage::new());
/// let id = Greet::new("world".into()).enqueue(&client).await?;
/// assert_eq!(client.job(id).await?.state, JobState::Enqueued);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client on `storage`, using the system clock.
    pub fn new(storage: impl Storage) -> Self {
        Client {
            storage: Arc::new(storage),
            clock: Arc::new(SystemClock),
        }
    }

    /// A client on a shared storage.
    pub fn from_arc(storage: Arc<dyn Storage>) -> Self {
        Client {
            storage,
            clock: Arc::new(SystemClock),
        }
    }

    /// Uses `clock` for every timestamp (tests pin time with a [`ManualClock`](crate::clock::ManualClock)).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The storage behind this client.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The current time by this client's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Enqueues a job: it runs as soon as a worker of its queue is free. For a unique job
    /// (`#[job(unique)]`) that has a duplicate, nothing is created and the existing job's id
    /// is returned ([`enqueue_with`](Self::enqueue_with) says which happened).
    pub async fn enqueue<J: Job>(&self, job: &J) -> Result<JobId> {
        self.create(job, InitialState::Enqueued).await
    }

    /// Enqueues a job with per-enqueue options ([`EnqueueOptions`]: queue, priority, delay,
    /// unique key) over its `#[job(...)]` defaults.
    pub async fn enqueue_with<J: Job>(&self, job: &J, opts: EnqueueOptions) -> Result<Enqueued> {
        let now = self.now();
        let new = NewJob::from_job(job, InitialState::Enqueued)?.with_options(&opts, now)?;
        self.create_one(new, now).await
    }

    /// Enqueues many jobs of one type in one storage call.
    pub async fn enqueue_many<'a, J: Job>(
        &self,
        jobs: impl IntoIterator<Item = &'a J>,
    ) -> Result<Vec<JobId>> {
        let jobs = jobs
            .into_iter()
            .map(|job| NewJob::from_job(job, InitialState::Enqueued))
            .collect::<Result<Vec<_>>>()?;
        let enqueued = self.storage.enqueue(jobs, self.now()).await?;
        Ok(enqueued.into_iter().map(|enqueued| enqueued.id).collect())
    }

    /// Schedules a job to be enqueued after `delay`.
    pub async fn schedule<J: Job>(&self, job: &J, delay: Duration) -> Result<JobId> {
        let at = clock::add(self.now(), delay);
        self.create(job, InitialState::Scheduled { at }).await
    }

    /// Schedules a job to be enqueued at `at`.
    pub async fn schedule_at<J: Job>(&self, job: &J, at: DateTime<Utc>) -> Result<JobId> {
        self.create(job, InitialState::Scheduled { at }).await
    }

    /// Creates a continuation: `job` runs once `parent` succeeded. A missing parent is an
    /// error; a parent that already succeeded enqueues the job at once.
    pub async fn continue_after<J: Job>(&self, parent: JobId, job: &J) -> Result<JobId> {
        self.continue_after_with(parent, job, ContinueOn::Succeeded)
            .await
    }

    /// Creates a continuation with an explicit condition (see [`ContinueOn`]).
    pub async fn continue_after_with<J: Job>(
        &self,
        parent: JobId,
        job: &J,
        on: ContinueOn,
    ) -> Result<JobId> {
        self.create(job, InitialState::Awaiting { parent, on })
            .await
    }

    async fn create<J: Job>(&self, job: &J, initial: InitialState) -> Result<JobId> {
        let now = self.now();
        Ok(self
            .create_one(NewJob::from_job(job, initial)?, now)
            .await?
            .id)
    }

    async fn create_one(&self, job: NewJob, now: DateTime<Utc>) -> Result<Enqueued> {
        self.storage
            .enqueue(vec![job], now)
            .await?
            .pop()
            .ok_or_else(|| Error::storage("the storage created no job"))
    }

    /// Pauses a queue on every server: none of its jobs starts until it is resumed (running
    /// ones finish). Servers see it within a second (each server's next flow settings read).
    /// An unknown queue is an error ([`Error::UnknownQueue`]).
    pub async fn pause_queue(&self, queue: &str) -> Result<()> {
        self.known_queue(queue).await?;
        self.storage.set_queue_paused(queue, true).await
    }

    /// Resumes a paused queue.
    pub async fn resume_queue(&self, queue: &str) -> Result<()> {
        self.known_queue(queue).await?;
        self.storage.set_queue_paused(queue, false).await
    }

    /// Sets a queue's limits for every server: at most `concurrency` Processing at once and
    /// `rate` started per window (see [`QueueLimits`]); empty limits remove them. A zero limit
    /// or period, or an unknown queue, is an error and nothing is stored.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> jobs::Result<()> {
    /// use std::time::Duration;
    /// use jobs::prelude::*;
    ///
    /// #[job(queue = "partner")]
    /// async fn call_partner() {}
    ///
    /// let client = Client::new(MemoryStorage::new());
    /// let limits = QueueLimits::new().concurrency(10).rate(50, Duration::from_secs(1));
    /// client.set_queue_limits("partner", limits).await?;
    /// assert!(client.set_queue_limits("partner", QueueLimits::new().concurrency(0)).await.is_err());
    /// assert!(client.set_queue_limits("no-such-queue", limits).await.is_err());
    /// # Ok(()) }
    /// ```
    pub async fn set_queue_limits(&self, queue: &str, limits: QueueLimits) -> Result<()> {
        let limits = limits.validate()?;
        self.known_queue(queue).await?;
        self.storage.set_queue_limits(queue, limits).await
    }

    /// Every known queue with its counts per state and its settings: the queues that have
    /// jobs or settings in the storage, that a server serves, or that a `#[job]` of this
    /// process names.
    pub async fn queues(&self) -> Result<Vec<QueueInfo>> {
        let mut queues: BTreeMap<String, QueueInfo> = self
            .storage
            .queues()
            .await?
            .into_iter()
            .map(|info| (info.queue.clone(), info))
            .collect();
        let served = self.storage.servers().await?;
        let declared = Registry::collect()
            .map(|registry| registry.queues())
            .unwrap_or_default();
        for queue in served
            .iter()
            .flat_map(|server| server.info.queues.iter().cloned())
            .chain(declared)
        {
            queues.entry(queue.clone()).or_insert_with(|| QueueInfo {
                settings: QueueSettings {
                    queue: queue.clone(),
                    ..QueueSettings::default()
                },
                queue,
                ..QueueInfo::default()
            });
        }
        Ok(queues.into_values().collect())
    }

    async fn known_queue(&self, queue: &str) -> Result<()> {
        crate::queue::validate_queue(queue)?;
        if self.queues().await?.iter().any(|info| info.queue == queue) {
            Ok(())
        } else {
            Err(Error::UnknownQueue(queue.to_owned()))
        }
    }

    /// Deletes a job. A Processing job's cancellation token fires within seconds and the job
    /// stays Deleted whatever it returns. Returns false if it was already Deleted.
    pub async fn delete(&self, id: JobId) -> Result<bool> {
        self.storage
            .delete(id, "deleted by a user", self.now())
            .await
    }

    /// Puts a job back at the tail of its queue (a Failed or Deleted one, a Scheduled one to
    /// run now). Returns false if it was already Enqueued.
    pub async fn requeue(&self, id: JobId) -> Result<bool> {
        self.storage
            .requeue(id, "requeued by a user", self.now())
            .await
    }

    /// The job's state, data and full history.
    pub async fn job(&self, id: JobId) -> Result<JobRecord> {
        self.storage.job(id).await?.ok_or(Error::JobNotFound(id))
    }
}
