//! The history entries the storage records: one function per kind of entry, as listed in
//! `docs/storage.md`. What PostgreSQL records too comes from the shared definitions in
//! [`types`](crate::storage::types) (the first entry, outcomes, continuation reasons, and the
//! `StateData` constructors PostgreSQL's SQL functions mirror), so the two storages cannot
//! word or fill an entry differently.

use chrono::{DateTime, Utc};

use crate::job::{JobId, JobState};
use crate::storage::types::{
    Completion, ContinuationReason, HistoryEntry, MaintenanceReason, NewJob, StateData,
};

/// The entry of a job's creation, in the state it starts in.
pub(super) fn created(job: &NewJob, at: DateTime<Utc>) -> HistoryEntry {
    let (state, reason, data) = job.first_entry();
    HistoryEntry {
        state,
        at,
        reason,
        data,
    }
}

/// Still Enqueued, passed over by a flow-controlled fetch: why it waits
/// ([`WaitReason`](crate::WaitReason)'s words).
pub(super) fn waiting(queue: &str, reason: &str, at: DateTime<Utc>) -> HistoryEntry {
    HistoryEntry {
        state: JobState::Enqueued,
        at,
        reason: Some(reason.to_owned()),
        data: StateData::enqueued(queue, None),
    }
}

/// Processing: `server` started attempt number `attempt`.
pub(super) fn started(server: &str, attempt: u32, at: DateTime<Utc>) -> HistoryEntry {
    HistoryEntry {
        state: JobState::Processing,
        at,
        reason: None,
        data: StateData::processing(server, attempt),
    }
}

/// The end of an attempt, in the state its outcome moves the job to.
pub(super) fn completed(completion: &Completion) -> HistoryEntry {
    let outcome = &completion.outcome;
    HistoryEntry {
        state: completion.state(),
        at: completion.at,
        reason: outcome.reason().map(str::to_owned),
        data: outcome.data().into_owned(),
    }
}

/// Deleted by hand.
pub(super) fn deleted(reason: &str, at: DateTime<Utc>) -> HistoryEntry {
    HistoryEntry {
        state: JobState::Deleted,
        at,
        reason: Some(reason.to_owned()),
        data: StateData::default(),
    }
}

/// Enqueued by hand, at the tail of `queue`.
pub(super) fn requeued(queue: &str, reason: &str, at: DateTime<Utc>) -> HistoryEntry {
    enqueued(queue, reason.to_owned(), at)
}

/// Enqueued because its scheduled time came.
pub(super) fn promoted(queue: &str, at: DateTime<Utc>) -> HistoryEntry {
    enqueued(queue, MaintenanceReason::PROMOTED.to_owned(), at)
}

fn enqueued(queue: &str, reason: String, at: DateTime<Utc>) -> HistoryEntry {
    HistoryEntry {
        state: JobState::Enqueued,
        at,
        reason: Some(reason),
        data: StateData::enqueued(queue, None),
    }
}

/// Enqueued again because the lease of `server` lapsed while the job was Processing.
pub(super) fn rescued(server: &str, at: DateTime<Utc>) -> HistoryEntry {
    HistoryEntry {
        state: JobState::Enqueued,
        at,
        reason: Some(MaintenanceReason::rescued(server)),
        data: StateData::default(),
    }
}

/// A continuation enqueued (into `queue`) because its parent reached `parent_state`.
pub(super) fn released(
    queue: &str,
    parent: JobId,
    parent_state: JobState,
    at: DateTime<Utc>,
) -> HistoryEntry {
    HistoryEntry {
        state: JobState::Enqueued,
        at,
        reason: Some(ContinuationReason::released(parent, parent_state)),
        data: StateData::enqueued(queue, Some(parent)),
    }
}

/// A continuation deleted because its parent reached a state it does not run on.
pub(super) fn not_met(parent: JobId, parent_state: JobState, at: DateTime<Utc>) -> HistoryEntry {
    HistoryEntry {
        state: JobState::Deleted,
        at,
        reason: Some(ContinuationReason::not_met(parent, parent_state)),
        data: StateData::default(),
    }
}

/// A continuation back to Awaiting because its parent, which had it deleted, was requeued.
pub(super) fn rearmed(parent: JobId, at: DateTime<Utc>) -> HistoryEntry {
    HistoryEntry {
        state: JobState::Awaiting,
        at,
        reason: Some(ContinuationReason::rearmed(parent)),
        data: StateData::awaiting(parent),
    }
}
