//! A server whose storage stops answering: calls that fail, or that never return (a network
//! partition). The server says so once, stops fetching what it could not lease, retries with
//! backoff rather than once per tick, resumes by itself, and shuts down within its deadline
//! even while calls hang. Time is paused: the outages last minutes of tokio time, no wall
//! clock is waited on.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jobs::prelude::*;
use jobs::storage::*;
use jobs::{Error, JobLimits, JobRecord, QueueInfo, QueueSettings, Result, ServerHandle};
use tokio::sync::watch;

static RUNS: AtomicUsize = AtomicUsize::new(0);

#[job]
async fn counted(n: u32) {
    let _ = n;
    RUNS.fetch_add(1, Ordering::SeqCst);
}

/// How the storage behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Up,
    /// Every call fails at once (connection refused).
    Failing,
    /// Every call waits until the mode changes (packets dropped on a dead link).
    Hanging,
}

/// A MemoryStorage behind a switch; it counts the calls made per operation.
struct Switched {
    inner: MemoryStorage,
    mode: watch::Sender<Mode>,
    calls: Mutex<Vec<&'static str>>,
}

impl Switched {
    fn new() -> Arc<Switched> {
        Arc::new(Switched {
            inner: MemoryStorage::new(),
            mode: watch::Sender::new(Mode::Up),
            calls: Mutex::new(Vec::new()),
        })
    }

    fn set(&self, mode: Mode) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.mode.send_replace(mode);
    }

    /// Calls of `operation` since the last mode change.
    fn calls(&self, operation: &str) -> usize {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.iter().filter(|call| **call == operation).count()
    }

    async fn gate(&self, operation: &'static str) -> Result<()> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(operation);
        let mut mode = self.mode.subscribe();
        loop {
            let now = *mode.borrow_and_update();
            match now {
                Mode::Up => return Ok(()),
                Mode::Failing => {
                    return Err(Error::Storage(
                        format!("{operation}: connection refused").into(),
                    ))
                }
                Mode::Hanging => {
                    if mode.changed().await.is_err() {
                        return Err(Error::Storage("storage dropped".into()));
                    }
                }
            }
        }
    }
}

