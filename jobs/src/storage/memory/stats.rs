//! The hourly counts of attempts' outcomes, for the dashboard's charts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::storage::types::Outcome;

/// Succeeded and failed attempts per hour, keyed by the hour's number since the Unix epoch
/// (UTC hours: a day is 24 of them, whatever the time zone of the reader). Kept apart from the
/// jobs, so the counts outlive pruning.
#[derive(Debug, Default)]
pub(super) struct Stats(BTreeMap<i64, Counts>);

/// The outcomes of one hour, or of a span of hours.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Counts {
    pub(super) succeeded: u64,
    pub(super) failed: u64,
}

/// The number of the hour `at` is in.
fn hour(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(3600)
}

impl Stats {
    /// Counts an attempt that ended at `at` with `outcome`: a success, or a failed attempt
    /// (retried or not); a shutdown's requeue is neither.
    pub(super) fn count(&mut self, outcome: &Outcome, at: DateTime<Utc>) {
        let succeeded = matches!(outcome, Outcome::Succeeded { .. });
        if !succeeded && !outcome.failed_attempt() {
            return;
        }
        let counts = self.0.entry(hour(at)).or_default();
        if succeeded {
            counts.succeeded += 1;
        } else {
            counts.failed += 1;
        }
    }

    /// The sum of the hours from the one `from` is in to the one before `to`'s (both whole
    /// hours when they are the bounds of a statistics bucket).
    pub(super) fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Counts {
        self.0
            .range(hour(from)..hour(to))
            .fold(Counts::default(), |sum, (_, counts)| Counts {
                succeeded: sum.succeeded + counts.succeeded,
                failed: sum.failed + counts.failed,
            })
    }
}
