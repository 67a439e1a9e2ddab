//! The [`Storage`] contract as tests. Every storage runs the same cases:
//!
//! ```ignore
//! async fn setup() -> jobs::MemoryStorage { jobs::MemoryStorage::new() }
//! jobs::conformance_tests!(setup);
//! ```
//!
//! `setup` is an async fn returning a [`Fixture`]: a fresh, empty storage per case (a new
//! schema for a database), torn down after the case. Every case pins time: nothing waits on
//! the wall clock.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::error::Error;
use crate::job::{JobError, JobId, JobState};
use crate::storage::*;

/// A fresh storage for one conformance case.
pub trait Fixture: Send {
    /// The storage under test.
    fn storage(&self) -> Arc<dyn Storage>;
    /// Cleans up after the case (drop a schema, ...).
    fn teardown(self) -> impl Future<Output = ()> + Send;
}

impl Fixture for MemoryStorage {
    fn storage(&self) -> Arc<dyn Storage> {
        Arc::new(self.clone())
    }

    async fn teardown(self) {}
}

/// Generates one `#[tokio::test]` per conformance case, each on a fresh fixture from `$setup`
/// (an async fn returning a [`Fixture`]).
#[macro_export]
macro_rules! conformance_tests {
    ($setup:path) => {
        $crate::conformance_tests!(@cases $setup;
            enqueue_then_fetch_is_fifo,
            fetch_follows_queue_priority,
            fetch_serves_only_given_queues,
            concurrent_fetchers_never_share_a_job,
            fetch_records_processing,
            succeeded_stores_result_and_history,
            completion_needs_the_lease,
            completion_after_delete_keeps_deleted,
            retry_schedules_then_promotes,
            a_retry_due_at_once_is_enqueued,
            failed_and_deleted_outcomes,
            requeued_outcome_keeps_queue_position,
            scheduled_jobs_promote_at_their_time,
            lapsed_lease_is_rescued,
            keep_alive_reports_lost_jobs,
            delete_and_requeue,
            a_succeeded_job_keeps_its_history_when_requeued_and_deleted,
            a_worker_success_reads_back_whole,
            missing_job_is_an_error,
            many_jobs_read_at_once,
            prune_respects_retention,
            leadership_is_exclusive,
            server_registry,
            continuation_runs_after_parent_succeeds,
            continuation_delete_cascades,
            continuation_missing_parent_is_an_error,
            enqueue_refuses_invalid_queue_names,
            continuation_of_finished_parent_moves_at_once,
            continuation_conditions,
            requeued_parent_rearms_deleted_children,
            continuations_added_while_parents_finish,
            recurring_upsert_list_pause_remove,
            recurring_claim_is_atomic,
            counts_and_listing,
            scheduled_jobs_list_soonest_first,
            statistics_per_hour,
        );
    };
    (@cases $setup:path; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $setup().await;
                let storage = $crate::testing::conformance::Fixture::storage(&fixture);
                $crate::testing::conformance::$case(storage).await;
                $crate::testing::conformance::Fixture::teardown(fixture).await;
            }
        )*
    };
}

/// The fixed time every case starts at.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(seconds)
}

