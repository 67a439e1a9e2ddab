//! The completer: persists the outcomes of finished attempts, batching them under load.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};

use super::Shared;
use crate::storage::Completion;

/// Longest wait between attempts to persist a batch after storage errors.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(crate) async fn run(shared: Arc<Shared>, mut receiver: mpsc::UnboundedReceiver<Completion>) {
    let limit = shared.config.completion_batch;
    // Several batches in flight at once: each is one transaction, and commits overlap.
    let in_flight = Arc::new(Semaphore::new(shared.config.completion_concurrency));
    loop {
        // Wait for a free slot first: completions pile up meanwhile and make a larger batch.
        let Ok(slot) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(limit.min(64));
        let stopping = tokio::select! {
            received = receiver.recv() => match received {
                Some(completion) => {
                    batch.push(completion);
                    false
                }
                None => true,
            },
            () = shared.stop_background.cancelled() => true,
        };
        while batch.len() < limit {
            match receiver.try_recv() {
                Ok(completion) => batch.push(completion),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            drop(slot);
        } else {
            let shared = shared.clone();
            tokio::spawn(async move {
                persist(&shared, &mut batch, stopping).await;
                drop(slot);
            });
        }
        if stopping && receiver.is_empty() {
            // Wait for the batches still in flight.
            let slots = u32::try_from(shared.config.completion_concurrency).unwrap_or(u32::MAX);
            let _ = in_flight.acquire_many(slots).await;
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
        match shared.storage.complete(batch.clone()).await {
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
