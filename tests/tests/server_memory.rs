//! End-to-end: `#[job]` functions run by a `Server` on `MemoryStorage`.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use chrono::TimeDelta;
use jobs::clock::Clock;
use jobs::prelude::*;
use jobs::storage::{FetchRequest, InitialState, NewJob};
use jobs::JobError;
use support::*;

/// Keys jobs mark when they reach a point, for tests to wait on.
static MARKS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn mark(key: impl Into<String>) {
    MARKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(key.into());
}

fn marked(key: &str) -> bool {
    MARKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|k| k == key)
}

fn marks_with(prefix: &str) -> Vec<String> {
    MARKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|k| k.starts_with(prefix))
        .cloned()
        .collect()
}

/// Doubles a number.
#[job]
async fn double(value: i64) -> anyhow::Result<i64> {
    Ok(value * 2)
}

/// A synchronous job: runs on the blocking pool.
#[job]
fn blocking_sum(a: u64, b: u64) -> anyhow::Result<u64> {
    let thread = std::thread::current();
    mark(format!(
        "blocking-thread:{}",
        thread.name().unwrap_or("unnamed")
    ));
    Ok(a + b)
}

#[job(retries = 2)]
async fn always_fails(label: String) -> anyhow::Result<()> {
    Err(anyhow!("always fails: {label}"))
}

#[job(retries = 1, retry_delays = [0], on_exhausted = "delete")]
async fn fails_then_deleted() -> anyhow::Result<()> {
    Err(anyhow!("never works"))
}

#[job(retries = 1, retry_delays = [0])]
async fn fails_once(ctx: JobContext) -> anyhow::Result<u32> {
    if ctx.attempt() == 1 {
        return Err(anyhow!("first attempt fails"));
    }
    Ok(ctx.attempt())
}

#[job(retries = 0)]
async fn panics(message: String) {
    panic!("{message}");
}

#[job(queue = "flaky", retries = 5, retry_delays = [1])]
async fn flaky(key: String, ctx: JobContext) -> anyhow::Result<u32> {
    mark(format!("{key}:attempt{}", ctx.attempt()));
    if ctx.attempt() < 3 {
        return Err(anyhow!("attempt {} failed", ctx.attempt()));
    }
    Ok(ctx.attempt())
}

#[job]
async fn waits_for_cancel(key: String, token: CancellationToken) -> anyhow::Result<()> {
    mark(format!("{key}:started"));
    token.cancelled().await;
    mark(format!("{key}:cancelled"));
    Err(anyhow!("stopped by cancellation"))
}

#[job]
async fn finishes_after_cancel(key: String, token: CancellationToken) -> anyhow::Result<()> {
    mark(format!("{key}:started"));
    token.cancelled().await;
    mark(format!("{key}:cancelled"));
    Ok(())
}

#[job(timeout = "100ms", retries = 0)]
async fn too_slow() -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_secs(600)).await;
    Ok(())
}

#[job(queue = "critical")]
async fn record_critical(n: u32) {
    mark(format!("priority:critical{n}"));
}

#[job(queue = "bulk")]
async fn record_bulk(n: u32) {
    mark(format!("priority:bulk{n}"));
}

/// A shared service.
struct Counter(AtomicU32);

/// A service made once per job execution.
struct Scoped;

static SCOPES_MADE: AtomicUsize = AtomicUsize::new(0);

#[job(queue = "di")]
async fn uses_services(
    add: u32,
    #[inject] counter: Arc<Counter>,
    #[inject] first: Arc<Scoped>,
    #[inject] second: Arc<Scoped>,
) -> anyhow::Result<(u32, bool)> {
    let total = counter.0.fetch_add(add, Ordering::SeqCst) + add;
    Ok((total, Arc::ptr_eq(&first, &second)))
}

/// An instance job's service.
struct Greeter {
    greeting: String,
}

#[job(queue = "di")]
impl Greeter {
    async fn greet(&self, name: String) -> anyhow::Result<String> {
        Ok(format!("{}, {name}", self.greeting))
    }
}

/// Never registered in any container.
struct Missing;

#[job(queue = "di-missing")]
async fn needs_missing(#[inject] missing: Arc<Missing>) {
    let _ = missing;
}

