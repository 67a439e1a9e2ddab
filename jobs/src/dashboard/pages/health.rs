//! Whether a server looks alive, from its last heartbeat.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};

use crate::dashboard::format::relative;
use crate::storage::ServerRecord;

/// A server whose last heartbeat is older than this is shown as possibly aborted.
const STALE_AFTER: TimeDelta = TimeDelta::minutes(1);

/// Whether a heartbeat at `heartbeat_at` is too old for its server to be trusted alive.
pub(super) fn is_stale(now: DateTime<Utc>, heartbeat_at: DateTime<Utc>) -> bool {
    now.signed_duration_since(heartbeat_at) > STALE_AFTER
}

/// Servers by id, and whether each looks alive.
pub(super) struct ServerHealth {
    now: DateTime<Utc>,
    heartbeats: HashMap<String, DateTime<Utc>>,
}

impl ServerHealth {
    /// The health of `servers` at `now`.
    pub(super) fn new(now: DateTime<Utc>, servers: &[ServerRecord]) -> Self {
        ServerHealth {
            now,
            heartbeats: servers
                .iter()
                .map(|s| (s.info.id.clone(), s.heartbeat_at))
                .collect(),
        }
    }

    /// A warning for a job held by `server`, if that server looks dead.
    pub(super) fn warning(&self, server: &str) -> Option<String> {
        match self.heartbeats.get(server) {
            None => Some(
                "its server is gone: the job will be taken again once its lease lapses".to_owned(),
            ),
            Some(at) if is_stale(self.now, *at) => Some(format!(
                "its server's last heartbeat was {}: it may have died",
                relative(self.now, *at)
            )),
            Some(_) => None,
        }
    }
}
