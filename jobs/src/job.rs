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
    /// Its place within its queue: lower first, FIFO among equals (`#[job(priority = N)]`;
    /// default [`DEFAULT_PRIORITY`]).
    const PRIORITY: u8 = DEFAULT_PRIORITY;
    /// Whether a job with the same key blocks a new one (`#[job(unique)]`,
    /// `#[job(unique_for = "10m")]`): see [`Unique`](crate::Unique).
    const UNIQUE: Option<crate::Unique> = None;
    /// At most this many of its jobs Processing at once, across every server
    /// (`#[job(concurrency = N)]`).
    const CONCURRENCY: Option<u32> = None;
    /// At most this many of its jobs started per window (`#[job(rate = "100/1m")]`).
    const RATE: Option<crate::Rate> = None;

    /// The mutex key this job holds while it runs (`#[job(mutex = "account-{account_id}")]`):
    /// at most one job per key is Processing at once, across every server. Rendered when the
    /// job is enqueued and stored with it.
    fn mutex_key(&self) -> Option<String> {
        None
    }
}

/// The priority of a job that names none: 1, so that 0 can go before every default job.
pub const DEFAULT_PRIORITY: u8 = 1;

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
    /// At most this many Processing at once, across every server (`concurrency = N`).
    pub concurrency: Option<u32>,
    /// At most this many started per window (`rate = "100/1m"`).
    pub rate: Option<crate::Rate>,
    /// Its jobs hold a mutex key (`mutex = "..."`).
    pub mutex: bool,
}

impl JobOptions {
    /// The defaults: server retry policy, Failed when exhausted, no timeout.
    pub const DEFAULT: JobOptions = JobOptions {
        retries: None,
        retry_delays: &[],
        on_exhausted: OnExhausted::Fail,
        timeout: None,
        concurrency: None,
        rate: None,
        mutex: false,
    };
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions::DEFAULT
    }
}

/// Why one attempt of a job failed: an error it returned, a panic, a timeout, bad arguments...
///
/// A job may also end an attempt in one of three ways other than a failure to retry, by
/// returning one of these: directly, through `anyhow::Error` (with or without a context) or
/// `Box<dyn Error>`, or as the source of an error of its own:
///
/// | returned | the job becomes | attempt count | history reason |
/// | --- | --- | --- | --- |
/// | [`JobError::snooze(d)`](JobError::snooze) | Scheduled for now + `d` (Enqueued at its place if `d` is zero) | kept: no attempt spent | "snoozed for 60s" |
/// | [`JobError::fatal(e)`](JobError::fatal) | Failed now, its remaining retries skipped (`on_exhausted` is not applied) | counted | "failed, retries skipped: …" |
/// | [`JobError::cancel(reason)`](JobError::cancel) | Deleted (its continuations are decided as for a deletion) | kept: not a failed attempt | "cancelled by the job: …" |
///
/// ```
/// use std::time::Duration;
/// use jobs::JobError;
///
/// #[jobs::job]
/// async fn call_partner(order: i64) -> anyhow::Result<()> {
///     if order < 0 {
///         return Err(JobError::cancel("the order no longer exists").into());
///     }
///     if order == 0 {
///         return Err(JobError::snooze(Duration::from_secs(60)).into()); // partner busy
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// The error's type (`std::any::type_name` of the returned error, or a `jobs::` kind).
    pub type_name: String,
    /// The error's message (its `Display`).
    pub message: String,
    /// The chain of sources, one per line, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// What the job asks of the server instead of a retry; not stored (the history entry's
    /// reason says it).
    #[serde(skip)]
    directive: Option<Directive>,
}

