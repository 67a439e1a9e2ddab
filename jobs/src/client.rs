//! [`Client`]: creates jobs and changes their state through a [`Storage`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::{self, Clock, SystemClock};
use crate::error::{Error, Result};
use crate::job::{Job, JobId};
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

    /// Enqueues a job: it runs as soon as a worker of its queue is free.
    pub async fn enqueue<J: Job>(&self, job: &J) -> Result<JobId> {
        self.create(job, InitialState::Enqueued).await
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
        self.storage.enqueue(jobs, self.now()).await
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
        let mut ids = self
            .storage
            .enqueue(vec![NewJob::from_job(job, initial)?], self.now())
            .await?;
        ids.pop()
            .ok_or_else(|| Error::storage("the storage created no job"))
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