fn job(name: &str, queue: &str) -> NewJob {
    NewJob {
        name: name.to_owned(),
        queue: queue.to_owned(),
        args: format!(r#"{{"name":"{name}"}}"#),
        initial: InitialState::Enqueued,
        recurring: None,
    }
}

fn child(name: &str, parent: JobId, on: ContinueOn) -> NewJob {
    NewJob {
        initial: InitialState::Awaiting { parent, on },
        ..job(name, "default")
    }
}

const SERVER: &str = "server-a";
const OTHER: &str = "server-b";

fn queues(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

async fn enqueue(storage: &dyn Storage, jobs: Vec<NewJob>) -> Vec<JobId> {
    storage.enqueue(jobs, t0()).await.expect("enqueue")
}

async fn fetch_from(
    storage: &dyn Storage,
    server: &str,
    queue_names: &[&str],
    limit: usize,
    now: DateTime<Utc>,
) -> Vec<FetchedJob> {
    let queues = queues(queue_names);
    storage
        .fetch(FetchRequest {
            server_id: server,
            queues: &queues,
            limit,
            now,
            lease_until: now + TimeDelta::seconds(60),
        })
        .await
        .expect("fetch")
}

async fn fetch(storage: &dyn Storage, limit: usize) -> Vec<FetchedJob> {
    fetch_from(storage, SERVER, &["default"], limit, at(1)).await
}

fn ids(fetched: &[FetchedJob]) -> Vec<JobId> {
    fetched.iter().map(|job| job.id).collect()
}

async fn record(storage: &dyn Storage, id: JobId) -> JobRecord {
    storage
        .job(id)
        .await
        .expect("job")
        .unwrap_or_else(|| panic!("job {id} should exist"))
}

async fn state(storage: &dyn Storage, id: JobId) -> JobState {
    record(storage, id).await.state
}

fn states(record: &JobRecord) -> Vec<JobState> {
    record.history.iter().map(|entry| entry.state).collect()
}

async fn complete(
    storage: &dyn Storage,
    id: JobId,
    server: &str,
    now: DateTime<Utc>,
    outcome: Outcome,
) {
    storage
        .complete(&[Completion {
            id,
            server_id: server.into(),
            at: now,
            outcome,
        }])
        .await
        .expect("complete");
}

fn succeeded(result: Option<serde_json::Value>) -> Outcome {
    Outcome::Succeeded {
        data: StateData {
            result,
            duration_ms: Some(5),
            ..StateData::default()
        },
    }
}

fn error_data() -> StateData {
    StateData {
        error: Some(JobError::new("test::Error", "boom")),
        ..StateData::default()
    }
}

/// Jobs of one queue come out in the order they went in.
pub async fn enqueue_then_fetch_is_fifo(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let created = enqueue(
        storage,
        vec![
            job("a", "default"),
            job("b", "default"),
            job("c", "default"),
        ],
    )
    .await;
    assert_eq!(created.len(), 3);
    assert_eq!(
        HashSet::<_>::from_iter(created.iter()).len(),
        3,
        "ids are unique"
    );
    let first = fetch(storage, 2).await;
    assert_eq!(ids(&first), created[..2].to_vec());
    let second = fetch(storage, 5).await;
    assert_eq!(ids(&second), created[2..].to_vec());
    assert!(fetch(storage, 5).await.is_empty());
}

/// Queues are served in the order given.
pub async fn fetch_follows_queue_priority(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let created = enqueue(
        storage,
        vec![
            job("low1", "low"),
            job("high1", "high"),
            job("low2", "low"),
            job("high2", "high"),
        ],
    )
    .await;
    let fetched = fetch_from(storage, SERVER, &["high", "low"], 3, at(1)).await;
    assert_eq!(ids(&fetched), vec![created[1], created[3], created[0]]);
}

/// A server never gets jobs of queues it does not serve.
pub async fn fetch_serves_only_given_queues(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    enqueue(storage, vec![job("other", "other")]).await;
    assert!(fetch(storage, 10).await.is_empty());
    assert_eq!(
        fetch_from(storage, SERVER, &["other"], 10, at(1))
            .await
            .len(),
        1
    );
}

/// Many fetchers at once never claim one job twice, and claim every job.
pub async fn concurrent_fetchers_never_share_a_job(storage: Arc<dyn Storage>) {
    let jobs = (0..300)
        .map(|i| job(&format!("job{i}"), "default"))
        .collect();
    let created = enqueue(storage.as_ref(), jobs).await;
    let mut tasks = Vec::new();
    for fetcher in 0..8 {
        let storage = storage.clone();
        tasks.push(tokio::spawn(async move {
            let server = format!("server-{fetcher}");
            let mut mine = Vec::new();
            loop {
                let fetched = fetch_from(storage.as_ref(), &server, &["default"], 7, at(1)).await;
                if fetched.is_empty() {
                    return mine;
                }
                mine.extend(ids(&fetched));
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("fetcher task"));
    }
    let unique: HashSet<JobId> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "a job was claimed twice");
    assert_eq!(unique, created.into_iter().collect::<HashSet<_>>());
}

/// A fetched job is Processing, leased to its server, with its arguments and attempt.
pub async fn fetch_records_processing(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let id = enqueue(storage, vec![job("a", "default")]).await[0];
    let fetched = fetch(storage, 1).await;
    assert_eq!(fetched.len(), 1);
    let fetched = &fetched[0];
    assert_eq!((&*fetched.name, &*fetched.queue), ("a", "default"));
    assert_eq!(&*fetched.args, r#"{"name":"a"}"#);
    assert_eq!(fetched.retry_count, 0);
    assert_eq!(fetched.created_at, t0());
    assert_eq!(fetched.enqueued_at, t0());
    let record = record(storage, id).await;
    assert_eq!(record.state, JobState::Processing);
    assert_eq!(record.server_id.as_deref(), Some(SERVER));
    assert_eq!(
        states(&record),
        vec![JobState::Enqueued, JobState::Processing]
    );
    let processing = &record.history[1];
    assert_eq!(processing.at, at(1));
    assert_eq!(processing.data.server.as_deref(), Some(SERVER));
    assert_eq!(processing.data.attempt, Some(1));
}

/// Succeeded stores the result and the attempt's data in the history.
pub async fn succeeded_stores_result_and_history(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let id = enqueue(storage, vec![job("a", "default")]).await[0];
    fetch(storage, 1).await;
    complete(
        storage,
        id,
        SERVER,
        at(2),
        succeeded(Some(serde_json::json!({"total": 42}))),
    )
    .await;
    let record = record(storage, id).await;
    assert_eq!(record.state, JobState::Succeeded);
    assert_eq!(record.state_at, at(2));
    assert_eq!(record.result, Some(serde_json::json!({"total": 42})));
    assert_eq!(record.server_id, None);
    assert_eq!(
        states(&record),
        vec![
            JobState::Enqueued,
            JobState::Processing,
            JobState::Succeeded
        ]
    );
    assert_eq!(record.history[2].data.duration_ms, Some(5));
}

/// Only the server holding the lease can complete a job.
pub async fn completion_needs_the_lease(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let id = enqueue(storage, vec![job("a", "default")]).await[0];
    fetch(storage, 1).await;
    complete(storage, id, OTHER, at(2), succeeded(None)).await;
    assert_eq!(state(storage, id).await, JobState::Processing);
    complete(storage, id, SERVER, at(2), succeeded(None)).await;
    assert_eq!(state(storage, id).await, JobState::Succeeded);
    // A second completion of a finished job changes nothing.
    complete(
        storage,
        id,
        SERVER,
        at(3),
        Outcome::Failed {
            reason: "late".into(),
            data: error_data(),
        },
    )
    .await;
    assert_eq!(state(storage, id).await, JobState::Succeeded);
}

/// A job deleted while it runs stays Deleted whatever its attempt returns.
pub async fn completion_after_delete_keeps_deleted(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let id = enqueue(storage, vec![job("a", "default")]).await[0];
    fetch(storage, 1).await;
    assert!(storage
        .delete(id, "deleted by a user", at(2))
        .await
        .expect("delete"));
    complete(storage, id, SERVER, at(3), succeeded(None)).await;
    let record = record(storage, id).await;
    assert_eq!(record.state, JobState::Deleted);
    assert_eq!(
        record.history.last().and_then(|e| e.reason.as_deref()),
        Some("deleted by a user")
    );
}

/// A retry is Scheduled with its reason, counts the failure, and is enqueued at its time.
pub async fn retry_schedules_then_promotes(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let id = enqueue(storage, vec![job("a", "default")]).await[0];
    fetch(storage, 1).await;
    let reason = "Retry attempt 1 of 10: boom".to_owned();
    complete(
        storage,
        id,
        SERVER,
        at(2),
        Outcome::Retry {
            run_at: at(32),
            reason: reason.clone(),
            data: error_data(),
        },
    )
    .await;
    let scheduled = record(storage, id).await;
    assert_eq!(scheduled.state, JobState::Scheduled);
    assert_eq!(scheduled.run_at, Some(at(32)));
    assert_eq!(scheduled.retry_count, 1);
    assert_eq!(
        scheduled.error.as_ref().map(|e| e.message.as_str()),
        Some("boom")
    );
    assert_eq!(
        scheduled.history.last().and_then(|e| e.reason.clone()),
        Some(reason)
    );
    assert_eq!(
        storage
            .promote_scheduled(at(31), 100)
            .await
            .expect("promote"),
        0
    );
    assert_eq!(
        storage
            .promote_scheduled(at(32), 100)
            .await
            .expect("promote"),
        1
    );
    assert_eq!(state(storage, id).await, JobState::Enqueued);
    let again = fetch_from(storage, SERVER, &["default"], 1, at(33)).await;
    assert_eq!(ids(&again), vec![id]);
    assert_eq!(again[0].retry_count, 1);
}

/// A retry due no later than the attempt's end is Enqueued at once (at its place in the
/// queue, the failed attempt counted), not Scheduled for the next promotion.
pub async fn a_retry_due_at_once_is_enqueued(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let id = enqueue(storage, vec![job("retried", "default")]).await[0];
    fetch(storage, 1).await;
    complete(
        storage,
        id,
        SERVER,
        at(2),
        Outcome::Retry {
            run_at: at(2),
            reason: "Retry attempt 1 of 3: boom".into(),
            data: error_data(),
        },
    )
    .await;
    let record = record(storage, id).await;
    assert_eq!(record.state, JobState::Enqueued);
    assert_eq!(record.retry_count, 1);
    let last = record.history.last().expect("history");
    assert_eq!(last.reason.as_deref(), Some("Retry attempt 1 of 3: boom"));
    assert!(last.data.error.is_some(), "the error is kept: {last:?}");
    let again = fetch_from(storage, SERVER, &["default"], 1, at(2)).await;
    assert_eq!(ids(&again), [id], "fetched again with no promotion");
}

/// Exhausted retries end Failed or Deleted, with the error recorded.
pub async fn failed_and_deleted_outcomes(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let created = enqueue(storage, vec![job("a", "default"), job("b", "default")]).await;
    fetch(storage, 2).await;
    complete(
        storage,
        created[0],
        SERVER,
        at(2),
        Outcome::Failed {
            reason: "exceeded".into(),
            data: error_data(),
        },
    )
    .await;
    complete(
        storage,
        created[1],
        SERVER,
        at(2),
        Outcome::Deleted {
            reason: "exceeded".into(),
            data: error_data(),
        },
    )
    .await;
    let failed = record(storage, created[0]).await;
    assert_eq!((failed.state, failed.retry_count), (JobState::Failed, 1));
    assert_eq!(
        failed.error.as_ref().map(|e| e.type_name.as_str()),
        Some("test::Error")
    );
    assert_eq!(state(storage, created[1]).await, JobState::Deleted);
}

/// A job put back on shutdown keeps its place ahead of jobs enqueued after it.
pub async fn requeued_outcome_keeps_queue_position(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let created = enqueue(storage, vec![job("a", "default"), job("b", "default")]).await;
    let first = fetch(storage, 1).await;
    assert_eq!(ids(&first), vec![created[0]]);
    let later = enqueue(storage, vec![job("c", "default")]).await[0];
    complete(
        storage,
        created[0],
        SERVER,
        at(2),
        Outcome::Requeued {
            reason: "server shut down".into(),
        },
    )
    .await;
    let record = record(storage, created[0]).await;
    assert_eq!((record.state, record.retry_count), (JobState::Enqueued, 0));
    let order = ids(&fetch(storage, 3).await);
    assert_eq!(order, vec![created[0], created[1], later]);
}

/// A scheduled job becomes Enqueued at its time, not before.
pub async fn scheduled_jobs_promote_at_their_time(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let scheduled = NewJob {
        initial: InitialState::Scheduled { at: at(60) },
        ..job("later", "default")
    };
    let id = enqueue(storage, vec![scheduled]).await[0];
    let record = record(storage, id).await;
    assert_eq!(
        (record.state, record.run_at),
        (JobState::Scheduled, Some(at(60)))
    );
    assert!(fetch(storage, 1).await.is_empty());
    assert_eq!(
        storage
            .promote_scheduled(at(59), 10)
            .await
            .expect("promote"),
        0
    );
    assert_eq!(
        storage
            .promote_scheduled(at(60), 10)
            .await
            .expect("promote"),
        1
    );
    assert_eq!(
        ids(&fetch_from(storage, SERVER, &["default"], 1, at(61)).await),
        vec![id]
    );
}

/// A job whose lease lapsed (its server died) goes back to its queue, once.
pub async fn lapsed_lease_is_rescued(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let created = enqueue(storage, vec![job("a", "default"), job("b", "default")]).await;
    let queue = queues(&["default"]);
    storage
        .fetch(FetchRequest {
            server_id: SERVER,
            queues: &queue,
            limit: 1,
            now: at(0),
            lease_until: at(10),
        })
        .await
        .expect("fetch");
    assert_eq!(storage.rescue_expired(at(5), 10).await.expect("rescue"), 0);
    assert!(storage
        .keep_alive(SERVER, &[created[0]], at(20))
        .await
        .expect("keep alive")
        .is_empty());
    assert_eq!(
        storage.rescue_expired(at(15), 10).await.expect("rescue"),
        0,
        "a renewed lease holds"
    );
    assert_eq!(storage.rescue_expired(at(21), 10).await.expect("rescue"), 1);
    assert_eq!(storage.rescue_expired(at(22), 10).await.expect("rescue"), 0);
    let record = record(storage, created[0]).await;
    assert_eq!(record.state, JobState::Enqueued);
    assert!(record
        .history
        .last()
        .and_then(|e| e.reason.as_deref())
        .is_some_and(|r| r.contains("lease expired")));
    // It is taken again, ahead of the job behind it; the dead server's completion is ignored.
    let taken = fetch_from(storage, OTHER, &["default"], 1, at(23)).await;
    assert_eq!(ids(&taken), vec![created[0]]);
    complete(storage, created[0], SERVER, at(24), succeeded(None)).await;
    assert_eq!(state(storage, created[0]).await, JobState::Processing);
    complete(storage, created[0], OTHER, at(24), succeeded(None)).await;
    assert_eq!(state(storage, created[0]).await, JobState::Succeeded);
}

/// keep_alive tells a server which of its jobs it no longer holds.
pub async fn keep_alive_reports_lost_jobs(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let created = enqueue(
        storage,
        vec![
            job("a", "default"),
            job("b", "default"),
            job("c", "default"),
        ],
    )
    .await;
    fetch(storage, 3).await;
    storage
        .delete(created[1], "deleted by a user", at(2))
        .await
        .expect("delete");
    storage
        .requeue(created[2], "requeued by a user", at(2))
        .await
        .expect("requeue");
    let lost = storage
        .keep_alive(SERVER, &created, at(100))
        .await
        .expect("keep alive");
    assert_eq!(
        lost.into_iter().collect::<HashSet<_>>(),
        HashSet::from([created[1], created[2]])
    );
    assert_eq!(
        storage
            .keep_alive(OTHER, &created[..1], at(100))
            .await
            .expect("keep alive"),
        vec![created[0]]
    );
}

/// delete and requeue move jobs from any state and report no-ops.
pub async fn delete_and_requeue(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let id = enqueue(storage, vec![job("a", "default")]).await[0];
    assert!(
        !storage.requeue(id, "again", at(1)).await.expect("requeue"),
        "already enqueued"
    );
    assert!(storage.delete(id, "gone", at(2)).await.expect("delete"));
    assert!(
        !storage.delete(id, "gone", at(3)).await.expect("delete"),
        "already deleted"
    );
    assert!(
        fetch(storage, 1).await.is_empty(),
        "a deleted job is not fetched"
    );
    assert!(storage.requeue(id, "back", at(4)).await.expect("requeue"));
    let record = record(storage, id).await;
    assert_eq!(record.state, JobState::Enqueued);
    assert_eq!(
        states(&record),
        vec![JobState::Enqueued, JobState::Deleted, JobState::Enqueued]
    );
    assert_eq!(
        ids(&fetch_from(storage, SERVER, &["default"], 1, at(5)).await),
        vec![id]
    );
}

/// A success as a worker reports it (its server, attempt, duration, latency and result) reads
/// back exactly, on the server that ran it and after the job ran again elsewhere.
pub async fn a_worker_success_reads_back_whole(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let id = enqueue(storage, vec![job("a", "default")]).await[0];
    let worker_data = |server: &str, attempt: u32, result: serde_json::Value| StateData {
        server: Some(server.to_owned()),
        attempt: Some(attempt),
        duration_ms: Some(12),
        latency_ms: Some(3),
        result: Some(result),
        ..StateData::default()
    };
    let first = worker_data(SERVER, 1, serde_json::json!({"sent": 2}));
    fetch(storage, 1).await;
    let outcome = Outcome::Succeeded {
        data: first.clone(),
    };
    complete(storage, id, SERVER, at(2), outcome).await;
    assert!(storage.requeue(id, "again", at(3)).await.expect("requeue"));
    fetch_from(storage, OTHER, &["default"], 1, at(4)).await;
    let second = worker_data(OTHER, 1, serde_json::json!("done"));
    let outcome = Outcome::Succeeded {
        data: second.clone(),
    };
    complete(storage, id, OTHER, at(5), outcome).await;
    let record = record(storage, id).await;
    let succeeded: Vec<(DateTime<Utc>, StateData)> = record
        .history
        .iter()
        .filter(|entry| entry.state == JobState::Succeeded)
        .map(|entry| (entry.at, entry.data.clone()))
        .collect();
    assert_eq!(succeeded, vec![(at(2), first), (at(5), second)]);
    assert_eq!(record.result, Some(serde_json::json!("done")));
}

/// A success's entries (its attempt's Processing entry, then Succeeded with the attempt's data
/// and result) read the same before and after the job is requeued, runs again and is deleted;
/// every entry keeps its time, reason and data, in order.
pub async fn a_succeeded_job_keeps_its_history_when_requeued_and_deleted(
    storage: Arc<dyn Storage>,
) {
    let storage = storage.as_ref();
    let id = enqueue(storage, vec![job("a", "default")]).await[0];
    fetch(storage, 1).await;
    complete(
        storage,
        id,
        SERVER,
        at(2),
        succeeded(Some(serde_json::json!(7))),
    )
    .await;
    let first = record(storage, id).await;
    assert_eq!(first.server_id, None, "a finished job has no server");
    assert!(storage.requeue(id, "again", at(3)).await.expect("requeue"));
    assert_eq!(
        ids(&fetch_from(storage, OTHER, &["default"], 1, at(4)).await),
        vec![id]
    );
    complete(storage, id, OTHER, at(5), succeeded(None)).await;
    let second = record(storage, id).await;
    assert!(storage.delete(id, "gone", at(6)).await.expect("delete"));
    let last = record(storage, id).await;

    let entries = |record: &JobRecord| {
        record
            .history
            .iter()
            .map(|entry| {
                (
                    entry.state,
                    entry.at,
                    entry.reason.clone(),
                    entry.data.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let processing = |server: &str| StateData {
        server: Some(server.to_owned()),
        attempt: Some(1),
        ..StateData::default()
    };
    let success = |result: Option<serde_json::Value>| StateData {
        result,
        duration_ms: Some(5),
        ..StateData::default()
    };
    let created = (
        JobState::Enqueued,
        first.created_at,
        None,
        StateData {
            queue: Some("default".to_owned()),
            ..StateData::default()
        },
    );
    let first_run = vec![
        created,
        (JobState::Processing, at(1), None, processing(SERVER)),
        (
            JobState::Succeeded,
            at(2),
            None,
            success(Some(serde_json::json!(7))),
        ),
    ];
    assert_eq!(entries(&first), first_run);
    let mut second_run = first_run;
    second_run.extend([
        (
            JobState::Enqueued,
            at(3),
            Some("again".to_owned()),
            StateData {
                queue: Some("default".to_owned()),
                ..StateData::default()
            },
        ),
        (JobState::Processing, at(4), None, processing(OTHER)),
        (JobState::Succeeded, at(5), None, success(None)),
    ]);
    assert_eq!(entries(&second), second_run);
    let mut deleted = second_run;
    deleted.push((
        JobState::Deleted,
        at(6),
        Some("gone".to_owned()),
        StateData::default(),
    ));
    assert_eq!(entries(&last), deleted);
    assert_eq!(last.result, None, "the last success had no result");
}

/// Changing a job that does not exist is an error, reading it is `None`.
pub async fn missing_job_is_an_error(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let missing = JobId(987_654_321);
    assert!(storage.job(missing).await.expect("job").is_none());
    assert!(
        matches!(storage.delete(missing, "x", at(0)).await, Err(Error::JobNotFound(id)) if id == missing)
    );
    assert!(
        matches!(storage.requeue(missing, "x", at(0)).await, Err(Error::JobNotFound(id)) if id == missing)
    );
}

/// `jobs(ids)` returns the same records as `job(id)` one by one, in the order asked, without
/// the missing ones.
pub async fn many_jobs_read_at_once(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let ids = enqueue(
        storage,
        vec![
            job("a", "default"),
            job("b", "default"),
            job("c", "default"),
        ],
    )
    .await;
    let fetched = fetch(storage, 2).await;
    assert_eq!(fetched.len(), 2);
    complete(storage, ids[0], SERVER, at(2), succeeded(None)).await;
    let missing = JobId(987_654_321);
    let asked = [ids[2], missing, ids[0], ids[1]];
    let records = storage.jobs(&asked).await.expect("jobs");
    let one_by_one = vec![
        record(storage, ids[2]).await,
        record(storage, ids[0]).await,
        record(storage, ids[1]).await,
    ];
    assert_eq!(records, one_by_one);
    assert_eq!(
        records.iter().map(|r| r.state).collect::<Vec<_>>(),
        [
            JobState::Enqueued,
            JobState::Succeeded,
            JobState::Processing
        ]
    );
    assert!(storage.jobs(&[]).await.expect("none").is_empty());
}

/// Succeeded and Deleted jobs expire after the retention; Failed only when asked.
pub async fn prune_respects_retention(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let created = enqueue(
        storage,
        vec![
            job("ok", "default"),
            job("bad", "default"),
            job("gone", "default"),
            job("waiting", "default"),
        ],
    )
    .await;
    fetch(storage, 2).await;
    complete(storage, created[0], SERVER, at(10), succeeded(None)).await;
    complete(
        storage,
        created[1],
        SERVER,
        at(10),
        Outcome::Failed {
            reason: "x".into(),
            data: error_data(),
        },
    )
    .await;
    storage
        .delete(created[2], "x", at(10))
        .await
        .expect("delete");
    let keep_failed = PruneRequest {
        finished_before: at(10),
        failed_before: None,
        limit: 100,
    };
    assert_eq!(
        storage.prune(keep_failed).await.expect("prune"),
        0,
        "nothing expired yet"
    );
    let prune = PruneRequest {
        finished_before: at(11),
        failed_before: None,
        limit: 100,
    };
    assert_eq!(storage.prune(prune).await.expect("prune"), 2);
    assert!(storage.job(created[0]).await.expect("job").is_none());
    assert!(storage.job(created[2]).await.expect("job").is_none());
    assert_eq!(state(storage, created[1]).await, JobState::Failed);
    assert_eq!(state(storage, created[3]).await, JobState::Enqueued);
    let prune_failed = PruneRequest {
        finished_before: at(11),
        failed_before: Some(at(11)),
        limit: 100,
    };
    assert_eq!(storage.prune(prune_failed).await.expect("prune"), 1);
    assert!(storage.job(created[1]).await.expect("job").is_none());
}

/// One leader at a time; it can renew; another takes over when it lapses or resigns.
pub async fn leadership_is_exclusive(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    assert!(storage.try_lead(SERVER, at(0), at(10)).await.expect("lead"));
    assert!(!storage.try_lead(OTHER, at(1), at(11)).await.expect("lead"));
    assert!(storage
        .try_lead(SERVER, at(5), at(15))
        .await
        .expect("renew"));
    assert!(!storage.try_lead(OTHER, at(14), at(24)).await.expect("lead"));
    assert!(storage
        .try_lead(OTHER, at(16), at(26))
        .await
        .expect("take over"));
    assert!(!storage
        .try_lead(SERVER, at(17), at(27))
        .await
        .expect("lead"));
    storage.resign(OTHER).await.expect("resign");
    assert!(storage
        .try_lead(SERVER, at(18), at(28))
        .await
        .expect("lead after resign"));
}

/// Servers register, beat, and are removed when dead.
pub async fn server_registry(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let info = |id: &str| ServerInfo {
        id: id.to_owned(),
        queues: queues(&["critical", "default"]),
        workers: 4,
        started_at: t0(),
    };
    storage
        .register_server(&info(SERVER), at(0))
        .await
        .expect("register");
    storage
        .register_server(&info(OTHER), at(0))
        .await
        .expect("register");
    storage.heartbeat(SERVER, at(50)).await.expect("heartbeat");
    let servers = storage.servers().await.expect("servers");
    assert_eq!(servers.len(), 2);
    let a = servers
        .iter()
        .find(|s| s.info.id == SERVER)
        .expect("server a listed");
    assert_eq!(
        (a.heartbeat_at, a.info.workers, a.info.queues.clone()),
        (at(50), 4, queues(&["critical", "default"]))
    );
    assert_eq!(
        storage
            .remove_dead_servers(at(10))
            .await
            .expect("remove dead"),
        1
    );
    assert_eq!(storage.servers().await.expect("servers").len(), 1);
    storage.unregister_server(SERVER).await.expect("unregister");
    assert!(storage.servers().await.expect("servers").is_empty());
}

/// A continuation waits, then is enqueued with its parent's result when the parent succeeds.
pub async fn continuation_runs_after_parent_succeeds(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let parent = enqueue(storage, vec![job("parent", "default")]).await[0];
    let kids = enqueue(
        storage,
        vec![
            child("child1", parent, ContinueOn::Succeeded),
            child("child2", parent, ContinueOn::Succeeded),
        ],
    )
    .await;
    for kid in &kids {
        let record = record(storage, *kid).await;
        assert_eq!(
            (record.state, record.parent),
            (JobState::Awaiting, Some(parent))
        );
    }
    assert_eq!(record(storage, parent).await.children, kids);
    assert_eq!(
        ids(&fetch(storage, 10).await),
        vec![parent],
        "awaiting jobs are not fetched"
    );
    complete(
        storage,
        parent,
        SERVER,
        at(2),
        succeeded(Some(serde_json::json!("hello"))),
    )
    .await;
    for kid in &kids {
        assert_eq!(state(storage, *kid).await, JobState::Enqueued);
    }
    let fetched = fetch_from(storage, SERVER, &["default"], 10, at(3)).await;
    assert_eq!(ids(&fetched), kids);
    assert_eq!(fetched[0].parent, Some(parent));
    assert_eq!(fetched[0].parent_result, Some(serde_json::json!("hello")));
}

/// A deleted parent deletes its continuations, down the chain.
pub async fn continuation_delete_cascades(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let parent = enqueue(storage, vec![job("parent", "default")]).await[0];
    let first = enqueue(storage, vec![child("first", parent, ContinueOn::Succeeded)]).await[0];
    let second = enqueue(storage, vec![child("second", first, ContinueOn::Succeeded)]).await[0];
    storage
        .delete(parent, "deleted by a user", at(1))
        .await
        .expect("delete");
    for kid in [first, second] {
        let record = record(storage, kid).await;
        assert_eq!(record.state, JobState::Deleted);
        let reason = record
            .history
            .last()
            .and_then(|e| e.reason.clone())
            .unwrap_or_default();
        assert!(
            reason.starts_with("continuation condition not met"),
            "reason: {reason}"
        );
    }
}

/// A continuation of a job that does not exist is refused.
pub async fn continuation_missing_parent_is_an_error(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let missing = JobId(987_654_321);
    let result = storage
        .enqueue(vec![child("orphan", missing, ContinueOn::Succeeded)], t0())
        .await;
    assert!(
        matches!(result, Err(Error::ParentNotFound(id)) if id == missing),
        "{result:?}"
    );
    assert_eq!(
        storage
            .counts()
            .await
            .expect("counts")
            .by_state
            .values()
            .sum::<u64>(),
        0,
        "nothing was created"
    );
}

/// A job for a queue no server may serve (`validate_queue`) is refused, and nothing of its
/// batch is created.
pub async fn enqueue_refuses_invalid_queue_names(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    for bad in ["Not Valid", "", "naïve", "a.b"] {
        let result = storage
            .enqueue(vec![job("fine", "default"), job("bad", bad)], t0())
            .await;
        assert!(
            matches!(&result, Err(Error::InvalidQueue(message)) if message.contains("queue name")),
            "queue {bad:?}: {result:?}"
        );
    }
    let counts = storage.counts().await.expect("counts");
    assert_eq!(
        counts.by_state.values().sum::<u64>(),
        0,
        "nothing was created"
    );
}

/// A continuation of a parent that already finished moves on at once.
pub async fn continuation_of_finished_parent_moves_at_once(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let parents = enqueue(
        storage,
        vec![job("done", "default"), job("gone", "default")],
    )
    .await;
    fetch(storage, 1).await;
    complete(
        storage,
        parents[0],
        SERVER,
        at(2),
        succeeded(Some(serde_json::json!(7))),
    )
    .await;
    storage
        .delete(parents[1], "x", at(2))
        .await
        .expect("delete");
    let kids = enqueue(
        storage,
        vec![
            child("after-done", parents[0], ContinueOn::Succeeded),
            child("after-gone", parents[1], ContinueOn::Succeeded),
        ],
    )
    .await;
    assert_eq!(state(storage, kids[0]).await, JobState::Enqueued);
    assert_eq!(state(storage, kids[1]).await, JobState::Deleted);
    let fetched = fetch_from(storage, SERVER, &["default"], 1, at(3)).await;
    assert_eq!(fetched[0].parent_result, Some(serde_json::json!(7)));
}

/// `ContinueOn` decides which parent outcome releases a child (see its table).
pub async fn continuation_conditions(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let parent = enqueue(storage, vec![job("parent", "default")]).await[0];
    let kids = enqueue(
        storage,
        vec![
            child("on-success", parent, ContinueOn::Succeeded),
            child("on-any", parent, ContinueOn::AnyFinished),
            child("on-failure", parent, ContinueOn::Failed),
        ],
    )
    .await;
    fetch(storage, 1).await;
    complete(
        storage,
        parent,
        SERVER,
        at(2),
        Outcome::Retry {
            run_at: at(30),
            reason: "Retry attempt 1 of 1: boom".into(),
            data: error_data(),
        },
    )
    .await;
    for kid in &kids {
        assert_eq!(
            state(storage, *kid).await,
            JobState::Awaiting,
            "a retry is not a finish"
        );
    }
    storage
        .promote_scheduled(at(30), 10)
        .await
        .expect("promote");
    fetch_from(storage, SERVER, &["default"], 1, at(31)).await;
    complete(
        storage,
        parent,
        SERVER,
        at(32),
        Outcome::Failed {
            reason: "exceeded".into(),
            data: error_data(),
        },
    )
    .await;
    assert_eq!(
        state(storage, kids[0]).await,
        JobState::Awaiting,
        "a failed parent may still be requeued"
    );
    assert_eq!(state(storage, kids[1]).await, JobState::Enqueued);
    assert_eq!(state(storage, kids[2]).await, JobState::Enqueued);
    // Requeued and then succeeding, the parent releases the child that waited for success.
    assert!(storage
        .requeue(parent, "requeued by a user", at(40))
        .await
        .expect("requeue"));
    assert_eq!(state(storage, kids[0]).await, JobState::Awaiting);
    let queue = fetch_from(storage, SERVER, &["default"], 10, at(41)).await;
    assert!(ids(&queue).contains(&parent));
    complete(storage, parent, SERVER, at(42), succeeded(None)).await;
    assert_eq!(state(storage, kids[0]).await, JobState::Enqueued);
    // A child waiting for failure of a parent that succeeds is deleted.
    let other = enqueue(storage, vec![job("other", "default")]).await[0];
    let only_failure = enqueue(
        storage,
        vec![child("only-failure", other, ContinueOn::Failed)],
    )
    .await[0];
    fetch_from(storage, SERVER, &["default"], 10, at(43)).await;
    complete(storage, other, SERVER, at(44), succeeded(None)).await;
    assert_eq!(state(storage, only_failure).await, JobState::Deleted);
}

/// A continuation added at the moment its parent is decided ends as if it had been added just
/// before or just after: never left Awaiting under a parent that is final. Each chain is a
/// running job `P`, its continuation `C`, and a grandchild `G` added to `C` while `P` succeeds
/// or is deleted (both at once, from two tasks): when `C` is deleted, `G` must be deleted too;
/// when `C` is enqueued, `G` waits for it. Kinds of chains: `C` waits for `P`'s failure (deleted
/// when `P` succeeds), `C` waits for success and `P` is deleted (deleted down the chain), `C`
/// waits for success and `P` succeeds (`C` enqueued, `G` Awaiting).
pub async fn continuations_added_while_parents_finish(storage: Arc<dyn Storage>) {
    const CHAINS: usize = 60;
    const ROUNDS: usize = 4;
    for round in 0..ROUNDS {
        // Each round's parents in a queue of their own: earlier rounds left children Enqueued.
        let queue = format!("race-{round}");
        let parents = enqueue(
            storage.as_ref(),
            (0..CHAINS).map(|_| job("p", &queue)).collect(),
        )
        .await;
        let now = at(10 * round as i64 + 1);
        let fetched = fetch_from(storage.as_ref(), SERVER, &[&queue], CHAINS, now).await;
        assert_eq!(fetched.len(), CHAINS, "every parent is running");
        let kinds: Vec<(ContinueOn, bool)> = (0..CHAINS)
            .map(|i| match i % 3 {
                0 => (ContinueOn::Failed, false),
                1 => (ContinueOn::Succeeded, true),
                _ => (ContinueOn::Succeeded, false),
            })
            .collect();
        let children = enqueue(
            storage.as_ref(),
            parents
                .iter()
                .zip(&kinds)
                .map(|(parent, (on, _))| child("c", *parent, *on))
                .collect(),
        )
        .await;
        let start = Arc::new(tokio::sync::Barrier::new(2 * CHAINS));
        let mut tasks = Vec::new();
        for i in 0..CHAINS {
            let (parent, kid, delete) = (parents[i], children[i], kinds[i].1);
            let (adder, finisher) = (storage.clone(), storage.clone());
            let (adder_start, finisher_start) = (start.clone(), start.clone());
            let add = tokio::spawn(async move {
                adder_start.wait().await;
                adder
                    .enqueue(vec![child("g", kid, ContinueOn::Succeeded)], now)
                    .await
                    .expect("enqueue a grandchild")[0]
            });
            let finish = tokio::spawn(async move {
                finisher_start.wait().await;
                if delete {
                    finisher
                        .delete(parent, "deleted by a user", now)
                        .await
                        .expect("delete");
                } else {
                    complete(finisher.as_ref(), parent, SERVER, now, succeeded(None)).await;
                }
            });
            tasks.push((add, finish));
        }
        let mut grandchildren = Vec::new();
        for (add, finish) in tasks {
            grandchildren.push(add.await.expect("adder task"));
            finish.await.expect("finisher task");
        }
        let mut stuck = Vec::new();
        for i in 0..CHAINS {
            let kid = state(storage.as_ref(), children[i]).await;
            let grandchild = state(storage.as_ref(), grandchildren[i]).await;
            let expected_kid = match kinds[i] {
                (ContinueOn::Succeeded, false) => JobState::Enqueued,
                _ => JobState::Deleted,
            };
            assert_eq!(kid, expected_kid, "chain {i} of round {round}");
            let expected = match kid {
                JobState::Deleted => JobState::Deleted,
                _ => JobState::Awaiting,
            };
            if grandchild != expected {
                stuck.push((i, kid, grandchild));
            }
        }
        assert!(
            stuck.is_empty(),
            "round {round}: grandchildren in the wrong state (chain, child, grandchild): {stuck:?}"
        );
    }
}

/// Requeuing a deleted parent re-arms the continuations its deletion deleted.
pub async fn requeued_parent_rearms_deleted_children(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let parent = enqueue(storage, vec![job("parent", "default")]).await[0];
    let first = enqueue(storage, vec![child("first", parent, ContinueOn::Succeeded)]).await[0];
    let second = enqueue(storage, vec![child("second", first, ContinueOn::Succeeded)]).await[0];
    let user_deleted = enqueue(
        storage,
        vec![child("user-deleted", parent, ContinueOn::Succeeded)],
    )
    .await[0];
    storage
        .delete(user_deleted, "deleted by a user", at(1))
        .await
        .expect("delete");
    storage
        .delete(parent, "deleted by a user", at(2))
        .await
        .expect("delete");
    assert_eq!(state(storage, second).await, JobState::Deleted);
    storage
        .requeue(parent, "requeued by a user", at(3))
        .await
        .expect("requeue");
    assert_eq!(state(storage, first).await, JobState::Awaiting);
    assert_eq!(state(storage, second).await, JobState::Awaiting);
    assert_eq!(
        state(storage, user_deleted).await,
        JobState::Deleted,
        "a user's delete stands"
    );
}

fn recurring(id: &str, next: Option<DateTime<Utc>>) -> RecurringJob {
    RecurringJob {
        id: id.to_owned(),
        cron: "0 * * * *".to_owned(),
        time_zone: "UTC".to_owned(),
        job_name: "report".to_owned(),
        queue: "default".to_owned(),
        args: "{}".to_owned(),
        misfire: Misfire::FireOnce,
        skip_if_running: false,
        paused: false,
        next_run: next,
        last_run: None,
        last_job_id: None,
        last_job_state: None,
        last_error: None,
        created_at: t0(),
    }
}

/// Recurring jobs are upserted by id (keeping their creation time), listed, paused, removed.
pub async fn recurring_upsert_list_pause_remove(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    storage
        .upsert_recurring(recurring("b", Some(at(3600))))
        .await
        .expect("upsert");
    storage
        .upsert_recurring(recurring("a", Some(at(3600))))
        .await
        .expect("upsert");
    let updated = RecurringJob {
        cron: "*/5 * * * *".into(),
        created_at: at(999),
        next_run: Some(at(300)),
        ..recurring("a", None)
    };
    storage
        .upsert_recurring(updated)
        .await
        .expect("upsert again");
    let listed = storage.list_recurring().await.expect("list");
    assert_eq!(
        listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["a", "b"]
    );
    let a = storage
        .recurring("a")
        .await
        .expect("get")
        .expect("a exists");
    assert_eq!(
        (a.cron.as_str(), a.created_at, a.next_run),
        ("*/5 * * * *", t0(), Some(at(300)))
    );
    assert_eq!(
        storage.due_recurring(at(300), 10).await.expect("due").len(),
        1
    );
    assert!(storage
        .set_recurring_paused("a", true)
        .await
        .expect("pause"));
    assert!(
        storage
            .due_recurring(at(300), 10)
            .await
            .expect("due")
            .is_empty(),
        "paused jobs are not due"
    );
    assert!(storage
        .set_recurring_paused("a", false)
        .await
        .expect("resume"));
    assert!(!storage
        .set_recurring_paused("missing", true)
        .await
        .expect("pause missing"));
    assert!(storage.remove_recurring("a").await.expect("remove"));
    assert!(!storage.remove_recurring("a").await.expect("remove again"));
    assert!(storage.recurring("a").await.expect("get").is_none());
}

/// Of many servers claiming one occurrence at once, exactly one creates its job.
pub async fn recurring_claim_is_atomic(storage: Arc<dyn Storage>) {
    storage
        .upsert_recurring(recurring("hourly", Some(at(3600))))
        .await
        .expect("upsert");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let storage = storage.clone();
        tasks.push(tokio::spawn(async move {
            let claim = RecurringClaim {
                id: "hourly".into(),
                expected_next: Some(at(3600)),
                next_run: Some(at(7200)),
                job: Some(NewJob {
                    recurring: Some(RecurringOrigin {
                        id: "hourly".into(),
                        occurrence: at(3600),
                    }),
                    ..job("report", "default")
                }),
                note: None,
                now: at(3600),
            };
            storage.claim_recurring(claim).await.expect("claim")
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        if let Some(job) = task.await.expect("claim task") {
            created.push(job);
        }
    }
    assert_eq!(created.len(), 1, "exactly one claim wins");
    let id = created[0].expect("the winner created a job");
    let record = record(storage.as_ref(), id).await;
    assert_eq!(
        (record.state, record.recurring_id.as_deref()),
        (JobState::Enqueued, Some("hourly"))
    );
    let first = &record.history[0];
    assert_eq!(
        first.reason.as_deref(),
        Some("fired by recurring job `hourly`")
    );
    assert_eq!(first.data.occurrence, Some(at(3600)));
    let after = storage
        .recurring("hourly")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (after.next_run, after.last_run, after.last_job_id),
        (Some(at(7200)), Some(at(3600)), Some(id))
    );
    assert_eq!(after.last_job_state, Some(JobState::Enqueued));
    // A skipped firing moves next_run and records why, creating nothing.
    let skip = RecurringClaim {
        id: "hourly".into(),
        expected_next: Some(at(7200)),
        next_run: Some(at(10800)),
        job: None,
        note: Some("skipped: previous run still in flight".into()),
        now: at(7200),
    };
    assert_eq!(
        storage.claim_recurring(skip).await.expect("skip"),
        Some(None)
    );
    let after = storage
        .recurring("hourly")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (after.next_run, after.last_job_id),
        (Some(at(10800)), Some(id))
    );
    assert_eq!(
        after.last_error.as_deref(),
        Some("skipped: previous run still in flight")
    );
    let stale = RecurringClaim {
        id: "hourly".into(),
        expected_next: Some(at(3600)),
        next_run: Some(at(7200)),
        job: None,
        note: None,
        now: at(7300),
    };
    assert_eq!(
        storage.claim_recurring(stale).await.expect("stale claim"),
        None
    );
}

/// Counts per state and queue; listing filters, searches and pages.
pub async fn counts_and_listing(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let mut jobs = vec![
        job("send_email", "default"),
        job("send_email", "default"),
        job("charge", "critical"),
    ];
    jobs[1].args = r#"{"to":"ada@example.com"}"#.into();
    jobs.push(NewJob {
        initial: InitialState::Scheduled { at: at(100) },
        ..job("later", "default")
    });
    let created = enqueue(storage, jobs).await;
    fetch_from(storage, SERVER, &["critical"], 1, at(1)).await;
    complete(
        storage,
        created[2],
        SERVER,
        at(2),
        Outcome::Retry {
            run_at: at(50),
            reason: "Retry attempt 1 of 10: boom".into(),
            data: error_data(),
        },
    )
    .await;
    let counts = storage.counts().await.expect("counts");
    assert_eq!(counts.get(JobState::Enqueued), 2);
    assert_eq!(counts.get(JobState::Scheduled), 2);
    assert_eq!(counts.retries, 1);
    assert_eq!(counts.enqueued_by_queue.get("default"), Some(&2));
    assert_eq!(counts.enqueued_by_queue.get("critical"), None);
    let by_name = storage
        .list_jobs(JobQuery {
            name_contains: Some("EMAIL".into()),
            ..JobQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(by_name.total, 2);
    let by_args = storage
        .list_jobs(JobQuery {
            args_contains: Some("ada@".into()),
            ..JobQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(
        by_args.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![created[1]]
    );
    let retries = storage
        .list_jobs(JobQuery {
            state: Some(JobState::Scheduled),
            retries_only: true,
            ..JobQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(
        retries.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![created[2]]
    );
    let page1 = storage
        .list_jobs(JobQuery {
            limit: 3,
            ..JobQuery::default()
        })
        .await
        .expect("list");
    let page2 = storage
        .list_jobs(JobQuery {
            limit: 3,
            offset: 3,
            ..JobQuery::default()
        })
        .await
        .expect("list");
    assert_eq!((page1.total, page1.jobs.len(), page2.jobs.len()), (4, 3, 1));
    let first_page_ids: HashSet<_> = page1.jobs.iter().map(|j| j.id).collect();
    assert!(
        !first_page_ids.contains(&page2.jobs[0].id),
        "pages do not overlap"
    );
    assert_eq!(page1.jobs[0].id, created[2], "newest state change first");
    let queue = storage
        .list_jobs(JobQuery {
            state: Some(JobState::Enqueued),
            queue: Some("default".into()),
            ..JobQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(queue.total, 2);
}

async fn listed(storage: &dyn Storage, query: JobQuery) -> Vec<JobId> {
    let page = storage.list_jobs(query).await.expect("list");
    page.jobs.iter().map(|job| job.id).collect()
}

/// Scheduled jobs, retries included, are listed soonest run first, whenever they were
/// scheduled; other lists keep the newest state change first.
pub async fn scheduled_jobs_list_soonest_first(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    // Scheduled one after the other, to run in another order.
    let mut delayed = Vec::new();
    for (i, (name, run_at)) in [("c", 300), ("a", 100), ("b", 200)].into_iter().enumerate() {
        let scheduled = NewJob {
            initial: InitialState::Scheduled { at: at(run_at) },
            ..job(name, "default")
        };
        let seconds = i64::try_from(i).expect("small");
        delayed.extend(
            storage
                .enqueue(vec![scheduled], at(seconds))
                .await
                .expect("schedule"),
        );
    }
    let [c, a, b] = delayed[..] else {
        panic!("three jobs scheduled, got {delayed:?}");
    };
    // Two retries: the one that failed later runs sooner.
    let failing = enqueue(storage, vec![job("r1", "retry"), job("r2", "retry")]).await;
    fetch_from(storage, SERVER, &["retry"], 2, at(10)).await;
    for (id, failed_at, run_at) in [(failing[0], 11, 250), (failing[1], 12, 150)] {
        let retry = Outcome::Retry {
            run_at: at(run_at),
            reason: "Retry attempt 1 of 10: boom".into(),
            data: error_data(),
        };
        complete(storage, id, SERVER, at(failed_at), retry).await;
    }
    let (r1, r2) = (failing[0], failing[1]);
    let scheduled = JobQuery {
        state: Some(JobState::Scheduled),
        ..JobQuery::default()
    };
    assert_eq!(
        listed(storage, scheduled.clone()).await,
        vec![a, r2, b, r1, c]
    );
    let second_page = JobQuery {
        offset: 2,
        limit: 2,
        ..scheduled
    };
    assert_eq!(listed(storage, second_page).await, vec![b, r1]);
    let retries = JobQuery {
        state: Some(JobState::Scheduled),
        retries_only: true,
        ..JobQuery::default()
    };
    assert_eq!(listed(storage, retries).await, vec![r2, r1]);
    assert_eq!(
        listed(storage, JobQuery::default()).await,
        vec![r2, r1, b, a, c],
        "every job: newest state change first"
    );
}

/// Succeeded jobs and failed attempts are counted per hour.
pub async fn statistics_per_hour(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let created = enqueue(
        storage,
        vec![
            job("a", "default"),
            job("b", "default"),
            job("c", "default"),
        ],
    )
    .await;
    fetch(storage, 3).await;
    complete(storage, created[0], SERVER, at(10), succeeded(None)).await;
    complete(storage, created[1], SERVER, at(3700), succeeded(None)).await;
    complete(
        storage,
        created[2],
        SERVER,
        at(3700),
        Outcome::Failed {
            reason: "x".into(),
            data: error_data(),
        },
    )
    .await;
    let points = storage
        .statistics(Granularity::Hour, t0(), at(3 * 3600))
        .await
        .expect("statistics");
    let summary: Vec<_> = points
        .iter()
        .map(|p| (p.at, p.succeeded, p.failed))
        .collect();
    assert_eq!(
        summary,
        vec![(t0(), 1, 0), (at(3600), 1, 1), (at(7200), 0, 0)]
    );
    let days = storage
        .statistics(Granularity::Day, t0(), at(3600))
        .await
        .expect("statistics");
    assert_eq!(
        days.iter()
            .map(|p| (p.succeeded, p.failed))
            .collect::<Vec<_>>(),
        vec![(2, 1)]
    );
}