#[async_trait]
impl Storage for Switched {
    async fn enqueue(&self, jobs: Vec<NewJob>, now: DateTime<Utc>) -> Result<Vec<Enqueued>> {
        self.gate("enqueue").await?;
        self.inner.enqueue(jobs, now).await
    }
    async fn queue_settings(&self) -> Result<Vec<QueueSettings>> {
        self.gate("queue_settings").await?;
        self.inner.queue_settings().await
    }
    async fn gated_queues(&self) -> Result<Vec<String>> {
        self.gate("gated_queues").await?;
        self.inner.gated_queues().await
    }
    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<()> {
        self.gate("set_queue_paused").await?;
        self.inner.set_queue_paused(queue, paused).await
    }
    async fn set_queue_limits(&self, queue: &str, limits: QueueLimits) -> Result<()> {
        self.gate("set_queue_limits").await?;
        self.inner.set_queue_limits(queue, limits).await
    }
    async fn register_job_limits(&self, limits: &[JobLimits]) -> Result<()> {
        self.gate("register_job_limits").await?;
        self.inner.register_job_limits(limits).await
    }
    async fn queues(&self) -> Result<Vec<QueueInfo>> {
        self.gate("queues").await?;
        self.inner.queues().await
    }
    async fn fetch(&self, request: FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        self.gate("fetch").await?;
        self.inner.fetch(request).await
    }
    async fn complete(&self, completions: &[Completion]) -> Result<()> {
        self.gate("complete").await?;
        self.inner.complete(completions).await
    }
    async fn keep_alive(
        &self,
        server_id: &str,
        ids: &[JobId],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<JobId>> {
        self.gate("keep_alive").await?;
        self.inner.keep_alive(server_id, ids, lease_until).await
    }
    async fn delete(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        self.gate("delete").await?;
        self.inner.delete(id, reason, now).await
    }
    async fn requeue(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        self.gate("requeue").await?;
        self.inner.requeue(id, reason, now).await
    }
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        self.gate("job").await?;
        self.inner.job(id).await
    }
    async fn wait_for_work(&self, max_wait: Duration) {
        self.inner.wait_for_work(max_wait).await;
    }
    async fn promote_scheduled(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        self.gate("promote_scheduled").await?;
        self.inner.promote_scheduled(now, limit).await
    }
    async fn rescue_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        self.gate("rescue_expired").await?;
        self.inner.rescue_expired(now, limit).await
    }
    async fn prune(&self, request: PruneRequest) -> Result<usize> {
        self.gate("prune").await?;
        self.inner.prune(request).await
    }
    async fn try_lead(
        &self,
        server_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        self.gate("try_lead").await?;
        self.inner.try_lead(server_id, now, until).await
    }
    async fn resign(&self, server_id: &str) -> Result<()> {
        self.gate("resign").await?;
        self.inner.resign(server_id).await
    }
    async fn register_server(&self, server: &ServerInfo, now: DateTime<Utc>) -> Result<()> {
        self.gate("register_server").await?;
        self.inner.register_server(server, now).await
    }
    async fn heartbeat(&self, server_id: &str, now: DateTime<Utc>) -> Result<()> {
        self.gate("heartbeat").await?;
        self.inner.heartbeat(server_id, now).await
    }
    async fn unregister_server(&self, server_id: &str) -> Result<()> {
        self.gate("unregister_server").await?;
        self.inner.unregister_server(server_id).await
    }
    async fn remove_dead_servers(&self, before: DateTime<Utc>) -> Result<usize> {
        self.gate("remove_dead_servers").await?;
        self.inner.remove_dead_servers(before).await
    }
    async fn servers(&self) -> Result<Vec<ServerRecord>> {
        self.gate("servers").await?;
        self.inner.servers().await
    }
    async fn upsert_recurring(&self, job: RecurringJob) -> Result<()> {
        self.gate("upsert_recurring").await?;
        self.inner.upsert_recurring(job).await
    }
    async fn recurring(&self, id: &str) -> Result<Option<RecurringJob>> {
        self.gate("recurring").await?;
        self.inner.recurring(id).await
    }
    async fn list_recurring(&self) -> Result<Vec<RecurringJob>> {
        self.gate("list_recurring").await?;
        self.inner.list_recurring().await
    }
    async fn remove_recurring(&self, id: &str) -> Result<bool> {
        self.gate("remove_recurring").await?;
        self.inner.remove_recurring(id).await
    }
    async fn set_recurring_paused(&self, id: &str, paused: bool) -> Result<bool> {
        self.gate("set_recurring_paused").await?;
        self.inner.set_recurring_paused(id, paused).await
    }
    async fn due_recurring(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<RecurringJob>> {
        self.gate("due_recurring").await?;
        self.inner.due_recurring(now, limit).await
    }
    async fn claim_recurring(&self, claim: RecurringClaim) -> Result<Option<Option<JobId>>> {
        self.gate("claim_recurring").await?;
        self.inner.claim_recurring(claim).await
    }
    async fn counts(&self) -> Result<StateCounts> {
        self.gate("counts").await?;
        self.inner.counts().await
    }
    async fn list_jobs(&self, query: JobQuery) -> Result<JobPage> {
        self.gate("list_jobs").await?;
        self.inner.list_jobs(query).await
    }
    async fn statistics(
        &self,
        granularity: Granularity,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StatPoint>> {
        self.gate("statistics").await?;
        self.inner.statistics(granularity, from, to).await
    }
}

/// Log lines at warning level and above, kept for the assertions.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    fn install() -> Log {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        // One subscriber per test thread (each test runs on its own current-thread runtime).
        let guard = tracing_subscriber::util::SubscriberInitExt::set_default(subscriber);
        std::mem::forget(guard);
        log
    }

    fn lines(&self, containing: &str) -> usize {
        let text = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&text)
            .lines()
            .filter(|line| line.contains(containing))
            .count()
    }

    fn warnings(&self) -> usize {
        self.lines(" WARN ") + self.lines("ERROR")
    }
}

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn serve(storage: &Arc<Switched>) -> ServerHandle {
    Server::builder_from_arc(storage.clone())
        .workers(2)
        .heartbeat_interval(Duration::from_secs(2))
        .maintenance_interval(Duration::from_secs(1))
        .poll_interval(Duration::from_millis(500))
        .shutdown_grace(Duration::from_secs(1))
        .shutdown_timeout(Duration::from_secs(1))
        .build()
        .expect("build")
        .start()
        .await
        .expect("start")
}

