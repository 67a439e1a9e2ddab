//! The heartbeat: records that the server is alive, renews the leases of its running jobs and
//! cancels those deleted (or requeued) meanwhile.

use std::sync::Arc;

use super::Shared;
use crate::clock;
use crate::job::JobId;

pub(crate) async fn run(shared: Arc<Shared>) {
    let interval = shared.config.heartbeat_interval;
    super::every(
        shared,
        interval,
        |shared| async move { beat(&shared).await },
    )
    .await;
}

/// One heartbeat: server record, leases, cancellations.
pub(crate) async fn beat(shared: &Shared) {
    let now = shared.clock.now();
    if let Err(error) = shared.storage.heartbeat(&shared.server_id, now).await {
        tracing::warn!(%error, "server heartbeat failed");
    }
    let ids: Vec<JobId> = shared.running().keys().copied().collect();
    if ids.is_empty() {
        return;
    }
    let lease_until = clock::add(now, shared.config.lease);
    match shared
        .storage
        .keep_alive(&shared.server_id, &ids, lease_until)
        .await
    {
        Ok(lost) => {
            let running = shared.running();
            for id in lost {
                if let Some(token) = running.get(&id) {
                    tracing::info!(%id, "job was deleted or moved while running; cancelling it");
                    token.cancel();
                }
            }
        }
        Err(error) => tracing::warn!(%error, "renewing job leases failed"),
    }
}
