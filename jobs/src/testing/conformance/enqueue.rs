//! Enqueueing and reading jobs: queue order and names, reads by id, a user's delete and requeue.

use std::collections::HashSet;
use std::sync::Arc;

use crate::error::Error;
use crate::job::{JobId, JobState};
use crate::storage::*;

use super::{
    at, complete, enqueue, fetch, fetch_from, ids, job, record, states, succeeded, t0, SERVER,
};

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

/// Within a queue a lower priority goes first, FIFO among equals; the queues keep the order
/// given across each other; a job keeps its priority when it goes back to its queue.
pub async fn fetch_follows_job_priority_within_a_queue(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let with = |name: &str, queue: &str, priority: u8| NewJob {
        priority,
        ..job(name, queue)
    };
    let created = enqueue(
        storage,
        vec![
            with("a", "high", 1),
            with("b", "high", 0),
            with("c", "high", 1),
            with("d", "high", 0),
            with("e", "low", 0),
            with("f", "high", 200),
        ],
    )
    .await;
    let [a, b, c, d, e, f] = created[..] else {
        panic!("six ids: {created:?}");
    };
    assert_eq!(record(storage, b).await.priority, 0);
    assert_eq!(record(storage, f).await.priority, 200);
    let fetched = fetch_from(storage, SERVER, &["high", "low"], 2, at(1)).await;
    assert_eq!(ids(&fetched), vec![b, d]);
    // `b` back to its queue by hand: at the tail of its priority, still ahead of `a`.
    assert!(storage.requeue(b, "again", at(2)).await.expect("requeue"));
    let fetched = fetch_from(storage, SERVER, &["high", "low"], 10, at(3)).await;
    assert_eq!(ids(&fetched), vec![b, a, c, f, e]);
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
