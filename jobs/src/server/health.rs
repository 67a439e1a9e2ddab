//! Whether the storage answers: one view for the whole server, written by every loop that
//! calls the storage and read by the producer, which fetches only while the server can renew
//! the leases of what it fetches.
//!
//! A change of state is logged once (storage failing, storage answering again), not every
//! failed call: in an outage each loop retries with backoff, and a line per retry of every
//! loop drowns what happened.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// The storage's state as the server last saw it.
#[derive(Debug)]
pub(crate) struct Health {
    /// `true` while the storage answers; the producer waits on it.
    available: watch::Sender<bool>,
    /// When the current outage began (`None` while available).
    since: Mutex<Option<Instant>>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            available: watch::Sender::new(true),
            since: Mutex::new(None),
        }
    }
}

impl Health {
    /// A storage call succeeded.
    pub(crate) fn succeeded(&self) {
        if *self.available.borrow() {
            return;
        }
        let since = self
            .since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if self.available.send_replace(true) {
            return;
        }
        let down = since.map(|since| since.elapsed()).unwrap_or_default();
        tracing::info!(
            down_for = ?Duration::from_millis(u64::try_from(down.as_millis()).unwrap_or(u64::MAX)),
            "storage answers again; fetching resumes"
        );
    }

    /// A storage call of `operation` failed with `error`: logged as a warning when it begins
    /// an outage, at debug level during one.
    pub(crate) fn failed(&self, operation: &str, error: &dyn std::fmt::Display) {
        if !self.available.send_replace(false) {
            tracing::debug!(operation, %error, "storage call failed again");
            return;
        }
        *self
            .since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        tracing::warn!(
            operation,
            %error,
            "storage call failed: fetching paused, every loop retries with backoff until the storage answers"
        );
    }

    /// Whether the storage answered the last call.
    pub(crate) fn is_available(&self) -> bool {
        *self.available.borrow()
    }

    /// Waits until the storage answers again (at once if it does).
    pub(crate) async fn available(&self) {
        let mut receiver = self.available.subscribe();
        // Errors only when the sender is dropped, which outlives every receiver here.
        let _ = receiver.wait_for(|available| *available).await;
    }
}

/// The delays between retries of a failing loop: from `first`, doubling, at most `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Backoff from `first` up to `max` (at least `first`).
    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max: max.max(first),
            next: first,
        }
    }

    /// The delay before the next retry; the one after is twice as long, up to the maximum.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Back to the first delay after a success.
    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }
}

/// The longest delay between retries of a failing storage call: the server notices the
/// storage's return within this (plus the call's own time bound).
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_maximum_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let delays: Vec<_> = (0..5).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(100));
    }

    #[tokio::test]
    async fn an_outage_pauses_until_a_success() {
        let health = Health::default();
        assert!(health.is_available());
        health.failed("fetch", &"connection refused");
        health.failed("fetch", &"connection refused");
        assert!(!health.is_available());
        let waiting = tokio::spawn({
            let health = std::sync::Arc::new(health);
            let waiter = health.clone();
            async move {
                let wait = tokio::spawn(async move { waiter.available().await });
                tokio::task::yield_now().await;
                assert!(!wait.is_finished(), "waits while the storage fails");
                health.succeeded();
                wait.await.expect("waiter");
                health.is_available()
            }
        });
        assert!(waiting.await.expect("test task"));
    }
}
