//! The producer: claims as many jobs as there are free slots (free workers plus a small local
//! buffer, so a fetch round trip is not paid per finished job) and hands them to the workers.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::health::{Backoff, MAX_BACKOFF};
use super::worker::Claimed;
use super::Shared;
use crate::clock;
use crate::storage::FetchRequest;

/// Longest wait for half the slots to free up before fetching, while the queue is busy.
const BATCH_WAIT: Duration = Duration::from_millis(2);

/// Claims jobs while `claims` (the jobs fetched and not finished: workers plus buffer) has
/// room, and sends them to the workers. Dropping `workers` when it returns tells the workers
/// that no more jobs come.
pub(crate) async fn run(
    shared: Arc<Shared>,
    claims: Arc<Semaphore>,
    workers: async_channel::Sender<Claimed>,
) {
    let capacity = shared.config.claims();
    // Whether the last fetch took all it asked for (more jobs are probably waiting).
    let mut busy = false;
    let mut backoff = Backoff::new(Duration::from_millis(100), MAX_BACKOFF);
    loop {
        if !shared.health.is_available() {
            // The leases of what it fetches could not be renewed: wait for the storage to
            // answer again (the heartbeat and lease loops keep asking, with backoff).
            tokio::select! {
                biased;
                () = shared.stop_fetching.cancelled() => return,
                () = shared.health.available() => {}
            }
        }
        let first = tokio::select! {
            biased;
            () = shared.stop_fetching.cancelled() => return,
            permit = claims.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        // One permit holding all the claims of this round: taken and given back in one
        // step each, split off one claim per fetched job.
        let mut permits = first;
        take_free(&claims, &mut permits);
        if busy && permits.num_permits() < capacity / 2 {
            // The queue had more than the last fetch took: let a batch of slots free up (a
            // short wait, one wake-up) rather than paying a round trip for a few jobs.
            let missing = capacity / 2 - permits.num_permits();
            let wait = claims
                .clone()
                .acquire_many_owned(u32::try_from(missing).unwrap_or(u32::MAX));
            match tokio::time::timeout(BATCH_WAIT, wait).await {
                Ok(Ok(more)) => permits.merge(more),
                // Waited long enough (a timed-out wait gives back what it had): take what
                // is free now.
                _ => take_free(&claims, &mut permits),
            }
        }
        let now = shared.clock.now();
        let request = FetchRequest {
            server_id: &shared.server_id,
            queues: &shared.config.queues,
            limit: permits.num_permits(),
            now,
            lease_until: clock::add(now, shared.config.lease),
        };
        // A fetch is never interrupted: the jobs it claims must run (or their leases lapse).
        let fetched = match shared.storage.fetch(request).await {
            Ok(fetched) => {
                backoff.reset();
                shared.health.succeeded();
                fetched
            }
            Err(error) => {
                shared.health.failed("fetch", &error);
                drop(permits);
                tokio::select! {
                    () = shared.stop_fetching.cancelled() => return,
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                }
                continue;
            }
        };
        let idle = fetched.is_empty();
        busy = fetched.len() == permits.num_permits();
        {
            let mut running = shared.running();
            for job in fetched {
                let claim = permits.split(1);
                if claim.is_none() {
                    // The storage returned more than asked; run them anyway.
                    tracing::warn!(id = %job.id, "storage returned more jobs than requested");
                }
                // Not a child of `cancel_jobs`: a child token locks its parent when made and
                // dropped. Shutdown cancels the running jobs' tokens one by one instead.
                let token = CancellationToken::new();
                running.insert(job.id, token.clone());
                // Fails only when no worker is left (each ends only after this sender is dropped,
                // or by a panic outside a job): the job's lease then lapses and it runs again.
                if let Err(error) = workers.try_send(Claimed { job, token, claim }) {
                    let id = error.into_inner().job.id;
                    tracing::error!(%id, "no worker left to run a claimed job");
                }
            }
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

/// Adds every claim free right now to `permits`.
fn take_free(claims: &Arc<Semaphore>, permits: &mut OwnedSemaphorePermit) {
    let free = u32::try_from(claims.available_permits()).unwrap_or(u32::MAX);
    if free > 0 {
        if let Ok(more) = claims.clone().try_acquire_many_owned(free) {
            permits.merge(more);
        }
    }
}
