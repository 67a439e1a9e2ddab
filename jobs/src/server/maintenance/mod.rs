//! Maintenance, run by one elected server at a time: promote due Scheduled jobs, rescue jobs
//! whose lease lapsed, fire recurring jobs, prune expired jobs and dead servers.

mod recurring;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::clock;
use crate::error::Result;
use crate::server::Shared;
use crate::storage::PruneRequest;

/// Jobs moved per storage call.
const BATCH: usize = 1000;

/// Most prune batches in one maintenance round.
const PRUNE_BATCHES_PER_ROUND: usize = 5;

pub(crate) async fn run(shared: Arc<Shared>) {
    let interval = shared.config.maintenance_interval;
    super::every(shared, "maintenance", interval, |shared| async move {
        Some(tick(&shared).await)
    })
    .await;
}

/// One round: if this server leads, do every maintenance task once.
pub(crate) async fn tick(shared: &Shared) -> Result<()> {
    let now = shared.clock.now();
    let until = clock::add(now, shared.config.leader_ttl);
    if !shared
        .storage
        .try_lead(&shared.server_id, now, until)
        .await?
    {
        return Ok(());
    }
    promote(shared, now).await?;
    rescue(shared, now).await?;
    recurring::fire_due(shared, now).await?;
    prune(shared, now).await?;
    Ok(())
}

/// Scheduled jobs whose time has come → Enqueued.
async fn promote(shared: &Shared, now: DateTime<Utc>) -> Result<()> {
    while shared.storage.promote_scheduled(now, BATCH).await? == BATCH {}
    Ok(())
}

/// Processing jobs whose lease lapsed (their server died) → Enqueued.
async fn rescue(shared: &Shared, now: DateTime<Utc>) -> Result<()> {
    loop {
        let rescued = shared.storage.rescue_expired(now, BATCH).await?;
        if rescued > 0 {
            tracing::warn!(rescued, "requeued jobs whose server stopped responding");
        }
        if rescued < BATCH {
            return Ok(());
        }
    }
}

/// Expired jobs and dead servers are removed, a batch at a time.
async fn prune(shared: &Shared, now: DateTime<Utc>) -> Result<()> {
    let config = &shared.config;
    let before = |age| {
        chrono::TimeDelta::from_std(age)
            .ok()
            .and_then(|age| now.checked_sub_signed(age))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    };
    let request = PruneRequest {
        finished_before: before(config.retention),
        failed_before: config.failed_retention.map(before),
        limit: BATCH,
    };
    // A bounded number of batches per round, so a large backlog of expired jobs never holds
    // up promotion, rescue and recurring firing (each runs every round); the rest follows.
    for _ in 0..PRUNE_BATCHES_PER_ROUND {
        if shared.storage.prune(request).await? < BATCH {
            break;
        }
    }
    let dead = shared
        .storage
        .remove_dead_servers(before(config.server_timeout))
        .await?;
    if dead > 0 {
        tracing::info!(dead, "removed servers with no heartbeat");
    }
    Ok(())
}