/// How a job asked to end its attempt, beyond failing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Directive {
    /// Run again after this long; no attempt spent.
    Snooze(Duration),
    /// Failed now, no retries.
    Fatal,
    /// Deleted.
    Cancel,
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
    /// Type name of [`JobError::snooze`].
    pub const SNOOZED: &'static str = "jobs::Snoozed";
    /// Type name of [`JobError::cancel`].
    pub const CANCELLED_BY_JOB: &'static str = "jobs::CancelledByJob";

    /// A job error of the given type and message.
    pub fn new(type_name: impl Into<String>, message: impl Into<String>) -> Self {
        JobError {
            type_name: type_name.into(),
            message: message.into(),
            details: None,
            directive: None,
        }
    }

    /// Ends the attempt without spending it: the job runs again after `delay` (Scheduled, or
    /// Enqueued at its place in its queue when `delay` is zero), its attempt count unchanged.
    /// For a resource that is busy or a partner asking to wait, not for a failure.
    pub fn snooze(delay: Duration) -> JobError {
        JobError {
            directive: Some(Directive::Snooze(delay)),
            ..JobError::new(JobError::SNOOZED, format!("snoozed for {delay:?}"))
        }
    }

    /// Fails the job now, whatever retries it has left: for an error that no retry can mend
    /// (a rejected card, a record that no longer exists). `error` is recorded as any error is.
    pub fn fatal<E: Into<BoxError> + 'static>(error: E) -> JobError {
        JobError {
            directive: Some(Directive::Fatal),
            ..job_error(error)
        }
    }

    /// Ends the job as Deleted with `reason`: the work is no longer wanted. Not a failed
    /// attempt; its continuations are decided as for a deletion.
    pub fn cancel(reason: impl Into<String>) -> JobError {
        JobError {
            directive: Some(Directive::Cancel),
            ..JobError::new(JobError::CANCELLED_BY_JOB, reason)
        }
    }

    /// Takes out what the job asked of the server beyond a failed attempt, if anything (the
    /// error is then stored as any other: storages keep no directive).
    pub(crate) fn take_directive(&mut self) -> Option<Directive> {
        self.directive.take()
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
            details: (!details.is_empty()).then(|| details.join("\n")),
            ..JobError::new(type_name, error.to_string())
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
    E: Into<BoxError> + 'static,
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
            Err(error) => Err(job_error(error)),
        }
    }
}

/// The [`JobError`] a job's error becomes. A `JobError` returned as it is keeps its type and
/// what it asks of the server; one that asks something (snooze, fatal, cancel) is also found
/// inside an `anyhow::Error` (through any context) or as the source of another error. Any
/// other error is named after its type, its message and sources kept.
fn job_error<E: Into<BoxError> + 'static>(error: E) -> JobError {
    let asking = |found: &JobError| found.directive.is_some();
    if let Some(error) = (&error as &dyn std::any::Any).downcast_ref::<anyhow::Error>() {
        if let Some(found) = error
            .downcast_ref::<JobError>()
            .filter(|found| asking(found))
        {
            return found.clone();
        }
    }
    let boxed: BoxError = error.into();
    let boxed = match boxed.downcast::<JobError>() {
        Ok(error) => return *error,
        Err(boxed) => boxed,
    };
    let mut source = boxed.source();
    while let Some(cause) = source {
        if let Some(found) = cause
            .downcast_ref::<JobError>()
            .filter(|found| asking(found))
        {
            return found.clone();
        }
        source = cause.source();
    }
    JobError::from_error(std::any::type_name::<E>(), boxed.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through_anyhow(error: JobError) -> JobError {
        let result: Result<(), anyhow::Error> = Err(error.into());
        result.into_job_result().expect_err("an error")
    }

    /// A `JobError` keeps what it asks of the server when returned as it is or through
    /// `anyhow::Error`; any other error is an ordinary failure named after its type.
    #[test]
    fn returned_job_errors_keep_their_directive() {
        let mut snoozed = through_anyhow(JobError::snooze(Duration::from_secs(5)));
        assert_eq!(
            snoozed.take_directive(),
            Some(Directive::Snooze(Duration::from_secs(5)))
        );
        assert_eq!(snoozed.message, "snoozed for 5s");
        let mut fatal = through_anyhow(JobError::fatal(anyhow::anyhow!("card rejected")));
        assert_eq!(fatal.take_directive(), Some(Directive::Fatal));
        assert_eq!(
            (fatal.type_name.as_str(), fatal.message.as_str()),
            ("anyhow::Error", "card rejected")
        );
        let result: Result<(), JobError> = Err(JobError::cancel("gone"));
        let mut cancelled = result.into_job_result().expect_err("an error");
        assert_eq!(cancelled.take_directive(), Some(Directive::Cancel));
        let wrapped: Result<(), anyhow::Error> =
            Err(anyhow::Error::from(JobError::snooze(Duration::from_secs(1))).context("partner"));
        let mut wrapped = wrapped.into_job_result().expect_err("an error");
        assert_eq!(
            wrapped.take_directive(),
            Some(Directive::Snooze(Duration::from_secs(1))),
            "found through a context"
        );
        #[derive(Debug, thiserror::Error)]
        #[error("shipping failed")]
        struct Shipping(#[source] JobError);
        let sourced: Result<(), Shipping> = Err(Shipping(JobError::cancel("withdrawn")));
        let mut sourced = sourced.into_job_result().expect_err("an error");
        assert_eq!(
            sourced.take_directive(),
            Some(Directive::Cancel),
            "found as a source"
        );
        let result: Result<(), std::io::Error> = Err(std::io::Error::other("disk"));
        let mut plain = result.into_job_result().expect_err("an error");
        assert_eq!(plain.take_directive(), None);
        assert_eq!(plain.type_name, "std::io::error::Error");
    }
}
