//! The completer: persists the outcomes of finished attempts in batches, one batch in flight at
//! a time, and gives the finished jobs' claims back to the producer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::Shared;
use crate::job::JobId;
use crate::storage::Completion;

/// Longest wait between attempts to persist a batch after storage errors.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A finished attempt on its way to the storage, with its job's claim (none for a job the
/// storage returned beyond what was asked).
pub(crate) type Finished = (Completion, Option<OwnedSemaphorePermit>);

/// A batch being stored; it hands the emptied batch back.
type Storing = Pin<Box<dyn Future<Output = Vec<Completion>> + Send>>;

pub(crate) async fn run(shared: Arc<Shared>, mut receiver: mpsc::UnboundedReceiver<Finished>) {
    let limit = shared.config.completion_batch;
    // Outcomes not yet stored whose claims are given back at once, so fetching goes on while
    // a batch is stored (with only the claims' worth, fetching stalled behind each batch:
    // process benchmark 14.9k → 17.5k jobs/s). Beyond it, a slow storage keeps the finished
    // jobs' claims, and through them slows the fetching, instead of piling up outcomes.
    let room = shared.config.claims().max(limit);
    // Received and not yet being stored; and the emptied last batch, whose room the next one
    // takes (two buffers, no growing and freeing of a batch-sized one per batch).
    let mut waiting: Vec<Completion> = Vec::new();
    let mut spare: Vec<Completion> = Vec::new();
    let mut storing: Option<Storing> = None;
    let mut in_flight = 0;
    // Claims kept back while the storage lags.
    let mut held: Option<OwnedSemaphorePermit> = None;
    let mut finished: Vec<JobId> = Vec::new();
    let mut stopping = false;
    let mut closed = false;
    loop {
        // One batch in flight at a time: outcomes that finish meanwhile make the next batch
        // larger (several concurrent batches measured slower: smaller batches, more commits).
        if storing.is_none() && !waiting.is_empty() {
            let batch = if waiting.len() > limit {
                let rest = waiting.split_off(limit);
                std::mem::replace(&mut waiting, rest)
            } else {
                std::mem::replace(&mut waiting, std::mem::take(&mut spare))
            };
            in_flight = batch.len();
            storing = Some(Box::pin(persist(shared.clone(), batch, stopping)));
        }
        let drained = closed || (stopping && receiver.is_empty());
        if storing.is_none() && drained {
            return;
        }
        // The branches' futures are dropped before a branch's code runs.
        tokio::select! {
            biased;
            batch = stored(&mut storing) => {
                storing = None;
                in_flight = 0;
                spare = batch;
                let unstored = waiting.len();
                if let Some(permit) = held.as_mut() {
                    let free = room.saturating_sub(unstored).min(permit.num_permits());
                    drop(permit.split(free));
                    if permit.num_permits() == 0 {
                        held = None;
                    }
                }
            }
            received = receiver.recv(), if !closed => {
                let Some(first) = received else {
                    closed = true;
                    continue;
                };
                // Take everything waiting now: one lock of the running jobs and one release of
                // claims for all of them.
                let mut released: Option<OwnedSemaphorePermit> = None;
                let mut next = Some(first);
                while let Some((completion, claim)) = next.take() {
                    finished.push(completion.id);
                    waiting.push(completion);
                    if let Some(claim) = claim {
                        let keep = if waiting.len() + in_flight > room {
                            &mut held
                        } else {
                            &mut released
                        };
                        match keep {
                            Some(permits) => permits.merge(claim),
                            None => *keep = Some(claim),
                        }
                    }
                    if finished.len() < limit {
                        next = receiver.try_recv().ok();
                    }
                }
                let mut running = shared.running();
                for id in finished.drain(..) {
                    running.remove(&id);
                }
                drop(running);
                drop(released);
            }
            () = shared.stop_background.cancelled(), if !stopping => stopping = true,
        }
    }
}

/// Waits for the batch being stored, if any (never, if none).
async fn stored(storing: &mut Option<Storing>) -> Vec<Completion> {
    match storing {
        Some(batch) => batch.await,
        None => std::future::pending().await,
    }
}

/// Persists a batch, retrying on storage errors. While stopping, gives up after the shutdown
/// timeout: the jobs stay Processing and their leases lapse, so nothing is lost.
async fn persist(
    shared: Arc<Shared>,
    mut batch: Vec<Completion>,
    stopping: bool,
) -> Vec<Completion> {
    let mut backoff = Duration::from_millis(100);
    let deadline = tokio::time::Instant::now() + shared.config.shutdown_timeout;
    loop {
        match shared.storage.complete(&batch).await {
            Ok(()) => break,
            Err(error) => {
                let giving_up = (stopping || shared.stop_background.is_cancelled())
                    && tokio::time::Instant::now() >= deadline;
                if giving_up {
                    tracing::error!(
                        %error,
                        jobs = batch.len(),
                        "could not record job outcomes before shutdown; their leases will lapse and they will run again"
                    );
                    break;
                }
                tracing::warn!(%error, jobs = batch.len(), retry_in = ?backoff, "recording job outcomes failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    batch.clear();
    batch
}
