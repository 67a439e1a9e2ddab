//! The completer: persists the outcomes of finished attempts in batches, one batch in flight at
//! a time, and gives the finished jobs' claims back to the producer.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::claims::{give_back, merge, Claim};
use super::health::{Backoff, MAX_BACKOFF};
use super::Shared;
use crate::storage::Completion;

/// Outcomes on their way from the workers to the completer, with their jobs' claims: a worker
/// adds one under a short lock, the completer takes them all at once. Not a channel: an
/// outcome is large, and a channel copies each one in and out on the hottest path.
#[derive(Default)]
pub(crate) struct Outbox {
    inbox: Mutex<Inbox>,
    ready: Notify,
}

#[derive(Default)]
struct Inbox {
    completions: Vec<Completion>,
    /// The claims of the jobs whose outcomes are in `completions`, as one permit.
    claims: Option<Claim>,
}

impl Outbox {
    /// Adds a finished attempt and its job's claim (none for a job the storage returned
    /// beyond what was asked).
    pub(crate) fn push(&self, completion: Completion, claim: Option<Claim>) {
        let mut inbox = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
        let first = inbox.completions.is_empty();
        inbox.completions.push(completion);
        merge(&mut inbox.claims, claim);
        drop(inbox);
        if first {
            self.ready.notify_one();
        }
    }

    /// Takes every outcome waiting (into `into`, which must be empty) and their claims.
    fn take(&self, into: &mut Vec<Completion>) -> Option<Claim> {
        let mut inbox = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut inbox.completions, into);
        inbox.claims.take()
    }

    fn is_empty(&self) -> bool {
        let inbox = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
        inbox.completions.is_empty()
    }
}

/// A batch being stored; it hands the emptied batch back.
type Storing = Pin<Box<dyn Future<Output = Vec<Completion>> + Send>>;

pub(crate) async fn run(shared: Arc<Shared>, outbox: Arc<Outbox>) {
    let limit = shared.config.completion_batch;
    // Outcomes not yet stored whose claims are given back at once, so fetching goes on while
    // a batch is stored (room for only the claims' worth stalls fetching behind every batch).
    // Beyond it, a slow storage keeps the finished jobs' claims, and through them slows the
    // fetching, instead of piling up outcomes.
    let room = shared.config.claims().max(limit);
    // Received and not yet being stored; the outcomes just taken; and the emptied last
    // batch, whose room the next one takes.
    let mut waiting: Vec<Completion> = Vec::new();
    let mut taken: Vec<Completion> = Vec::new();
    let mut spare: Vec<Completion> = Vec::new();
    let mut storing: Option<Storing> = None;
    let mut in_flight = 0;
    // Claims kept back while the storage lags.
    let mut held: Option<Claim> = None;
    let mut stopping = false;
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
        if storing.is_none() && stopping && outbox.is_empty() {
            return;
        }
        // The branches' futures are dropped before a branch's code runs.
        tokio::select! {
            biased;
            batch = stored(&mut storing) => {
                storing = None;
                in_flight = 0;
                spare = batch;
                give_back(&mut held, room.saturating_sub(waiting.len()));
            }
            () = outbox.ready.notified() => {
                let claims = outbox.take(&mut taken);
                // Off the running jobs in one lock, and their claims back in one step, as
                // far as the outcomes waiting to be stored leave room.
                let mut running = shared.running();
                for completion in &taken {
                    running.remove(&completion.id);
                }
                drop(running);
                merge(&mut held, claims);
                give_back(&mut held, room.saturating_sub(waiting.len() + in_flight));
                if waiting.is_empty() {
                    std::mem::swap(&mut waiting, &mut taken);
                } else {
                    waiting.append(&mut taken);
                }
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
    let mut backoff = Backoff::new(Duration::from_millis(100), MAX_BACKOFF);
    let deadline = tokio::time::Instant::now() + shared.config.shutdown_timeout;
    loop {
        match shared.storage.complete(&batch).await {
            Ok(()) => {
                shared.health.succeeded();
                // Slots of flow-controlled queues, kinds and mutexes are free now.
                shared.flow.completed();
                break;
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
                    break;
                }
                shared.health.failed("complete", &error);
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
    batch.clear();
    batch
}
