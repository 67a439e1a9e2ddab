//! The server's outcomes under a storage that stores them slowly or fails to: they wait, their
//! jobs' claims are held back once too many wait (so fetching stops instead of piling up
//! outcomes), and every one is stored once the storage recovers; no job is lost or run twice.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jobs::prelude::*;
use jobs::storage::*;
use jobs::{Error, JobLimits, JobRecord, QueueInfo, QueueSettings, Result, ServerHandle};
use support::eventually;
use tokio::sync::watch;

static SLOW_RUNS: AtomicUsize = AtomicUsize::new(0);
static FLAKY_RUNS: AtomicUsize = AtomicUsize::new(0);

#[job]
async fn slow_tick(n: u32) {
    let _ = n;
    SLOW_RUNS.fetch_add(1, Ordering::SeqCst);
}

#[job]
async fn flaky_tick(n: u32) {
    let _ = n;
    FLAKY_RUNS.fetch_add(1, Ordering::SeqCst);
}

/// A MemoryStorage whose `complete` fails a given number of times, then waits for its gate to
/// open; it counts the jobs fetched.
struct Gated {
    inner: MemoryStorage,
    open: watch::Sender<bool>,
    failures: AtomicUsize,
    fetched: AtomicUsize,
}

impl Gated {
    fn new(open: bool, failures: usize) -> Arc<Gated> {
        Arc::new(Gated {
            inner: MemoryStorage::new(),
            open: watch::Sender::new(open),
            failures: AtomicUsize::new(failures),
            fetched: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl Storage for Gated {
    async fn enqueue(&self, jobs: Vec<NewJob>, now: DateTime<Utc>) -> Result<Vec<Enqueued>> {
        self.inner.enqueue(jobs, now).await
    }
    async fn queue_settings(&self) -> Result<Vec<QueueSettings>> {
        self.inner.queue_settings().await
    }
    async fn gated_queues(&self) -> Result<Vec<String>> {
        self.inner.gated_queues().await
    }
    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<()> {
        self.inner.set_queue_paused(queue, paused).await
    }
    async fn set_queue_limits(&self, queue: &str, limits: QueueLimits) -> Result<()> {
        self.inner.set_queue_limits(queue, limits).await
    }
    async fn register_job_limits(&self, limits: &[JobLimits]) -> Result<()> {
        self.inner.register_job_limits(limits).await
    }
    async fn queues(&self) -> Result<Vec<QueueInfo>> {
        self.inner.queues().await
    }
    async fn fetch(&self, request: FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        let fetched = self.inner.fetch(request).await?;
        self.fetched.fetch_add(fetched.len(), Ordering::SeqCst);
        Ok(fetched)
    }
    async fn complete(&self, completions: &[Completion]) -> Result<()> {
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if failing {
            return Err(Error::Storage("simulated outage".into()));
        }
        let _ = self.open.subscribe().wait_for(|open| *open).await;
        self.inner.complete(completions).await
    }
    async fn keep_alive(
        &self,
        server_id: &str,
        ids: &[JobId],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<JobId>> {
        self.inner.keep_alive(server_id, ids, lease_until).await
    }
    async fn delete(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        self.inner.delete(id, reason, now).await
    }
    async fn requeue(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        self.inner.requeue(id, reason, now).await
    }
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        self.inner.job(id).await
    }
    async fn wait_for_work(&self, max_wait: Duration) {
        self.inner.wait_for_work(max_wait).await;
    }
    async fn promote_scheduled(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        self.inner.promote_scheduled(now, limit).await
    }
    async fn rescue_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        self.inner.rescue_expired(now, limit).await
    }
    async fn prune(&self, request: PruneRequest) -> Result<usize> {
        self.inner.prune(request).await
    }
    async fn try_lead(
        &self,
        server_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        self.inner.try_lead(server_id, now, until).await
    }
    async fn resign(&self, server_id: &str) -> Result<()> {
        self.inner.resign(server_id).await
    }
    async fn register_server(&self, server: &ServerInfo, now: DateTime<Utc>) -> Result<()> {
        self.inner.register_server(server, now).await
    }
    async fn heartbeat(&self, server_id: &str, now: DateTime<Utc>) -> Result<()> {
        self.inner.heartbeat(server_id, now).await
    }
    async fn unregister_server(&self, server_id: &str) -> Result<()> {
        self.inner.unregister_server(server_id).await
    }
    async fn remove_dead_servers(&self, before: DateTime<Utc>) -> Result<usize> {
        self.inner.remove_dead_servers(before).await
    }
    async fn servers(&self) -> Result<Vec<ServerRecord>> {
        self.inner.servers().await
    }
    async fn upsert_recurring(&self, job: RecurringJob) -> Result<()> {
        self.inner.upsert_recurring(job).await
    }
    async fn recurring(&self, id: &str) -> Result<Option<RecurringJob>> {
        self.inner.recurring(id).await
    }
    async fn list_recurring(&self) -> Result<Vec<RecurringJob>> {
        self.inner.list_recurring().await
    }
    async fn remove_recurring(&self, id: &str) -> Result<bool> {
        self.inner.remove_recurring(id).await
    }
    async fn set_recurring_paused(&self, id: &str, paused: bool) -> Result<bool> {
        self.inner.set_recurring_paused(id, paused).await
    }
    async fn due_recurring(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<RecurringJob>> {
        self.inner.due_recurring(now, limit).await
    }
    async fn claim_recurring(&self, claim: RecurringClaim) -> Result<Option<Option<JobId>>> {
        self.inner.claim_recurring(claim).await
    }
    async fn counts(&self) -> Result<StateCounts> {
        self.inner.counts().await
    }
    async fn list_jobs(&self, query: JobQuery) -> Result<JobPage> {
        self.inner.list_jobs(query).await
    }
    async fn statistics(
        &self,
        granularity: Granularity,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StatPoint>> {
        self.inner.statistics(granularity, from, to).await
    }
}

/// A server of 4 workers (and the default fetch buffer, 2) on `storage`.
async fn serve(storage: &Arc<Gated>) -> ServerHandle {
    Server::builder_from_arc(storage.clone())
        .workers(4)
        .build()
        .expect("build")
        .start()
        .await
        .expect("start")
}

async fn succeeded(storage: &Gated) -> u64 {
    let counts = storage.counts().await.expect("counts");
    counts.get(JobState::Succeeded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_storage_holds_claims_back_and_loses_no_outcome() {
    const JOBS: usize = 1_200;
    // Outcomes whose claims are given back while they wait: max(claims, completion batch).
    const ROOM: usize = 1_000;
    const CLAIMS: usize = 6;
    let storage = Gated::new(false, 0);
    let server = serve(&storage).await;
    let client = Client::from_arc(storage.clone());
    let jobs: Vec<SlowTick> = (0..JOBS as u32).map(SlowTick::new).collect();
    client.enqueue_many(&jobs).await.expect("enqueue");

    // The first batch waits at the gate; outcomes keep arriving until ROOM of them wait.
    eventually("the server fetched the room's worth of jobs", async || {
        storage.fetched.load(Ordering::SeqCst) >= ROOM
    })
    .await;
    // From then on the finished jobs keep their claims: fetching stops within the claims.
    let watch_until = tokio::time::Instant::now() + Duration::from_millis(500);
    while tokio::time::Instant::now() < watch_until {
        let fetched = storage.fetched.load(Ordering::SeqCst);
        assert!(
            fetched <= ROOM + CLAIMS,
            "fetched {fetched} jobs while at most {ROOM} outcomes may wait with their claims given back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        succeeded(&storage).await,
        0,
        "nothing is stored while the gate is shut"
    );

    storage.open.send_replace(true);
    eventually("every job succeeded", async || {
        succeeded(&storage).await == JOBS as u64
    })
    .await;
    assert_eq!(SLOW_RUNS.load(Ordering::SeqCst), JOBS, "each job ran once");
    assert_eq!(storage.fetched.load(Ordering::SeqCst), JOBS);
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_are_stored_after_storage_errors() {
    const JOBS: usize = 20;
    let storage = Gated::new(true, 3);
    let server = serve(&storage).await;
    let client = Client::from_arc(storage.clone());
    let jobs: Vec<FlakyTick> = (0..JOBS as u32).map(FlakyTick::new).collect();
    let ids = client.enqueue_many(&jobs).await.expect("enqueue");
    eventually(
        "every job succeeded despite three failed stores",
        async || succeeded(&storage).await == JOBS as u64,
    )
    .await;
    assert_eq!(
        storage.failures.load(Ordering::SeqCst),
        0,
        "the failures happened"
    );
    assert_eq!(FLAKY_RUNS.load(Ordering::SeqCst), JOBS, "each job ran once");
    for id in ids {
        let record = client.job(id).await.expect("job");
        let successes = record
            .history
            .iter()
            .filter(|entry| entry.state == JobState::Succeeded)
            .count();
        assert_eq!(
            successes, 1,
            "job {id} has one success: {:?}",
            record.history
        );
    }
    server.shutdown().await.expect("shutdown");
}
