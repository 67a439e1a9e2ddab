//! The completer: persists the outcomes of finished attempts, batching them under load.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::Shared;
use crate::storage::Completion;

/// Longest wait between attempts to persist a batch after storage errors.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A finished attempt on its way to the storage, with its slot among the outcomes not yet
/// stored: the slot is given back once the outcome is stored, so a slow storage slows the
/// finishing jobs, and through their claims the fetching, instead of piling up Processing jobs.
pub(crate) type Finished = (Completion, Option<OwnedSemaphorePermit>);

pub(crate) async fn run(shared: Arc<Shared>, mut receiver: mpsc::UnboundedReceiver<Finished>) {
    let limit = shared.config.completion_batch;
    let mut batch = Vec::new();
    let mut slots = Vec::new();
    loop {
        // One batch in flight at a time: outcomes that finish meanwhile make the next batch
        // larger (several concurrent batches measured slower: smaller batches, more commits).
        let stopping = tokio::select! {
            received = receiver.recv() => match received {
                Some((completion, slot)) => {
                    batch.push(completion);
                    slots.extend(slot);
                    false
                }
                None => true,
            },
            () = shared.stop_background.cancelled() => true,
        };
        while batch.len() < limit {
            match receiver.try_recv() {
                Ok((completion, slot)) => {
                    batch.push(completion);
                    slots.extend(slot);
                }
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            persist(&shared, &mut batch, stopping).await;
        }
        slots.clear();
        if stopping && receiver.is_empty() {
            return;
        }
    }
}

/// Persists a batch, retrying on storage errors. While stopping, gives up after the shutdown
/// timeout: the jobs stay Processing and their leases lapse, so nothing is lost.
async fn persist(shared: &Shared, batch: &mut Vec<Completion>, stopping: bool) {
    let mut backoff = Duration::from_millis(100);
    let deadline = tokio::time::Instant::now() + shared.config.shutdown_timeout;
    loop {
        match shared.storage.complete(batch).await {
            Ok(()) => {
                batch.clear();
                return;
            }
            Err(error) => {
                let giving_up = (stopping || shared.stop_background.is_cancelled())
                    && tokio::time::Instant::now() >= deadline;
                if giving_up {
                    tracing::error!(
                        %error,
                        jobs = batch.len(),
                        "could not record job outcomes before shutdown; their leases will lapse and they will run again"
                    );
                    batch.clear();
                    return;
                }
                tracing::warn!(%error, jobs = batch.len(), retry_in = ?backoff, "recording job outcomes failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
