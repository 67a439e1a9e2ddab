//! What a job is: the [`Job`] trait, its id, its states and how its outcome is reported.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A boxed error, as job functions and storages return them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The id of a stored job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

// Ids are hashed as themselves where jobs are kept by id: consecutive ids land in consecutive
// buckets, so a storage walking its queue in id order reads memory in order.
impl nohash_hasher::IsEnabled for JobId {}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for JobId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(JobId)
    }
}

/// The state a job is in. See the lifecycle table in the crate docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting in its queue for a worker.
    Enqueued,
    /// Waiting for its time (a delayed job, or a retry).
    Scheduled,
    /// A continuation waiting for its parent to finish.
    Awaiting,
    /// Being run by a worker.
    Processing,
    /// Ran to completion. Final.
    Succeeded,
    /// Failed and has no retries left. Can be requeued.
    Failed,
    /// Deleted by a user, by retry exhaustion (`on_exhausted = "delete"`) or by its parent. Final.
    Deleted,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 7] = [
        JobState::Enqueued,
        JobState::Scheduled,
        JobState::Awaiting,
        JobState::Processing,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Deleted,
    ];

    /// The lowercase name used in storage and URLs.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobState::Enqueued => "enqueued",
            JobState::Scheduled => "scheduled",
            JobState::Awaiting => "awaiting",
            JobState::Processing => "processing",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Deleted => "deleted",
        }
    }

    /// Succeeded and Deleted are final: nothing moves a job out of them but an explicit requeue.
    pub const fn is_final(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Deleted)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            JobState::Enqueued => "Enqueued",
            JobState::Scheduled => "Scheduled",
            JobState::Awaiting => "Awaiting",
            JobState::Processing => "Processing",
            JobState::Succeeded => "Succeeded",
            JobState::Failed => "Failed",
            JobState::Deleted => "Deleted",
        };
        f.write_str(name)
    }
}

/// The error returned when parsing an unknown state name.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown job state `{0}`")]
pub struct UnknownState(pub String);

impl FromStr for JobState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// A job type: the serializable arguments of one `#[job]` function.
///
/// `#[job]` implements it; implementing it by hand is possible (pair it with a
/// [`JobEntry`](crate::registry::JobEntry) submitted to the registry).
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stored name, the job's wire format: the function name unless `name = "..."` is given.
    const NAME: &'static str;
    /// The queue the job is enqueued to.
    const QUEUE: &'static str;
}

/// What happens when a job has used all its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnExhausted {
    /// The job stays Failed (it can be requeued from the client or dashboard).
    #[default]
    Fail,
    /// The job moves to Deleted.
    Delete,
}

/// Per-job execution options, set by `#[job(...)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobOptions {
    /// How many retries after the first attempt; `None` uses the server's retry policy default (10).
    pub retries: Option<u32>,
    /// Fixed delays in seconds, the n-th retry waits the n-th delay, the last one repeats.
    /// Empty means the server's retry policy (Hangfire's formula by default).
    pub retry_delays: &'static [u64],
    /// What happens when retries are exhausted.
    pub on_exhausted: OnExhausted,
    /// Fails an attempt that runs longer than this.
    pub timeout: Option<Duration>,
}

impl JobOptions {
    /// The defaults: server retry policy, Failed when exhausted, no timeout.
    pub const DEFAULT: JobOptions = JobOptions {
        retries: None,
        retry_delays: &[],
        on_exhausted: OnExhausted::Fail,
        timeout: None,
    };
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions::DEFAULT
    }
}

/// Why one attempt of a job failed: an error it returned, a panic, a timeout, bad arguments...
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// The error's type (`std::any::type_name` of the returned error, or a `jobs::` kind).
    pub type_name: String,
    /// The error's message (its `Display`).
    pub message: String,
    /// The chain of sources, one per line, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl JobError {
    /// Type name of a panic inside a job.
    pub const PANIC: &'static str = "jobs::Panic";
    /// Type name of an attempt that ran past its timeout.
    pub const TIMEOUT: &'static str = "jobs::Timeout";
    /// Type name of arguments that could not be deserialized.
    pub const INVALID_ARGUMENTS: &'static str = "jobs::InvalidArguments";
    /// Type name of a job whose name is not registered in the process.
    pub const UNKNOWN_JOB: &'static str = "jobs::UnknownJob";
    /// Type name of a service the container could not provide.
    pub const UNRESOLVED_SERVICE: &'static str = "jobs::UnresolvedService";
    /// Type name of a job cancelled by shutdown or deletion.
    pub const CANCELLED: &'static str = "jobs::Cancelled";

    /// A job error of the given type and message.
    pub fn new(type_name: impl Into<String>, message: impl Into<String>) -> Self {
        JobError {
            type_name: type_name.into(),
            message: message.into(),
            details: None,
        }
    }

    /// A job error from an error value; `type_name` names its type, the source chain becomes details.
    pub fn from_error(type_name: &str, error: &(dyn std::error::Error + 'static)) -> Self {
        let mut details = Vec::new();
        let mut source = error.source();
        while let Some(cause) = source {
            details.push(cause.to_string());
            source = cause.source();
        }
        JobError {
            type_name: type_name.to_owned(),
            message: error.to_string(),
            details: (!details.is_empty()).then(|| details.join("\n")),
        }
    }

    /// Builds the error for a panic payload.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = if let Some(text) = payload.downcast_ref::<&str>() {
            (*text).to_owned()
        } else if let Some(text) = payload.downcast_ref::<String>() {
            text.clone()
        } else {
            "job panicked with a non-string payload".to_owned()
        };
        JobError::new(JobError::PANIC, message)
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.type_name, self.message)
    }
}

impl std::error::Error for JobError {}

/// What one run of a job produced: its result as JSON (`None` for `()`), or why it failed.
pub type RunResult = Result<Option<serde_json::Value>, JobError>;

/// The return types a job function may have: `()`, or `Result<T, E>` with a serializable `T`
/// (stored as the job's result) and an error that converts into [`BoxError`]
/// (`anyhow::Error`, `Box<dyn Error + Send + Sync>`, any `std::error::Error + Send + Sync`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a supported job return type",
    label = "a job must return `()` or `Result<T, E>` where `T: Serialize` and `E: Into<BoxError>`"
)]
pub trait IntoJobResult {
    /// Converts the function's return value into a [`RunResult`].
    fn into_job_result(self) -> RunResult;
}

impl IntoJobResult for () {
    fn into_job_result(self) -> RunResult {
        Ok(None)
    }
}

impl<T, E> IntoJobResult for Result<T, E>
where
    T: Serialize,
    E: Into<BoxError>,
{
    fn into_job_result(self) -> RunResult {
        match self {
            Ok(value) => match serde_json::to_value(value) {
                Ok(serde_json::Value::Null) => Ok(None),
                Ok(value) => Ok(Some(value)),
                Err(error) => Err(JobError::new(
                    "serde_json::Error",
                    format!("the job's result could not be serialized: {error}"),
                )),
            },
            Err(error) => {
                let boxed: BoxError = error.into();
                Err(JobError::from_error(
                    std::any::type_name::<E>(),
                    boxed.as_ref(),
                ))
            }
        }
    }
}