fn di_services() -> Services {
    Services::new()
        .with(Arc::new(Counter(AtomicU32::new(0))))
        .with_factory(|| {
            SCOPES_MADE.fetch_add(1, Ordering::SeqCst);
            Scoped
        })
        .with(Arc::new(Greeter {
            greeting: "hello".into(),
        }))
}

/// A service behind a trait: jobs inject it as `Arc<dyn Notifier>`.
trait Notifier: Send + Sync {
    /// Notifies `to`, returning what was sent.
    fn notify(&self, to: &str) -> String;
}

/// The `Notifier` registered for the trait-object jobs: records every call.
struct RecordingNotifier {
    sent: Mutex<Vec<String>>,
}

impl Notifier for RecordingNotifier {
    fn notify(&self, to: &str) -> String {
        let message = format!("notified {to}");
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message.clone());
        message
    }
}

/// A trait without `Send + Sync` supertraits: injected as `Arc<dyn Stamp + Send + Sync>`.
trait Stamp {
    /// The stamp of this execution.
    fn stamp(&self) -> u32;
}

/// A `Stamp` made once per job execution by a factory.
struct CountingStamp(u32);

impl Stamp for CountingStamp {
    fn stamp(&self) -> u32 {
        self.0
    }
}

static STAMPS_MADE: AtomicU32 = AtomicU32::new(0);

#[job(queue = "di-dyn")]
async fn notify_user(
    user: String,
    #[inject] notifier: Arc<dyn Notifier>,
    #[inject] first: Arc<dyn Stamp + Send + Sync>,
    #[inject] second: Arc<dyn Stamp + Send + Sync>,
) -> anyhow::Result<(String, bool)> {
    let _ = first.stamp();
    Ok((notifier.notify(&user), Arc::ptr_eq(&first, &second)))
}

/// A blocking job with a trait-object service.
#[job(queue = "di-dyn")]
fn notify_blocking(user: String, #[inject] notifier: Arc<dyn Notifier>) -> anyhow::Result<String> {
    Ok(notifier.notify(&user))
}

/// An instance job (a concrete service) that also injects a trait object.
struct Announcer {
    prefix: String,
}

#[job(queue = "di-dyn")]
impl Announcer {
    async fn announce(
        &self,
        user: String,
        #[inject] notifier: Arc<dyn Notifier>,
    ) -> anyhow::Result<String> {
        Ok(notifier.notify(&format!("{}{user}", self.prefix)))
    }
}

/// Never registered in any container, behind a trait.
trait MissingTrait: Send + Sync {}

#[job(queue = "di-dyn-missing")]
async fn needs_missing_trait(#[inject] missing: Arc<dyn MissingTrait>) {
    let _ = missing;
}

