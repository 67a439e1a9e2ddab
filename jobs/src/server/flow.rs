//! Whether this server fetches with flow control: when a queue it serves is paused or
//! limited, is the queue of a registered job with a mutex or kind limits, or holds Enqueued
//! gated jobs. The job kinds' limits are stored when the server starts; the queues' settings
//! and gated queues are read again every [`REFRESH`], so a pause or a new limit set from any
//! process reaches every server within it. A server that needs none of it fetches by the plain
//! statement.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use crate::error::Result;

/// How often a server reads the queues' stored settings again.
pub(crate) const REFRESH: Duration = Duration::from_secs(1);

/// The server's current choice, and the signal of its own completions.
#[derive(Debug, Default)]
pub(crate) struct FlowSwitch {
    on: AtomicBool,
    gated: AtomicBool,
    completed: tokio::sync::Notify,
}

impl FlowSwitch {
    pub(crate) fn on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Whether the served queues may hold gated jobs (see `FetchRequest::gated`).
    pub(crate) fn gated(&self) -> bool {
        self.gated.load(Ordering::Relaxed)
    }

    /// The completer recorded outcomes: the slots their jobs held are free. Without flow
    /// control no fetch waits for them (a producer that waited while it was on wakes at its
    /// next poll at the latest).
    pub(crate) fn completed(&self) {
        if self.on() {
            self.completed.notify_waiters();
        }
    }

    /// A wait for the next recorded outcomes, taken before a fetch so that none recorded
    /// during the fetch is missed. A flow-controlled fetch that found every slot taken waits
    /// for it as well as for new work: a limit, not an empty queue, may have stopped it, and
    /// this server's own completions free slots without a notification (another server's
    /// are seen at the next poll).
    /// (The caller pins and enables it before fetching.)
    pub(crate) fn completions(&self) -> tokio::sync::futures::Notified<'_> {
        self.completed.notified()
    }
}

/// Stores the limits of the server's jobs and makes the first choice (before any fetch).
pub(crate) async fn start(shared: &Shared) -> Result<()> {
    shared
        .storage
        .register_job_limits(&shared.registry.job_limits())
        .await?;
    refresh(shared).await
}

/// Reads the queues' settings again every [`REFRESH`].
pub(crate) async fn run(shared: Arc<Shared>) {
    super::every(shared, "flow settings read", REFRESH, |shared| async move {
        Some(refresh(&shared).await)
    })
    .await;
}

async fn refresh(shared: &Shared) -> Result<()> {
    let settings = shared.storage.queue_settings().await?;
    let gated = shared.storage.gated_queues().await?;
    let served = |queue: &String| shared.config.queues.contains(queue);
    let gated = gated.iter().any(served) || shared.registry.gated_queues().iter().any(served);
    let on = gated
        || settings
            .iter()
            .any(|settings| settings.restricts() && served(&settings.queue));
    shared.flow.gated.store(gated, Ordering::Relaxed);
    shared.flow.on.store(on, Ordering::Relaxed);
    Ok(())
}
