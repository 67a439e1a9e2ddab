//! A stored job: everything [`Storage::job`](crate::storage::Storage::job) returns about it,
//! plus what the storage needs to run it (its lease and its place in its queue).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use nohash_hasher::IntMap;

use crate::job::{JobError, JobId, JobState};
use crate::storage::types::{ContinueOn, HistoryEntry, JobQuery, JobRecord};

/// A job as the storage keeps it. Each field of [`JobRecord`] is here under its own name,
/// except `server_id`, which is the holder of the `lease`.
pub(super) struct StoredJob {
    pub(super) id: JobId,
    /// The registered name, queue and JSON arguments never change after enqueue: they are
    /// shared with every fetched copy of the job instead of copied per fetch.
    pub(super) name: Arc<str>,
    pub(super) queue: Arc<str>,
    pub(super) args: Arc<str>,
    /// Its place within its queue: lower first.
    pub(super) priority: u8,
    pub(super) state: JobState,
    pub(super) created_at: DateTime<Utc>,
    /// When it entered its current state.
    pub(super) state_at: DateTime<Utc>,
    /// For Scheduled: when it will be enqueued.
    pub(super) run_at: Option<DateTime<Utc>>,
    /// Failed attempts so far.
    pub(super) retry_count: u32,
    pub(super) parent: Option<JobId>,
    pub(super) continue_on: Option<ContinueOn>,
    /// Its continuations, including any pruned since (a read leaves those out).
    pub(super) children: Vec<JobId>,
    pub(super) recurring_id: Option<String>,
    pub(super) result: Option<serde_json::Value>,
    pub(super) error: Option<JobError>,
    /// Every state it went through, oldest first.
    pub(super) history: Vec<HistoryEntry>,
    /// For Processing: who runs it, and until when.
    pub(super) lease: Option<Lease>,
    /// Its place in its queue: set when it is enqueued at the tail, and kept when it goes
    /// back to its queue at its original place (see [`Placement`](super::state::Placement)).
    pub(super) position: u64,
    /// When it last became Enqueued (the worker measures latency from it).
    pub(super) enqueued_at: DateTime<Utc>,
    /// The parent's result, for a continuation released by a parent that succeeded.
    pub(super) parent_result: Option<serde_json::Value>,
    /// Its unique key, if any.
    pub(super) unique_key: Option<String>,
    /// The mutex key it holds while Processing, if any.
    pub(super) mutex: Option<Arc<str>>,
    /// Its kind has limits: with a mutex, it is kept in the gated index of its queue.
    pub(super) limited: bool,
    /// The wait reason its history last recorded while it stayed Enqueued (cleared when it
    /// changes state), so each reason is recorded once.
    pub(super) waiting: Option<String>,
}

/// The claim of the server running a Processing job.
pub(super) struct Lease {
    /// The server's id, one copy shared by the jobs of one fetch.
    pub(super) server: Arc<str>,
    /// When the job is given up for lost unless the server renews the lease.
    pub(super) until: DateTime<Utc>,
}

impl StoredJob {
    /// Whether only a flow-controlled fetch may start it ([`NewJob::gated`](crate::storage::NewJob::gated)).
    pub(super) fn gated(&self) -> bool {
        self.mutex.is_some() || self.limited
    }

    /// Whether it blocks a new job with its unique key regardless of time: it has not
    /// finished (Failed counts as finished here: a failed job is not a duplicate).
    pub(super) fn active(&self) -> bool {
        matches!(
            self.state,
            JobState::Enqueued | JobState::Scheduled | JobState::Awaiting | JobState::Processing
        )
    }

    /// The server holding the job's lease.
    pub(super) fn server(&self) -> Option<&str> {
        self.lease.as_ref().map(|lease| &*lease.server)
    }

    /// The job as read: `children` limited to those that still exist, and the history only
    /// if asked for (lists leave it out).
    pub(super) fn to_record(&self, jobs: &IntMap<JobId, StoredJob>, history: bool) -> JobRecord {
        JobRecord {
            id: self.id,
            name: self.name.to_string(),
            queue: self.queue.to_string(),
            priority: self.priority,
            unique_key: self.unique_key.clone(),
            mutex: self.mutex.as_deref().map(str::to_owned),
            args: self.args.to_string(),
            state: self.state,
            created_at: self.created_at,
            state_at: self.state_at,
            run_at: self.run_at,
            retry_count: self.retry_count,
            server_id: self.server().map(str::to_owned),
            parent: self.parent,
            continue_on: self.continue_on,
            children: self
                .children
                .iter()
                .copied()
                .filter(|child| jobs.contains_key(child))
                .collect(),
            recurring_id: self.recurring_id.clone(),
            result: self.result.clone(),
            error: self.error.clone(),
            history: if history {
                self.history.clone()
            } else {
                Vec::new()
            },
        }
    }

    /// A Scheduled job waiting for a retry, as [`JobRecord::is_retry`].
    pub(super) fn is_retry(&self) -> bool {
        self.state == JobState::Scheduled && self.retry_count > 0
    }

    /// Whether the job is one [`list_jobs`](crate::storage::Storage::list_jobs) returns.
    pub(super) fn matches(&self, query: &JobQuery) -> bool {
        let contains = |haystack: &str, needle: &Option<String>| {
            needle
                .as_deref()
                .is_none_or(|needle| haystack.to_lowercase().contains(&needle.to_lowercase()))
        };
        query.state.is_none_or(|state| self.state == state)
            && query
                .queue
                .as_deref()
                .is_none_or(|queue| &*self.queue == queue)
            && contains(&self.name, &query.name_contains)
            && contains(&self.args, &query.args_contains)
            && query.unique_key_contains.as_ref().is_none_or(|_| {
                contains(
                    self.unique_key.as_deref().unwrap_or(""),
                    &query.unique_key_contains,
                ) && self.unique_key.is_some()
            })
            && (!query.retries_only || self.is_retry())
    }
}
