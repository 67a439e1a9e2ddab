//! The heartbeat: records that the server is alive; and, in a task of its own so that no other
//! call can hold it up, the renewal of the leases of its running jobs, which also cancels the
//! jobs deleted (or requeued) meanwhile.

use std::sync::Arc;

use super::Shared;
use crate::clock;
use crate::error::Result;
use crate::job::JobId;

/// Records the server's heartbeat every heartbeat interval.
pub(crate) async fn run(shared: Arc<Shared>) {
    let interval = shared.config.heartbeat_interval;
    super::every(shared, "server heartbeat", interval, |shared| async move {
        let now = shared.clock.now();
        Some(shared.storage.heartbeat(&shared.server_id, now).await)
    })
    .await;
}

/// Renews the leases of the running jobs every heartbeat interval.
pub(crate) async fn renew_leases(shared: Arc<Shared>) {
    let interval = shared.config.heartbeat_interval;
    super::every(shared, "lease renewal", interval, |shared| async move {
        renew(&shared).await
    })
    .await;
}

/// One renewal: every running job's lease, and cancellation of those lost (`None` when no job
/// runs: nothing was asked of the storage).
pub(crate) async fn renew(shared: &Shared) -> Option<Result<()>> {
    let ids: Vec<JobId> = shared.running().keys().copied().collect();
    if ids.is_empty() {
        return None;
    }
    Some(renew_ids(shared, ids).await)
}

async fn renew_ids(shared: &Shared, ids: Vec<JobId>) -> Result<()> {
    let now = shared.clock.now();
    let lease_until = clock::add(now, shared.config.lease);
    let lost = shared
        .storage
        .keep_alive(&shared.server_id, &ids, lease_until)
        .await?;
    let running = shared.running();
    for id in lost {
        if let Some(token) = running.get(&id) {
            tracing::info!(%id, "job was deleted or moved while running; cancelling it");
            token.cancel();
        }
    }
    Ok(())
}
