//! The [`Storage`] trait every backend implements, and [`MemoryStorage`], the reference.
//!
//! The trait is batch-shaped (fetch N jobs, complete N outcomes, enqueue N jobs in one call) and
//! takes the current time from its caller, so tests pin it. It may still change before 1.0:
//! implement it only if you follow the crate's releases. The contract is stated as tests in
//! `jobs::testing::conformance` (feature `test-util`); every storage must pass them.

mod memory;
mod types;

pub use memory::MemoryStorage;
pub use types::*;

pub use crate::flow::scan_bound;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::flow::{Enqueued, JobLimits, QueueInfo, QueueLimits, QueueSettings};
use crate::job::JobId;

/// Where jobs, recurring jobs, servers and statistics are kept.
///
/// State changes requested by a worker (`complete`) apply only while the job is still Processing
/// and leased by that worker's server, so a job deleted or rescued meanwhile keeps its new state.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    // ---- jobs -------------------------------------------------------------------------------

    /// Creates jobs in their initial state, answering for each, in order, its id. A
    /// continuation whose parent does not exist fails the whole call with
    /// [`Error::ParentNotFound`](crate::Error); one whose parent already finished moves on at
    /// once. A job with a unique key that an existing job blocks (see
    /// [`Uniqueness::blocks`](crate::Uniqueness::blocks), an earlier job of the same call
    /// included) is not created: its answer is that job's id, marked duplicate. Concurrent
    /// calls with one key create one job.
    async fn enqueue(&self, jobs: Vec<NewJob>, now: DateTime<Utc>) -> Result<Vec<Enqueued>>;

    /// Claims up to `limit` Enqueued jobs of `queues` (in that order, by job priority then
    /// FIFO within a queue), marks them Processing with a lease held by `server_id` until
    /// `lease_until`. With `flow`, applies flow control as [`Admission`](crate::Admission)
    /// decides: paused queues are skipped, queue and job kind limits and mutexes are kept
    /// (counting Processing jobs on every server), and a job that cannot start is passed
    /// over for the next eligible one, its history saying why (once per reason). Without
    /// `flow`, gated jobs ([`NewJob::gated`]) are left for a flow-controlled fetch.
    async fn fetch(&self, request: FetchRequest<'_>) -> Result<Vec<FetchedJob>>;

    /// Applies the outcomes of finished attempts. Each applies only if the job is still
    /// Processing under `server_id`'s lease; others are ignored.
    async fn complete(&self, completions: &[Completion]) -> Result<()>;

    /// Extends the leases of `ids` held by `server_id` and returns the ids it no longer holds
    /// (deleted, requeued or rescued meanwhile): their executions should be cancelled.
    async fn keep_alive(
        &self,
        server_id: &str,
        ids: &[JobId],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<JobId>>;

    /// Moves a job to Deleted. Returns false if it was already Deleted.
    async fn delete(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool>;

    /// Moves a job to Enqueued (at the tail of its queue), whatever its state. Returns false if
    /// it was already Enqueued. A Failed parent requeued re-arms its continuations.
    async fn requeue(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool>;

    /// The job with its full state history.
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>>;

    /// The jobs among `ids` that exist, each with its full state history, in the order of
    /// `ids` (missing ones left out). The default reads them one by one; a storage with round
    /// trips reads them at once (the dashboard's lists show a page of them).
    async fn jobs(&self, ids: &[JobId]) -> Result<Vec<JobRecord>> {
        let mut records = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(record) = self.job(*id).await? {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// Blocks until a job may be available (an enqueue happened) or `max_wait` passed.
    /// The default just sleeps; storages with notifications wake earlier.
    async fn wait_for_work(&self, max_wait: Duration) {
        tokio::time::sleep(max_wait).await;
    }

    // ---- flow control -----------------------------------------------------------------------

    /// Every queue's stored settings (queues with none are left out).
    async fn queue_settings(&self) -> Result<Vec<QueueSettings>>;

    /// The queues that hold Enqueued gated jobs ([`NewJob::gated`]): a server serving one
    /// fetches from it with flow control (a gated job enqueued to another queue than its
    /// kind's is found this way).
    async fn gated_queues(&self) -> Result<Vec<String>>;

    /// Pauses or resumes a queue: a paused queue's jobs are not started by a flow-controlled
    /// fetch. Its limits are kept.
    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<()>;

    /// Replaces a queue's limits (empty [`QueueLimits`]: none). The
    /// caller validated them. Its paused state is kept.
    async fn set_queue_limits(&self, queue: &str, limits: QueueLimits) -> Result<()>;

    /// Stores the limits of job kinds (a server's registered jobs, when it starts): those with
    /// a limit replace the stored ones, those without remove them.
    async fn register_job_limits(&self, limits: &[JobLimits]) -> Result<()>;

    /// Every queue that has jobs (in a non-final state, or Failed) or stored settings, by
    /// name, with its counts per state and its settings.
    async fn queues(&self) -> Result<Vec<QueueInfo>>;

    // ---- maintenance ------------------------------------------------------------------------

    /// Moves up to `limit` Scheduled jobs whose time has come to Enqueued. Returns how many.
    async fn promote_scheduled(&self, now: DateTime<Utc>, limit: usize) -> Result<usize>;

    /// Moves up to `limit` Processing jobs whose lease lapsed back to Enqueued (their original
    /// place in the queue). Returns how many.
    async fn rescue_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<usize>;

    /// Deletes up to `limit` expired jobs (see [`PruneRequest`]). Returns how many.
    async fn prune(&self, request: PruneRequest) -> Result<usize>;

    /// Takes or keeps the maintenance leadership for `server_id` until `until`. Returns whether
    /// `server_id` is the leader.
    async fn try_lead(
        &self,
        server_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool>;

    /// Gives up the leadership if `server_id` holds it.
    async fn resign(&self, server_id: &str) -> Result<()>;

    // ---- servers ----------------------------------------------------------------------------

    /// Registers a server (or refreshes its record) with a heartbeat at `now`.
    async fn register_server(&self, server: &ServerInfo, now: DateTime<Utc>) -> Result<()>;

    /// Records a server's heartbeat.
    async fn heartbeat(&self, server_id: &str, now: DateTime<Utc>) -> Result<()>;

    /// Removes a server's record (on shutdown).
    async fn unregister_server(&self, server_id: &str) -> Result<()>;

    /// Removes servers whose last heartbeat is before `before`. Returns how many.
    async fn remove_dead_servers(&self, before: DateTime<Utc>) -> Result<usize>;

    /// Every registered server.
    async fn servers(&self) -> Result<Vec<ServerRecord>>;

    // ---- recurring jobs ---------------------------------------------------------------------

    /// Creates or replaces a recurring job by id. The storage keeps `created_at` of an existing
    /// definition; everything else is taken from `job`.
    async fn upsert_recurring(&self, job: RecurringJob) -> Result<()>;

    /// One recurring job, with its last job's current state.
    async fn recurring(&self, id: &str) -> Result<Option<RecurringJob>>;

    /// Every recurring job, sorted by id.
    async fn list_recurring(&self) -> Result<Vec<RecurringJob>>;

    /// Removes a recurring job. Returns false if none had this id.
    async fn remove_recurring(&self, id: &str) -> Result<bool>;

    /// Pauses or resumes a recurring job. Returns false if none had this id.
    async fn set_recurring_paused(&self, id: &str, paused: bool) -> Result<bool>;

    /// Recurring jobs that are not paused and whose next run is at or before `now`.
    async fn due_recurring(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<RecurringJob>>;

    /// Atomically claims one occurrence: only if the recurring job's `next_run` still equals
    /// `claim.expected_next`, sets it to `claim.next_run`, records the run and creates
    /// `claim.job` (if any). Returns `None` when another server claimed it first (or it is
    /// gone), else the created job's id (`Some(None)` for a skipped firing).
    async fn claim_recurring(&self, claim: RecurringClaim) -> Result<Option<Option<JobId>>>;

    // ---- dashboard reads --------------------------------------------------------------------

    /// Number of jobs per state, and Enqueued per queue.
    async fn counts(&self) -> Result<StateCounts>;

    /// One page of jobs matching `query`, newest state change first; Scheduled jobs soonest
    /// run first (see [`JobQuery::by_run_time`]).
    async fn list_jobs(&self, query: JobQuery) -> Result<JobPage>;

    /// Succeeded and failed counts per hour or day, oldest first, for `[from, to)`.
    async fn statistics(
        &self,
        granularity: Granularity,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StatPoint>>;
}

/// A shared storage is a storage.
#[async_trait]
impl<S: Storage + ?Sized> Storage for Arc<S> {
    async fn enqueue(&self, jobs: Vec<NewJob>, now: DateTime<Utc>) -> Result<Vec<Enqueued>> {
        (**self).enqueue(jobs, now).await
    }
    async fn queue_settings(&self) -> Result<Vec<QueueSettings>> {
        (**self).queue_settings().await
    }
    async fn gated_queues(&self) -> Result<Vec<String>> {
        (**self).gated_queues().await
    }
    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<()> {
        (**self).set_queue_paused(queue, paused).await
    }
    async fn set_queue_limits(&self, queue: &str, limits: QueueLimits) -> Result<()> {
        (**self).set_queue_limits(queue, limits).await
    }
    async fn register_job_limits(&self, limits: &[JobLimits]) -> Result<()> {
        (**self).register_job_limits(limits).await
    }
    async fn queues(&self) -> Result<Vec<QueueInfo>> {
        (**self).queues().await
    }
    async fn fetch(&self, request: FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        (**self).fetch(request).await
    }
    async fn complete(&self, completions: &[Completion]) -> Result<()> {
        (**self).complete(completions).await
    }
    async fn keep_alive(
        &self,
        server_id: &str,
        ids: &[JobId],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<JobId>> {
        (**self).keep_alive(server_id, ids, lease_until).await
    }
    async fn delete(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        (**self).delete(id, reason, now).await
    }
    async fn requeue(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        (**self).requeue(id, reason, now).await
    }
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        (**self).job(id).await
    }
    async fn jobs(&self, ids: &[JobId]) -> Result<Vec<JobRecord>> {
        (**self).jobs(ids).await
    }
    async fn wait_for_work(&self, max_wait: Duration) {
        (**self).wait_for_work(max_wait).await;
    }
    async fn promote_scheduled(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        (**self).promote_scheduled(now, limit).await
    }
    async fn rescue_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        (**self).rescue_expired(now, limit).await
    }
    async fn prune(&self, request: PruneRequest) -> Result<usize> {
        (**self).prune(request).await
    }
    async fn try_lead(
        &self,
        server_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        (**self).try_lead(server_id, now, until).await
    }
    async fn resign(&self, server_id: &str) -> Result<()> {
        (**self).resign(server_id).await
    }
    async fn register_server(&self, server: &ServerInfo, now: DateTime<Utc>) -> Result<()> {
        (**self).register_server(server, now).await
    }
    async fn heartbeat(&self, server_id: &str, now: DateTime<Utc>) -> Result<()> {
        (**self).heartbeat(server_id, now).await
    }
    async fn unregister_server(&self, server_id: &str) -> Result<()> {
        (**self).unregister_server(server_id).await
    }
    async fn remove_dead_servers(&self, before: DateTime<Utc>) -> Result<usize> {
        (**self).remove_dead_servers(before).await
    }
    async fn servers(&self) -> Result<Vec<ServerRecord>> {
        (**self).servers().await
    }
    async fn upsert_recurring(&self, job: RecurringJob) -> Result<()> {
        (**self).upsert_recurring(job).await
    }
    async fn recurring(&self, id: &str) -> Result<Option<RecurringJob>> {
        (**self).recurring(id).await
    }
    async fn list_recurring(&self) -> Result<Vec<RecurringJob>> {
        (**self).list_recurring().await
    }
    async fn remove_recurring(&self, id: &str) -> Result<bool> {
        (**self).remove_recurring(id).await
    }
    async fn set_recurring_paused(&self, id: &str, paused: bool) -> Result<bool> {
        (**self).set_recurring_paused(id, paused).await
    }
    async fn due_recurring(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<RecurringJob>> {
        (**self).due_recurring(now, limit).await
    }
    async fn claim_recurring(&self, claim: RecurringClaim) -> Result<Option<Option<JobId>>> {
        (**self).claim_recurring(claim).await
    }
    async fn counts(&self) -> Result<StateCounts> {
        (**self).counts().await
    }
    async fn list_jobs(&self, query: JobQuery) -> Result<JobPage> {
        (**self).list_jobs(query).await
    }
    async fn statistics(
        &self,
        granularity: Granularity,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StatPoint>> {
        (**self).statistics(granularity, from, to).await
    }
}
