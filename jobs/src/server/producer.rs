//! The producer: claims as many jobs as there are free slots (free workers plus a small local
//! buffer, so a fetch round trip is not paid per finished job) and starts a task for each; a
//! task waits for a free worker, or, if the server stops first, puts its job back.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::completer::Finished;
use super::{executor, Shared};
use crate::clock;
use crate::storage::FetchRequest;

/// Longest wait for half the slots to free up before fetching, while the queue is busy.
const BATCH_WAIT: Duration = Duration::from_millis(2);

/// Longest wait between fetch attempts after storage errors.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The producer's limits: `claims` bounds the jobs fetched and not finished (workers plus
/// buffer), `workers` the jobs running.
pub(crate) struct Slots {
    pub(crate) claims: Arc<Semaphore>,
    pub(crate) workers: Arc<Semaphore>,
    /// Bounds the outcomes not yet stored: when the storage lags this far behind, finished
    /// jobs keep their claims and fetching waits.
    pub(crate) outcomes: Arc<Semaphore>,
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    slots: Slots,
    tracker: TaskTracker,
    completions: mpsc::UnboundedSender<Finished>,
) {
    let Slots {
        claims,
        workers,
        outcomes,
    } = slots;
    let capacity = shared.config.claims();
    // Whether the last fetch took all it asked for (more jobs are probably waiting).
    let mut busy = false;
    let mut backoff = Duration::from_millis(100);
    loop {
        let first = tokio::select! {
            biased;
            () = shared.stop_fetching.cancelled() => return,
            permit = claims.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let mut permits: Vec<OwnedSemaphorePermit> = vec![first];
        while let Ok(permit) = claims.clone().try_acquire_owned() {
            permits.push(permit);
        }
        if busy && permits.len() < capacity / 2 {
            // The queue had more than the last fetch took: let a batch of slots free up (a
            // short wait) rather than paying a round trip for a few jobs.
            let deadline = tokio::time::Instant::now() + BATCH_WAIT;
            while permits.len() < capacity / 2 {
                match tokio::time::timeout_at(deadline, claims.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => permits.push(permit),
                    _ => break,
                }
            }
        }
        let now = shared.clock.now();
        let request = FetchRequest {
            server_id: &shared.server_id,
            queues: &shared.config.queues,
            limit: permits.len(),
            now,
            lease_until: clock::add(now, shared.config.lease),
        };
        // A fetch is never interrupted: the jobs it claims must run (or their leases lapse).
        let fetched = match shared.storage.fetch(request).await {
            Ok(fetched) => {
                backoff = Duration::from_millis(100);
                fetched
            }
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "fetching jobs failed");
                drop(permits);
                tokio::select! {
                    () = shared.stop_fetching.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let idle = fetched.is_empty();
        busy = fetched.len() == permits.len();
        for job in fetched {
            let claim = permits.pop();
            if claim.is_none() {
                // The storage returned more than asked; run them anyway.
                tracing::warn!(id = %job.id, "storage returned more jobs than requested");
            }
            spawn(
                &shared,
                &tracker,
                &completions,
                (&workers, &outcomes),
                job,
                claim,
            );
        }
        drop(permits);
        if idle {
            tokio::select! {
                () = shared.stop_fetching.cancelled() => return,
                () = shared.storage.wait_for_work(shared.config.poll_interval) => {}
            }
        }
    }
}

fn spawn(
    shared: &Arc<Shared>,
    tracker: &TaskTracker,
    completions: &mpsc::UnboundedSender<Finished>,
    (workers, outcomes): (&Arc<Semaphore>, &Arc<Semaphore>),
    job: crate::storage::FetchedJob,
    claim: Option<OwnedSemaphorePermit>,
) {
    // Not a child of `cancel_jobs`: a child token locks its parent when made and dropped.
    // Shutdown cancels the running jobs' tokens one by one instead.
    let token = CancellationToken::new();
    shared.running().insert(job.id, token.clone());
    let shared = shared.clone();
    let completions = completions.clone();
    let workers = workers.clone();
    let outcomes = outcomes.clone();
    tracker.spawn(async move {
        let id = job.id;
        let worker = tokio::select! {
            biased;
            () = shared.stop_fetching.cancelled() => None,
            permit = workers.acquire_owned() => permit.ok(),
        };
        let completion = match worker {
            Some(worker) => {
                let completion = executor::execute(&shared, job, token).await;
                drop(worker);
                completion
            }
            None => executor::unstarted(&shared, &job),
        };
        shared.running().remove(&id);
        // The completer outlives every job task, so the send only fails after an abandoned
        // shutdown; the job's lease then lapses and another server runs it.
        let stored_slot = outcomes.acquire_owned().await.ok();
        drop(claim);
        let _ = completions.send((completion, stored_slot));
    });
}
