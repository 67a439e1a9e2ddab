//! The workers: a fixed set of tasks, one per worker slot. Each takes the next claimed job the
//! producer hands over, runs it, and passes its outcome on to the completer; a job handed over
//! after the server began to stop is put back instead, untouched.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::claims::Claim;
use super::completer::Outbox;
use super::{executor, Shared};
use crate::storage::FetchedJob;

/// A job claimed by the producer, on its way to a worker.
pub(crate) struct Claimed {
    pub(crate) job: FetchedJob,
    /// Cancels this execution (shutdown, or the job deleted while it runs).
    pub(crate) token: CancellationToken,
    /// Its place among the jobs fetched and not finished, given back by the completer.
    pub(crate) claim: Option<Claim>,
}

/// Starts `shared.config.workers` workers taking jobs from `jobs`. They end when the producer
/// has dropped its sender and every job handed over is done (run, or put back).
pub(crate) fn start(
    shared: &Arc<Shared>,
    tracker: &TaskTracker,
    jobs: async_channel::Receiver<Claimed>,
    outbox: Arc<Outbox>,
) {
    for _ in 0..shared.config.workers {
        tracker.spawn(run(shared.clone(), jobs.clone(), outbox.clone()));
    }
}

async fn run(shared: Arc<Shared>, jobs: async_channel::Receiver<Claimed>, outbox: Arc<Outbox>) {
    let local = executor::Local::new(&shared);
    while let Ok(Claimed { job, token, claim }) = jobs.recv().await {
        let completion = if shared.stop_fetching.is_cancelled() {
            // Buffered and not started when the server began to stop: back to its place.
            executor::unstarted(&shared, &local, &job)
        } else {
            executor::execute(&shared, &local, job, token).await
        };
        // The completer takes the job off the running ones and gives its claim back. After
        // an abandoned shutdown nobody stores it: the job's lease lapses and it runs again.
        outbox.push(completion, claim);
    }
}
