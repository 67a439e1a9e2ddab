//! The hourly counts of attempts' outcomes, for the dashboard's charts.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use crate::storage::types::Outcome;

/// Succeeded and failed attempts per hour, keyed by the hour's start. Kept apart from the jobs
/// so the counts outlive pruning.
#[derive(Debug, Default)]
pub(super) struct Stats(BTreeMap<DateTime<Utc>, Counts>);

/// The outcomes of one hour, or of a span of hours.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    pub(super) succeeded: u64,
    pub(super) failed: u64,
}

impl Stats {
    /// Counts an attempt that ended at `at` with `outcome`: a success, or a failed attempt
    /// (retried or not); a shutdown's requeue is neither.
    pub(super) fn count(&mut self, outcome: &Outcome, at: DateTime<Utc>) {
        let succeeded = matches!(outcome, Outcome::Succeeded { .. });
        if !succeeded && !outcome.failed_attempt() {
            return;
        }
        let hour = at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at);
        let counts = self.0.entry(hour).or_default();
        if succeeded {
            counts.succeeded += 1;
        } else {
            counts.failed += 1;
        }
    }

    /// The sum of the hours from `from` (inclusive) to `to` (exclusive).
    pub(super) fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Counts {
        self.0
            .range(from..to)
            .fold(Counts::default(), |sum, (_, counts)| Counts {
                succeeded: sum.succeeded + counts.succeeded,
                failed: sum.failed + counts.failed,
            })
    }
}