/// Waits, in paused tokio time, until `condition` holds; fails after a minute of it.
async fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failing_storage_pauses_fetching_logs_once_and_recovers() {
    let log = Log::install();
    let storage = Switched::new();
    let server = serve(&storage).await;
    storage.set(Mode::Failing);
    let outage = tokio::time::Instant::now();
    // A minute of outage (tokio time): every loop keeps trying, with backoff.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let fetches = storage.calls("fetch");
    let heartbeats = storage.calls("heartbeat");
    let leads = storage.calls("try_lead");
    assert!(
        fetches <= 2,
        "fetching pauses while the storage fails: {fetches} fetches"
    );
    // Retried every 5 s at most once backed off (2 s heartbeat, 1 s maintenance): not every tick.
    assert!(
        (5..=20).contains(&heartbeats),
        "the heartbeat backs off: {heartbeats} calls in 60 s"
    );
    assert!(
        (5..=20).contains(&leads),
        "maintenance backs off: {leads} calls in 60 s (60 without backoff)"
    );
    assert_eq!(
        log.lines("storage call failed"),
        1,
        "one line says the storage fails"
    );
    assert_eq!(log.warnings(), 1, "and no other warning is logged");

    // Back up: jobs enqueued meanwhile run, and the return is logged once.
    let client = Client::from_arc(storage.clone());
    storage.set(Mode::Up);
    let back = tokio::time::Instant::now();
    let before = RUNS.load(Ordering::SeqCst);
    let jobs: Vec<Counted> = (0..5).map(Counted::new).collect();
    client.enqueue_many(&jobs).await.expect("enqueue");
    until("the jobs to run after the outage", || {
        RUNS.load(Ordering::SeqCst) >= before + 5
    })
    .await;
    assert!(
        back.elapsed() <= Duration::from_secs(6),
        "fetching resumed within the longest backoff: {:?}",
        back.elapsed()
    );
    assert_eq!(log.lines("storage answers again"), 1);
    assert!(outage.elapsed() >= Duration::from_secs(60));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn shutdown_returns_by_its_deadline_while_storage_calls_hang() {
    let storage = Switched::new();
    let server = serve(&storage).await;
    let client = Client::from_arc(storage.clone());
    let jobs: Vec<Counted> = (0..3).map(Counted::new).collect();
    let before = RUNS.load(Ordering::SeqCst);
    client.enqueue_many(&jobs).await.expect("enqueue");
    until("the jobs to run", || {
        RUNS.load(Ordering::SeqCst) >= before + 3
    })
    .await;
    // Every call from now on hangs: outcomes, heartbeat, maintenance, unregistration.
    storage.set(Mode::Hanging);
    // Let every loop get stuck in a call.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let started = tokio::time::Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(120), server.shutdown()).await;
    assert!(stopped.is_ok(), "shutdown returned");
    // Grace 1 s + timeout 1 s, and at most 2 s more to store outcomes and unregister.
    assert!(
        started.elapsed() <= Duration::from_secs(4),
        "shutdown took {:?}",
        started.elapsed()
    );
}
