//! The crate's error type.

use std::time::Duration;

use crate::job::{BoxError, JobId, JobState};

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the client, the server or a storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The storage failed (lost connection, bad SQL, ...).
    #[error("storage error: {0}")]
    Storage(#[source] BoxError),
    /// Job arguments or a result could not be (de)serialized.
    #[error("serialization error: {0}")]
    Serialization(#[from] serde_json::Error),
    /// No job with this id exists.
    #[error("job {0} does not exist")]
    JobNotFound(JobId),
    /// The parent of a continuation does not exist.
    #[error("parent job {0} does not exist")]
    ParentNotFound(JobId),
    /// A state change was asked for that the job's current state does not allow.
    #[error("job {id} is {state}, which does not allow {action}")]
    InvalidTransition {
        /// The job.
        id: JobId,
        /// Its current state.
        state: JobState,
        /// What was asked ("requeue", "delete").
        action: &'static str,
    },
    /// Two registered jobs share one name or alias.
    #[error("two jobs are registered as `{name}`: {first} and {second}")]
    DuplicateJob {
        /// The shared name.
        name: String,
        /// Source location of the first registration.
        first: String,
        /// Source location of the second registration.
        second: String,
    },
    /// Services or injected parameters the container cannot provide (one line per job).
    #[error("the container cannot resolve the services some jobs need:\n{}", .0.join("\n"))]
    UnresolvedServices(Vec<String>),
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A queue name outside `^[a-z0-9_-]+$` (see [`validate_queue`](crate::validate_queue)).
    #[error("{0}")]
    InvalidQueue(String),
    /// A cron expression could not be parsed.
    #[error("invalid cron expression `{expression}`: {reason}")]
    InvalidCron {
        /// The expression as given.
        expression: String,
        /// Why it was refused.
        reason: String,
    },
    /// A time zone name is not a known IANA zone.
    #[error("unknown time zone `{0}`")]
    InvalidTimeZone(String),
    /// No recurring job has this id.
    #[error("no recurring job with id `{0}`")]
    RecurringNotFound(String),
    /// The storage does not implement this feature yet.
    #[error("{0} is not supported by this storage")]
    Unsupported(&'static str),
    /// A queue that no job, server, setting or `#[job]` of this process names (a typo,
    /// most likely): nothing was stored.
    #[error("unknown queue `{0}`: no job, server or registered job kind uses it")]
    UnknownQueue(String),
    /// A concurrency or rate limit that cannot be applied (zero, or a zero period).
    #[error("{0}")]
    InvalidLimit(String),
    /// A unique key that is empty or too long.
    #[error("invalid unique key: {0}")]
    InvalidUniqueKey(String),
    /// The server did not stop within the shutdown timeout.
    #[error("server did not stop within {0:?}")]
    ShutdownTimeout(Duration),
}

impl Error {
    /// Wraps any error as a storage error.
    pub fn storage(error: impl Into<BoxError>) -> Self {
        Error::Storage(error.into())
    }
}
