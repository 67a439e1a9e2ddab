//! The producer: claims as many jobs as there are free slots (free workers plus a small local
//! buffer, so a fetch round trip is not paid per finished job) and hands them to the workers.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::claims::Claims;
use super::health::{Backoff, MAX_BACKOFF};
use super::worker::Claimed;
use super::Shared;
use crate::clock;
use crate::storage::FetchRequest;

/// Longest wait for half the slots to free up before fetching, while the queue is busy.
const BATCH_WAIT: Duration = Duration::from_millis(2);

/// Claims jobs while `claims` (see `claims.rs`) has room, and sends them to the workers.
/// Dropping `workers` when it returns tells the workers that no more jobs come.
pub(crate) async fn run(
    shared: Arc<Shared>,
    claims: Claims,
    workers: async_channel::Sender<Claimed>,
) {
    let capacity = claims.capacity();
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
        let permits = tokio::select! {
            biased;
            () = shared.stop_fetching.cancelled() => return,
            claims = claims.take() => claims,
        };
        let Some(mut permits) = permits else {
            return;
        };
        if busy {
            // The queue had more than the last fetch took: let half the claims free up (a
            // short wait, one wake-up) rather than paying a round trip for a few jobs; all of
            // them with flow control, whose fetch costs more than the plain one.
            let wanted = if shared.flow.on() {
                capacity
            } else {
                capacity / 2
            };
            claims.wait_for(&mut permits, wanted, BATCH_WAIT).await;
        }
        // With flow control, a fetch may come back empty because every slot is taken: wait
        // for this server's next completions too (taken before the fetch, so ones recorded
        // while it runs count). A plain fetch's empty answer means an empty queue.
        let flow = shared.flow.on();
        let freed = flow.then(|| shared.flow.completions());
        tokio::pin!(freed);
        if let Some(freed) = freed.as_mut().as_pin_mut() {
            freed.enable();
        }
        let now = shared.clock.now();
        let request = FetchRequest {
            server_id: &shared.server_id,
            queues: &shared.config.queues,
            limit: permits.num_permits(),
            capacity,
            now,
            lease_until: clock::add(now, shared.config.lease),
            flow,
            gated: shared.flow.gated(),
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
                () = async {
                    match freed.as_mut().as_pin_mut() {
                        Some(freed) => freed.await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
    }
}
