//! Fetching and completing jobs: claims, leases, outcomes and the history they leave.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::job::{JobId, JobState};
use crate::storage::*;

use super::{
    at, complete, enqueue, error_data, fetch, fetch_from, ids, job, last_reason, record, state,
    states, succeeded, t0, OTHER, SERVER,
};

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
    assert_eq!(last_reason(&record).as_deref(), Some("deleted by a user"));
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
