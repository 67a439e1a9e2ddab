//! The producer: fetches as many jobs as there are free worker slots and starts them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{executor, Shared};
use crate::clock;
use crate::storage::{Completion, FetchRequest};

/// Longest wait between fetch attempts after storage errors.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(crate) async fn run(
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
    completions: mpsc::UnboundedSender<Completion>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let first = tokio::select! {
            biased;
            () = shared.stop_fetching.cancelled() => return,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let mut permits: Vec<OwnedSemaphorePermit> = vec![first];
        while let Ok(permit) = slots.clone().try_acquire_owned() {
            permits.push(permit);
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
        for job in fetched {
            let Some(permit) = permits.pop() else {
                // The storage returned more than asked; run them anyway.
                tracing::warn!(id = %job.id, "storage returned more jobs than requested");
                spawn(&shared, &tracker, &completions, job, None);
                continue;
            };
            spawn(&shared, &tracker, &completions, job, Some(permit));
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
    completions: &mpsc::UnboundedSender<Completion>,
    job: crate::storage::FetchedJob,
    permit: Option<OwnedSemaphorePermit>,
) {
    // Not a child of `cancel_jobs`: a child token locks its parent when made and dropped.
    // Shutdown cancels the running jobs' tokens one by one instead.
    let token = CancellationToken::new();
    shared.running().insert(job.id, token.clone());
    let shared = shared.clone();
    let completions = completions.clone();
    tracker.spawn(async move {
        let id = job.id;
        let completion = executor::execute(&shared, job, token).await;
        shared.running().remove(&id);
        // The completer outlives every job task, so the send only fails after an abandoned
        // shutdown; the job's lease then lapses and another server runs it.
        let _ = completions.send(completion);
        drop(permit);
    });
}