#[tokio::test]
async fn enqueued_job_succeeds_with_its_result_and_history() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let id = Double::new(21).enqueue(&client).await.unwrap();
    assert_eq!(client.job(id).await.unwrap().state, JobState::Enqueued);
    let server = fast(storage).build().unwrap().start().await.unwrap();
    let record = wait_state(&client, id, JobState::Succeeded).await;
    assert_eq!(record.result, Some(serde_json::json!(42)));
    assert_eq!(record.name, "double");
    assert_eq!(record.args, r#"{"value":21}"#);
    assert_eq!(
        states(&record),
        vec![
            JobState::Enqueued,
            JobState::Processing,
            JobState::Succeeded
        ]
    );
    let done = &record.history[2].data;
    assert_eq!(done.server.as_deref(), Some(server.id()));
    assert_eq!(done.attempt, Some(1));
    assert!(done.duration_ms.is_some() && done.latency_ms.is_some());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn sync_job_runs_on_the_blocking_pool() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let id = BlockingSum::new(2, 3).enqueue(&client).await.unwrap();
    let server = fast(storage).build().unwrap().start().await.unwrap();
    let record = wait_state(&client, id, JobState::Succeeded).await;
    assert_eq!(record.result, Some(serde_json::json!(5)));
    // This test's runtime is single-threaded: async jobs run on the test's own thread.
    let test_thread = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_owned();
    let threads = marks_with("blocking-thread:");
    assert_eq!(threads.len(), 1);
    assert_ne!(
        threads[0],
        format!("blocking-thread:{test_thread}"),
        "the sync job ran off the async thread"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn delayed_job_is_enqueued_at_its_time() {
    let storage = MemoryStorage::new();
    let clock = manual_clock();
    let client = Client::new(storage.clone()).with_clock(clock.clone());
    let id = Double::new(1)
        .schedule(&client, Duration::from_secs(60))
        .await
        .unwrap();
    let record = client.job(id).await.unwrap();
    assert_eq!(record.state, JobState::Scheduled);
    assert_eq!(record.run_at, Some(client.now() + TimeDelta::seconds(60)));
    let server = fast(storage)
        .clock(clock.clone())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    clock.advance(Duration::from_secs(59));
    // A job enqueued now runs while the delayed one, due in a second, still waits.
    let canary = Double::new(2).enqueue(&client).await.unwrap();
    wait_state(&client, canary, JobState::Succeeded).await;
    assert_eq!(client.job(id).await.unwrap().state, JobState::Scheduled);
    clock.advance(Duration::from_secs(1));
    let record = wait_state(&client, id, JobState::Succeeded).await;
    assert_eq!(
        states(&record),
        vec![
            JobState::Scheduled,
            JobState::Enqueued,
            JobState::Processing,
            JobState::Succeeded
        ]
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn failing_job_retries_with_hangfire_delays_then_fails() {
    let storage = MemoryStorage::new();
    let clock = manual_clock();
    let client = Client::new(storage.clone()).with_clock(clock.clone());
    let id = AlwaysFails::new("x".into()).enqueue(&client).await.unwrap();
    let server = fast(storage)
        .clock(clock.clone())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    // Retry n waits (n-1)^4 + 15 + rand(0..30) * n seconds: 15–44 s, then 16–74 s.
    for (retry, low, high) in [(1u32, 15i64, 44i64), (2, 16, 74)] {
        let record = jobs::testing::wait_for(&client, id, DEADLINE, |r| {
            r.state == JobState::Scheduled && r.retry_count == retry
        })
        .await
        .unwrap_or_else(|last| panic!("retry {retry} never scheduled: {last:?}"));
        let failed_at = record.state_at;
        let delay = (record.run_at.unwrap() - failed_at).num_seconds();
        assert!(
            (low..=high).contains(&delay),
            "retry {retry} waits {delay}s, expected {low}..={high}"
        );
        assert_eq!(
            last_reason(&record),
            format!("Retry attempt {retry} of 2: always fails: x")
        );
        let error = record.error.clone().unwrap();
        assert_eq!(error.message, "always fails: x");
        assert_eq!(error.type_name, "anyhow::Error");
        clock.advance(Duration::from_secs(delay as u64));
    }
    let record = wait_state(&client, id, JobState::Failed).await;
    assert_eq!(record.retry_count, 3);
    assert_eq!(
        last_reason(&record),
        "exceeded the maximum of 2 retries: always fails: x"
    );
    assert_eq!(
        record
            .history
            .iter()
            .filter(|e| e.state == JobState::Processing)
            .count(),
        3
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn job_that_fails_twice_succeeds_through_retries() {
    let storage = MemoryStorage::new();
    let clock = manual_clock();
    let client = Client::new(storage.clone()).with_clock(clock.clone());
    let id = Flaky::new("flaky-e2e".into())
        .enqueue(&client)
        .await
        .unwrap();
    let server = fast(storage)
        .queues(["flaky"])
        .clock(clock.clone())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    for retry in 1..=2 {
        jobs::testing::wait_for(&client, id, DEADLINE, |r| {
            r.retry_count == retry && r.state == JobState::Scheduled
        })
        .await
        .unwrap_or_else(|last| panic!("retry {retry} never scheduled: {last:?}"));
        clock.advance(Duration::from_secs(1));
    }
    let record = wait_state(&client, id, JobState::Succeeded).await;
    assert_eq!(record.result, Some(serde_json::json!(3)));
    assert_eq!(
        marks_with("flaky-e2e:"),
        vec![
            "flaky-e2e:attempt1",
            "flaky-e2e:attempt2",
            "flaky-e2e:attempt3"
        ]
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn exhausted_job_with_on_exhausted_delete_is_deleted() {
    let storage = MemoryStorage::new();
    let clock = manual_clock();
    let client = Client::new(storage.clone()).with_clock(clock.clone());
    let id = FailsThenDeleted::new().enqueue(&client).await.unwrap();
    let server = fast(storage)
        .clock(clock)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let record = wait_state(&client, id, JobState::Deleted).await;
    assert_eq!(record.retry_count, 2);
    assert_eq!(
        last_reason(&record),
        "exceeded the maximum of 1 retries: never works"
    );
    server.shutdown().await.unwrap();
}

/// A retry with no delay goes straight back to its queue, as in Hangfire: it does not wait
/// Scheduled for a promotion (here maintenance runs once, at the server's start).
#[tokio::test]
async fn a_retry_with_no_delay_is_enqueued_at_once() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let server = fast(storage)
        .maintenance_interval(Duration::from_secs(3600))
        .leader_ttl(Duration::from_secs(7200))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let id = FailsOnce::new().enqueue(&client).await.unwrap();
    let record = wait_state(&client, id, JobState::Succeeded).await;
    assert_eq!(record.retry_count, 1);
    assert_eq!(
        states(&record),
        [
            JobState::Enqueued,
            JobState::Processing,
            JobState::Enqueued,
            JobState::Processing,
            JobState::Succeeded
        ]
    );
    assert_eq!(
        record.history[2].reason.as_deref(),
        Some("Retry attempt 1 of 1: first attempt fails")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn panic_fails_the_job_and_the_worker_keeps_running() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let id = Panics::new("boom from a job".into())
        .enqueue(&client)
        .await
        .unwrap();
    let server = fast(storage)
        .workers(1)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let record = wait_state(&client, id, JobState::Failed).await;
    let error = record.error.clone().unwrap();
    assert_eq!(
        (error.type_name.as_str(), error.message.as_str()),
        (JobError::PANIC, "boom from a job")
    );
    assert_eq!(
        last_reason(&record),
        "retries are disabled for this job: boom from a job"
    );
    let after = Double::new(5).enqueue(&client).await.unwrap();
    wait_state(&client, after, JobState::Succeeded).await;
    server.shutdown().await.unwrap();
}

/// A retry policy with a bug: it panics when asked for a delay.
#[derive(Debug)]
struct PanickingPolicy;

impl jobs::RetryPolicy for PanickingPolicy {
    fn retries(&self) -> u32 {
        3
    }

    fn delay(&self, retry: u32, _error: &JobError) -> Duration {
        panic!("no delay for retry {retry}")
    }
}

/// The retry policy runs outside the job's panic capture: its panic fails the job with a
/// reason that says so (without the guard the worker died and the job stayed Processing), and
/// the only worker goes on with the next job.
#[tokio::test]
async fn a_panicking_retry_policy_fails_the_job_and_the_worker_keeps_running() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let id = AlwaysFails::new("policy".into())
        .enqueue(&client)
        .await
        .unwrap();
    let server = fast(storage)
        .workers(1)
        .job_retry_policy("always_fails", PanickingPolicy)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let record = wait_state(&client, id, JobState::Failed).await;
    assert_eq!(record.retry_count, 1);
    assert_eq!(
        last_reason(&record),
        "the retry policy panicked, so the job is not retried: no delay for retry 1"
    );
    assert_eq!(record.error.unwrap().message, "always fails: policy");
    let after = Double::new(6).enqueue(&client).await.unwrap();
    wait_state(&client, after, JobState::Succeeded).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn timeout_fails_the_attempt() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let id = TooSlow::new().enqueue(&client).await.unwrap();
    let server = fast(storage).build().unwrap().start().await.unwrap();
    let record = wait_state(&client, id, JobState::Failed).await;
    let error = record.error.unwrap();
    assert_eq!(error.type_name, JobError::TIMEOUT);
    assert_eq!(error.message, "job ran longer than its timeout of 100ms");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_job_name_and_bad_arguments_fail_clearly() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let raw = |name: &str, args: &str| NewJob::plain(name, "default", args, InitialState::Enqueued);
    let ids = client
        .storage()
        .enqueue(
            vec![
                raw("from_another_app", "{}"),
                raw("double", r#"{"value":"not a number"}"#),
                raw("double", "not json"),
            ],
            client.now(),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect::<Vec<_>>();
    let server = fast(storage)
        .workers(1)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let unknown = wait_state(&client, ids[0], JobState::Failed).await;
    assert_eq!(
        unknown.error.as_ref().unwrap().type_name,
        JobError::UNKNOWN_JOB
    );
    assert_eq!(
        last_reason(&unknown),
        "no job named `from_another_app` is registered in this process"
    );
    assert_eq!(unknown.retry_count, 1, "not retried");
    for id in &ids[1..] {
        let bad = wait_state(&client, *id, JobState::Failed).await;
        assert_eq!(
            bad.error.as_ref().unwrap().type_name,
            JobError::INVALID_ARGUMENTS
        );
        assert!(
            last_reason(&bad).starts_with("the arguments of `double` could not be deserialized"),
            "{}",
            last_reason(&bad)
        );
    }
    // The worker is still there, and the failed jobs can be requeued.
    let ok = Double::new(1).enqueue(&client).await.unwrap();
    wait_state(&client, ok, JobState::Succeeded).await;
    assert!(client.requeue(ids[0]).await.unwrap());
    wait_state(&client, ids[0], JobState::Failed).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_cancels_running_jobs_and_requeues_them_at_the_head() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let id = WaitsForCancel::new("shutdown-e2e".into())
        .enqueue(&client)
        .await
        .unwrap();
    let server = fast(storage).build().unwrap().start().await.unwrap();
    eventually("the job to start", async || marked("shutdown-e2e:started")).await;
    let behind = Double::new(1)
        .schedule(&client, Duration::from_secs(3600))
        .await
        .unwrap();
    server.shutdown().await.unwrap();
    assert!(marked("shutdown-e2e:cancelled"), "the job's token fired");
    let record = client.job(id).await.unwrap();
    assert_eq!(record.state, JobState::Enqueued);
    assert_eq!(record.retry_count, 0, "a shutdown is not a failed attempt");
    assert!(
        last_reason(&record).contains("shut down"),
        "{}",
        last_reason(&record)
    );
    assert!(!states(&record).contains(&JobState::Failed));
    assert_eq!(client.job(behind).await.unwrap().state, JobState::Scheduled);
    assert!(
        client.storage().servers().await.unwrap().is_empty(),
        "the server unregistered"
    );
}

#[tokio::test]
async fn deleting_a_processing_job_cancels_it_and_it_stays_deleted() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let id = FinishesAfterCancel::new("delete-e2e".into())
        .enqueue(&client)
        .await
        .unwrap();
    let server = fast(storage).build().unwrap().start().await.unwrap();
    eventually("the job to start", async || marked("delete-e2e:started")).await;
    assert!(client.delete(id).await.unwrap());
    eventually("the token to fire", async || marked("delete-e2e:cancelled")).await;
    // The job returned Ok after its token fired; the outcome is flushed on shutdown.
    server.shutdown().await.unwrap();
    let record = client.job(id).await.unwrap();
    assert_eq!(record.state, JobState::Deleted);
    assert_eq!(last_reason(&record), "deleted by a user");
}

#[tokio::test]
async fn queues_are_served_in_priority_order() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(RecordBulk::new(n).enqueue(&client).await.unwrap());
    }
    for n in 1..=2 {
        ids.push(RecordCritical::new(n).enqueue(&client).await.unwrap());
    }
    let server = fast(storage)
        .queues(["critical", "bulk"])
        .workers(1)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    for id in ids {
        wait_state(&client, id, JobState::Succeeded).await;
    }
    assert_eq!(
        marks_with("priority:"),
        vec![
            "priority:critical1",
            "priority:critical2",
            "priority:bulk1",
            "priority:bulk2",
            "priority:bulk3"
        ]
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn job_of_a_crashed_server_returns_after_its_lease_lapses() {
    let storage = MemoryStorage::new();
    let clock = manual_clock();
    let client = Client::new(storage.clone()).with_clock(clock.clone());
    let id = Double::new(4).enqueue(&client).await.unwrap();
    // A server claims the job and dies without a word.
    let queues = vec!["default".to_owned()];
    let claimed = client
        .storage()
        .fetch(FetchRequest {
            server_id: "crashed",
            queues: &queues,
            limit: 1,
            capacity: 1,
            now: clock.now(),
            lease_until: clock.now() + TimeDelta::seconds(300),
            flow: false,
            gated: false,
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let server = fast(storage)
        .clock(clock.clone())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    assert_eq!(client.job(id).await.unwrap().state, JobState::Processing);
    clock.advance(Duration::from_secs(301));
    let record = wait_state(&client, id, JobState::Succeeded).await;
    assert!(record
        .history
        .iter()
        .any(|e| e.reason.as_deref() == Some("lease expired: server crashed stopped responding")));
    assert_eq!(
        record.history.last().unwrap().data.server.as_deref(),
        Some(server.id())
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn services_and_instances_are_resolved_from_the_container() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let first = UsesServices::new(2).enqueue(&client).await.unwrap();
    let greeting = GreeterGreet::new("ada".into())
        .enqueue(&client)
        .await
        .unwrap();
    let made_before = SCOPES_MADE.load(Ordering::SeqCst);
    let server = fast(storage)
        .queues(["di"])
        .container(di_services())
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let record = wait_state(&client, first, JobState::Succeeded).await;
    assert_eq!(
        record.result,
        Some(serde_json::json!([2, true])),
        "one scoped instance per execution"
    );
    let second = UsesServices::new(3).enqueue(&client).await.unwrap();
    let record = wait_state(&client, second, JobState::Succeeded).await;
    assert_eq!(
        record.result,
        Some(serde_json::json!([5, true])),
        "the shared counter is shared"
    );
    assert_eq!(
        SCOPES_MADE.load(Ordering::SeqCst) - made_before,
        2,
        "the factory ran once per execution"
    );
    let greeted = wait_state(&client, greeting, JobState::Succeeded).await;
    assert_eq!(greeted.name, "Greeter::greet");
    assert_eq!(greeted.result, Some(serde_json::json!("hello, ada")));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn missing_services_are_reported_at_build() {
    let error = Server::builder(MemoryStorage::new())
        .queues(["di-missing", "di"])
        .build()
        .unwrap_err();
    let message = error.to_string();
    for expected in [
        "needs_missing",
        "Missing",
        "uses_services",
        "Counter",
        "Scoped",
        "Greeter::greet",
    ] {
        assert!(
            message.contains(expected),
            "`{expected}` missing from: {message}"
        );
    }
    let only_missing = Server::builder(MemoryStorage::new())
        .queues(["di-missing"])
        .container(di_services())
        .build()
        .unwrap_err();
    assert!(
        matches!(&only_missing, jobs::Error::UnresolvedServices(lines) if lines.len() == 1),
        "{only_missing}"
    );
}

/// Services behind traits: registered as `Arc<dyn Trait>` (shared, or made per execution by a
/// factory) and injected into free, blocking and instance jobs, which call them.
#[tokio::test]
async fn trait_object_services_are_injected_and_called() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let notifier = Arc::new(RecordingNotifier {
        sent: Mutex::new(Vec::new()),
    });
    let services = Services::new()
        .with::<dyn Notifier>(notifier.clone())
        .with_arc_factory(|| {
            let n = STAMPS_MADE.fetch_add(1, Ordering::SeqCst);
            Arc::new(CountingStamp(n)) as Arc<dyn Stamp + Send + Sync>
        })
        .with(Arc::new(Announcer {
            prefix: "all, ".into(),
        }));
    let server = fast(storage)
        .queues(["di-dyn"])
        .container(services)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let free = NotifyUser::new("ada".into())
        .enqueue(&client)
        .await
        .unwrap();
    let blocking = NotifyBlocking::new("bob".into())
        .enqueue(&client)
        .await
        .unwrap();
    let instance = AnnouncerAnnounce::new("cy".into())
        .enqueue(&client)
        .await
        .unwrap();
    let record = wait_state(&client, free, JobState::Succeeded).await;
    assert_eq!(
        record.result,
        Some(serde_json::json!(["notified ada", true])),
        "the service was called, and the factory made one instance for the execution"
    );
    let record = wait_state(&client, blocking, JobState::Succeeded).await;
    assert_eq!(record.result, Some(serde_json::json!("notified bob")));
    let record = wait_state(&client, instance, JobState::Succeeded).await;
    assert_eq!(record.result, Some(serde_json::json!("notified all, cy")));
    let mut sent = notifier
        .sent
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    sent.sort();
    assert_eq!(sent, ["notified ada", "notified all, cy", "notified bob"]);
    server.shutdown().await.unwrap();
}

/// A trait-object service missing from the container is reported at build, by its type.
#[tokio::test]
async fn missing_trait_object_services_are_reported_at_build() {
    let error = Server::builder(MemoryStorage::new())
        .queues(["di-dyn-missing"])
        .container(di_services())
        .build()
        .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(&error, jobs::Error::UnresolvedServices(lines) if lines.len() == 1),
        "{message}"
    );
    for expected in ["needs_missing_trait", "dyn ", "MissingTrait"] {
        assert!(
            message.contains(expected),
            "`{expected}` missing from: {message}"
        );
    }
}

#[tokio::test]
async fn invalid_server_settings_are_refused() {
    let bad_queue = Server::builder(MemoryStorage::new())
        .queues(["Bad Queue"])
        .build()
        .unwrap_err();
    assert_eq!(
        bad_queue.to_string(),
        "invalid queue name `Bad Queue`: queue names must match `^[a-z0-9_-]+$`"
    );
    let no_workers = Server::builder(MemoryStorage::new())
        .workers(0)
        .build()
        .unwrap_err();
    assert_eq!(
        no_workers.to_string(),
        "invalid configuration: a server needs at least one worker"
    );
}

#[tokio::test]
async fn many_jobs_each_run_exactly_once() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let jobs: Vec<Double> = (0..2000).map(Double::new).collect();
    let ids = client.enqueue_many(&jobs).await.unwrap();
    let servers = vec![
        fast(storage.clone())
            .workers(8)
            .build()
            .unwrap()
            .start()
            .await
            .unwrap(),
        fast(storage.clone())
            .workers(8)
            .build()
            .unwrap()
            .start()
            .await
            .unwrap(),
    ];
    for id in &ids {
        wait_state(&client, *id, JobState::Succeeded).await;
    }
    for server in servers {
        server.shutdown().await.unwrap();
    }
    let mut servers_used = HashSet::new();
    for id in &ids {
        let record = client.job(*id).await.unwrap();
        assert_eq!(
            record
                .history
                .iter()
                .filter(|e| e.state == JobState::Processing)
                .count(),
            1
        );
        servers_used.insert(record.history[1].data.server.clone());
    }
    assert_eq!(servers_used.len(), 2, "both servers took jobs");
}

#[tokio::test]
async fn finished_jobs_expire_after_the_retention_and_failed_ones_stay() {
    let storage = MemoryStorage::new();
    let clock = manual_clock();
    let client = Client::new(storage.clone()).with_clock(clock.clone());
    let succeeded = Double::new(1).enqueue(&client).await.unwrap();
    let failed = Panics::new("kept".into()).enqueue(&client).await.unwrap();
    let server = fast(storage)
        .clock(clock.clone())
        .retention(Duration::from_secs(3600))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    wait_state(&client, succeeded, JobState::Succeeded).await;
    wait_state(&client, failed, JobState::Failed).await;
    clock.advance(Duration::from_secs(3601));
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while client.job(succeeded).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the succeeded job was never pruned"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(matches!(
        client.job(succeeded).await,
        Err(jobs::Error::JobNotFound(_))
    ));
    assert_eq!(
        client.job(failed).await.unwrap().state,
        JobState::Failed,
        "failed jobs are kept"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn buffered_jobs_go_back_unstarted_on_shutdown() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let blocker = WaitsForCancel::new("buffer-e2e".into())
        .enqueue(&client)
        .await
        .unwrap();
    let mut buffered = Vec::new();
    for n in 0..3 {
        buffered.push(Double::new(n).enqueue(&client).await.unwrap());
    }
    let server = fast(storage)
        .workers(1)
        .fetch_buffer(3)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    eventually("the blocking job to start", async || {
        marked("buffer-e2e:started")
    })
    .await;
    // The one worker is busy: the three others are claimed into the buffer, waiting.
    for id in &buffered {
        wait_state(&client, *id, JobState::Processing).await;
    }
    server.shutdown().await.unwrap();
    for id in &buffered {
        let record = client.job(*id).await.unwrap();
        assert_eq!(record.state, JobState::Enqueued);
        assert!(
            last_reason(&record).ends_with("shut down before the job started"),
            "{}",
            last_reason(&record)
        );
        assert_eq!(
            states(&record),
            vec![JobState::Enqueued, JobState::Processing, JobState::Enqueued]
        );
    }
    assert_eq!(client.job(blocker).await.unwrap().state, JobState::Enqueued);
    // They kept their places: the blocker first, then the buffered jobs in order.
    let queues = vec!["default".to_owned()];
    let now = client.now();
    let next = client
        .storage()
        .fetch(FetchRequest {
            server_id: "check",
            queues: &queues,
            limit: 10,
            capacity: 10,
            now,
            lease_until: now,
            flow: false,
            gated: false,
        })
        .await
        .unwrap();
    let order: Vec<JobId> = next.iter().map(|job| job.id).collect();
    assert_eq!(order, [vec![blocker], buffered].concat());
}
