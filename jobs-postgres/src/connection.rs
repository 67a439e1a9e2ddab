//! The connections' time bounds: what keeps a call from hanging on a network that is gone.

use std::time::Duration;

use crate::options::PostgresOptions;

/// Probes 5 s apart, 3 unanswered drop the connection (with `PostgresOptions::keepalives_idle`).
pub(crate) const KEEPALIVES_INTERVAL: Duration = Duration::from_secs(5);

pub(crate) const KEEPALIVES_RETRIES: u32 = 3;

/// Bounds how long a dead network can hold a connection: unacknowledged data
/// (`TCP_USER_TIMEOUT`) and idle keepalive probes, each unless the URL sets its own.
pub(crate) fn bound_connections(config: &mut tokio_postgres::Config, options: &PostgresOptions) {
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(options.tcp_user_timeout);
    }
    // tokio-postgres reports its default (2 hours) when the URL sets none.
    if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
        config.keepalives_idle(options.keepalives_idle);
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(KEEPALIVES_INTERVAL);
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(KEEPALIVES_RETRIES);
    }
}

/// When an operation last timed out. A connection it was using may be dead (a partition
/// leaves it open with nothing arriving) and went back to the pool when the operation was
/// dropped; which one is not known, so every connection opened before that moment is replaced
/// when next taken from the pool (a reconnect costs milliseconds; a dead connection costs a
/// whole timeout per use).
#[derive(Debug)]
pub(crate) struct Suspect {
    since: std::time::Instant,
    /// Nanoseconds after `since` of the last timeout; 0 for none.
    before: std::sync::atomic::AtomicU64,
}

impl Default for Suspect {
    fn default() -> Self {
        Suspect {
            since: std::time::Instant::now(),
            before: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Suspect {
    pub(crate) fn mark(&self) {
        let nanos = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.before
            .fetch_max(nanos.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn covers(&self, created: std::time::Instant) -> bool {
        let before = self.before.load(std::sync::atomic::Ordering::Relaxed);
        before > 0 && created <= self.since + Duration::from_nanos(before)
    }
}
