//! Pruning: finished jobs are removed after the retention.

use std::sync::Arc;

use crate::job::JobState;
use crate::storage::*;

use super::{at, complete, enqueue, error_data, fetch, job, state, succeeded, SERVER};

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
