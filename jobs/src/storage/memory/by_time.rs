//! [`ByTime`]: the index of finished jobs, by the time they finished.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::job::JobId;

/// Jobs sorted by a time, then id, oldest first: a sorted deque. Jobs finish in about the
/// order of their finishing times, so an insert lands at or next to the back (without walking
/// a tree's right edge), and pruning reads from the front. Removing one from the middle (a
/// finished job requeued or deleted by hand) shifts the shorter side.
#[derive(Debug, Default)]
pub(super) struct ByTime(VecDeque<(DateTime<Utc>, JobId)>);

impl ByTime {
    pub(super) fn insert(&mut self, key: (DateTime<Utc>, JobId)) {
        // The usual case, a job that finished after all the others, needs no search.
        if self.0.back().is_none_or(|last| *last < key) {
            self.0.push_back(key);
        } else {
            let at = self.0.partition_point(|entry| *entry < key);
            self.0.insert(at, key);
        }
    }

    pub(super) fn remove(&mut self, key: (DateTime<Utc>, JobId)) {
        if let Ok(at) = self.0.binary_search(&key) {
            self.0.remove(at);
        }
    }

    /// Oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &(DateTime<Utc>, JobId)> {
        self.0.iter()
    }
}
