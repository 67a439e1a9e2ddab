//! Helpers shared by the end-to-end tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use jobs::clock::ManualClock;
use jobs::prelude::*;
use jobs::{JobRecord, ServerBuilder};

/// How long any test waits for a condition before failing.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A server builder with short intervals, so tests react in milliseconds.
pub fn fast(storage: MemoryStorage) -> ServerBuilder {
    Server::builder(storage)
        .poll_interval(Duration::from_millis(50))
        .maintenance_interval(Duration::from_millis(10))
        .heartbeat_interval(Duration::from_millis(20))
        .shutdown_grace(Duration::from_millis(100))
        .shutdown_timeout(Duration::from_secs(5))
}

/// A clock pinned at 2026-01-01T00:00:00Z.
pub fn manual_clock() -> ManualClock {
    ManualClock::new(jobs::testing::conformance::t0())
}

/// Waits until the job is in `state`.
pub async fn wait_state(client: &Client, id: JobId, state: JobState) -> JobRecord {
    jobs::testing::wait_for_state(client, id, state, DEADLINE)
        .await
        .unwrap_or_else(|error| panic!("{error}"))
}

/// The reason of the job's last history entry.
pub fn last_reason(record: &JobRecord) -> String {
    record
        .history
        .last()
        .and_then(|entry| entry.reason.clone())
        .unwrap_or_default()
}

/// The states a job went through.
pub fn states(record: &JobRecord) -> Vec<JobState> {
    record.history.iter().map(|entry| entry.state).collect()
}

/// Polls `condition` until it holds, or panics with `what` after the deadline.
pub async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
