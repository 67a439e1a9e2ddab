//! The data of every kind of history entry, as each storage records it and reads it back. A
//! storage that builds an entry's data itself (PostgreSQL builds some in SQL) must produce the
//! fields [`StateData`] reads: a renamed field reads back as nothing and fails here.

use std::sync::Arc;

use crate::job::{JobId, JobState};
use crate::storage::*;

use super::{at, child, complete, enqueue, fetch, job, record, succeeded, SERVER};

/// The entries of `id` in `state`, in order.
async fn entries(storage: &dyn Storage, id: JobId, state: JobState) -> Vec<HistoryEntry> {
    record(storage, id)
        .await
        .history
        .into_iter()
        .filter(|entry| entry.state == state)
        .collect()
}

/// Enqueued entries name their queue (and a released continuation its parent); Processing
/// entries their server and attempt; a Succeeded entry its result; a requeued job's Enqueued
/// entry its queue; a re-armed continuation's Awaiting entry its parent.
pub async fn history_entries_carry_their_data(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let parent = enqueue(storage, vec![job("parent", "default")]).await[0];
    let kids = enqueue(
        storage,
        vec![
            child("released", parent, ContinueOn::Succeeded),
            child("not-met", parent, ContinueOn::Failed),
        ],
    )
    .await;
    let first = entries(storage, parent, JobState::Enqueued).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].data.queue.as_deref(), Some("default"), "{first:?}");
    assert_eq!(
        entries(storage, kids[0], JobState::Awaiting).await[0]
            .data
            .parent,
        Some(parent)
    );

    // A running attempt, then its success.
    fetch(storage, 1).await;
    let running = entries(storage, parent, JobState::Processing).await;
    assert_eq!(running.len(), 1);
    assert_eq!(
        running[0].data.server.as_deref(),
        Some(SERVER),
        "{running:?}"
    );
    assert_eq!(running[0].data.attempt, Some(1), "{running:?}");
    complete(
        storage,
        parent,
        SERVER,
        at(2),
        succeeded(Some(serde_json::json!({"sent": 3}))),
    )
    .await;
    let done = entries(storage, parent, JobState::Succeeded).await;
    assert_eq!(done[0].data.result, Some(serde_json::json!({"sent": 3})));
    let attempt = entries(storage, parent, JobState::Processing).await;
    assert_eq!(
        attempt[0].data.server.as_deref(),
        Some(SERVER),
        "{attempt:?}"
    );
    assert_eq!(attempt[0].data.attempt, Some(1), "{attempt:?}");

    // The released continuation's entry names its queue and parent.
    let released = entries(storage, kids[0], JobState::Enqueued).await;
    assert_eq!(
        released[0].data.queue.as_deref(),
        Some("default"),
        "{released:?}"
    );
    assert_eq!(released[0].data.parent, Some(parent), "{released:?}");

    // Requeued: the success is kept in the history (with its attempt), the new entry names
    // the queue, and the deleted continuation is re-armed under its parent.
    assert!(storage
        .requeue(parent, "requeued by a user", at(3))
        .await
        .expect("requeue"));
    let history = record(storage, parent).await.history;
    let requeued = history.last().expect("an entry");
    assert_eq!(requeued.state, JobState::Enqueued);
    assert_eq!(
        requeued.data.queue.as_deref(),
        Some("default"),
        "{requeued:?}"
    );
    let kept = entries(storage, parent, JobState::Succeeded).await;
    assert_eq!(kept[0].data.result, Some(serde_json::json!({"sent": 3})));
    let kept_attempt = entries(storage, parent, JobState::Processing).await;
    assert_eq!(kept_attempt[0].data.attempt, Some(1), "{kept_attempt:?}");
    let rearmed = entries(storage, kids[1], JobState::Awaiting).await;
    assert_eq!(rearmed.last().and_then(|e| e.data.parent), Some(parent));
}
