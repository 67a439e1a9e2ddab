//! The values passed to and returned by [`Storage`](super::Storage).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::flow::Uniqueness;
use crate::job::{JobError, JobId, JobState};

/// A job to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// The registered job name.
    pub name: String,
    /// The queue.
    pub queue: String,
    /// Its place within its queue: lower first, FIFO among equals
    /// ([`DEFAULT_PRIORITY`](crate::DEFAULT_PRIORITY) unless the job names one).
    pub priority: u8,
    /// The arguments, as JSON text.
    pub args: String,
    /// The state it starts in.
    pub initial: InitialState,
    /// The recurring job occurrence that fired it, if any.
    pub recurring: Option<RecurringOrigin>,
    /// Its unique key: not created while a job with this key blocks it (see
    /// [`Uniqueness::blocks`]); the existing job's id is answered instead.
    pub unique: Option<Uniqueness>,
    /// The mutex key it holds while Processing (see [`Job::mutex_key`](crate::Job::mutex_key)).
    pub mutex: Option<String>,
    /// Its kind has a concurrency or rate limit ([`JobLimits`](crate::JobLimits)): only a flow-controlled fetch
    /// ([`FetchRequest::flow`]) starts it.
    pub limited: bool,
}

impl NewJob {
    /// A job of type `J` with its serialized arguments, starting in `initial`.
    pub fn from_job<J: crate::job::Job>(
        job: &J,
        initial: InitialState,
    ) -> crate::error::Result<NewJob> {
        let args = serde_json::to_string(job)?;
        Ok(NewJob {
            name: J::NAME.to_owned(),
            queue: J::QUEUE.to_owned(),
            priority: J::PRIORITY,
            unique: J::UNIQUE.map(|unique| Uniqueness::of_job(J::NAME, &args, unique.window)),
            mutex: job.mutex_key(),
            limited: J::CONCURRENCY.is_some() || J::RATE.is_some(),
            args,
            initial,
            recurring: None,
        })
    }

    /// A plain job: no unique key, no mutex, no kind limits (recurring firings, tests).
    pub fn plain(name: &str, queue: &str, args: &str, initial: InitialState) -> NewJob {
        NewJob {
            name: name.to_owned(),
            queue: queue.to_owned(),
            priority: crate::DEFAULT_PRIORITY,
            args: args.to_owned(),
            initial,
            recurring: None,
            unique: None,
            mutex: None,
            limited: false,
        }
    }

    /// Applies the per-enqueue options of `opts` over the job's defaults: queue, priority,
    /// run time (relative to `now`), unique key (checked: see [`Uniqueness::explicit`]).
    pub fn with_options(
        mut self,
        opts: &crate::EnqueueOptions,
        now: DateTime<Utc>,
    ) -> crate::error::Result<NewJob> {
        if let Some(queue) = &opts.queue {
            crate::queue::validate_queue(queue)?;
            self.queue.clone_from(queue);
        }
        if let Some(priority) = opts.priority {
            self.priority = priority;
        }
        match opts.when {
            Some(crate::flow::When::Delay(delay)) => {
                self.initial = InitialState::Scheduled {
                    at: crate::clock::add(now, delay),
                };
            }
            Some(crate::flow::When::At(at)) => self.initial = InitialState::Scheduled { at },
            None => {}
        }
        if let Some(key) = &opts.unique_key {
            let window = self.unique.as_ref().and_then(|unique| unique.window);
            self.unique = Some(Uniqueness::explicit(key.clone(), window)?);
        }
        Ok(self)
    }

    /// Whether only a flow-controlled fetch may start it (a mutex or kind limits).
    pub fn gated(&self) -> bool {
        self.mutex.is_some() || self.limited
    }

    /// The first history entry every storage records for the job: its state, reason and
    /// data (Enqueued: the queue, and for a recurring firing its reason and occurrence;
    /// Scheduled: the run time; Awaiting: the parent).
    pub fn first_entry(&self) -> (JobState, Option<String>, StateData) {
        match self.initial {
            InitialState::Enqueued => (
                JobState::Enqueued,
                self.recurring.as_ref().map(RecurringOrigin::reason),
                StateData {
                    occurrence: self.recurring.as_ref().map(|origin| origin.occurrence),
                    ..StateData::enqueued(&self.queue, None)
                },
            ),
            InitialState::Scheduled { at } => (
                JobState::Scheduled,
                None,
                StateData {
                    run_at: Some(at),
                    ..StateData::default()
                },
            ),
            InitialState::Awaiting { parent, .. } => {
                (JobState::Awaiting, None, StateData::awaiting(parent))
            }
        }
    }
}

/// Which recurring job fired a job, for which occurrence. The storage keeps `id` as the job's
/// `recurring_id` and records both in its first history entry (reason
/// "fired by recurring job `id`", `data.occurrence`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecurringOrigin {
    /// The recurring job's id.
    pub id: String,
    /// The (first missed) occurrence the job was fired for.
    pub occurrence: DateTime<Utc>,
}

impl RecurringOrigin {
    /// The reason recorded on the first history entry of a job it fired.
    pub fn reason(&self) -> String {
        format!("fired by recurring job `{}`", self.id)
    }
}

/// The state a new job starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialState {
    /// Enqueued at the tail of its queue.
    Enqueued,
    /// Scheduled: enqueued at `at`.
    Scheduled {
        /// When it becomes Enqueued.
        at: DateTime<Utc>,
    },
    /// Awaiting its parent (a continuation).
    Awaiting {
        /// The parent job.
        parent: JobId,
        /// Which parent outcome releases it.
        on: ContinueOn,
    },
}

/// When a continuation runs. "Finished" is Succeeded, Deleted, or Failed after its retries.
///
/// | parent becomes | `Succeeded` (default) | `AnyFinished` | `Failed` |
/// | --- | --- | --- | --- |
/// | Succeeded | child Enqueued | child Enqueued | child Deleted |
/// | Failed (retries exhausted) | child keeps Awaiting | child Enqueued | child Enqueued |
/// | Deleted | child Deleted | child Enqueued | child Deleted |
///
/// A deleted child deletes its own continuations, down the chain. A Failed parent that is
/// requeued re-arms children that are still Awaiting; a child already released stays released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContinueOn {
    /// Only when the parent succeeded (Hangfire's default).
    #[default]
    Succeeded,
    /// Whenever the parent finishes: Succeeded, Deleted, or Failed after retries.
    AnyFinished,
    /// Only when the parent Failed after exhausting its retries.
    Failed,
}

/// The start of the reason recorded on a continuation deleted because its parent's outcome did
/// not match its [`ContinueOn`]. A requeued parent re-arms the children deleted with it.
pub const CONTINUATION_NOT_MET: &str = "continuation condition not met";

/// The reasons a continuation's history records when its parent decides it: one place for the
/// texts both storages write (PostgreSQL builds them in SQL; the conformance case
/// `continuation_reasons_are_the_same_everywhere` holds it to these).
#[derive(Debug, Clone, Copy)]
pub struct ContinuationReason;

impl ContinuationReason {
    /// Enqueued: "parent job 7 is Succeeded".
    pub fn released(parent: JobId, parent_state: JobState) -> String {
        format!("parent job {parent} is {parent_state}")
    }

    /// Deleted: "continuation condition not met: parent job 7 is Failed".
    pub fn not_met(parent: JobId, parent_state: JobState) -> String {
        format!("{CONTINUATION_NOT_MET}: parent job {parent} is {parent_state}")
    }

    /// Back to Awaiting: "parent job 7 was requeued".
    pub fn rearmed(parent: JobId) -> String {
        format!("parent job {parent} was requeued")
    }
}

/// The reasons the maintenance records when it moves a job by itself: one place for the texts
/// both storages write (PostgreSQL builds them in SQL; the conformance cases
/// `scheduled_jobs_promote_at_their_time` and `lapsed_lease_is_rescued` hold it to these).
#[derive(Debug, Clone, Copy)]
pub struct MaintenanceReason;

impl MaintenanceReason {
    /// Enqueued because its scheduled time came.
    pub const PROMOTED: &'static str = "scheduled time reached";

    /// Enqueued again because the lease of `server` lapsed: "lease expired: server a
    /// stopped responding".
    pub fn rescued(server: &str) -> String {
        format!("lease expired: server {server} stopped responding")
    }
}

/// What a child does when its parent reaches `parent_state`: `Some(true)` run, `Some(false)`
/// delete, `None` keep waiting. One place for the table on [`ContinueOn`].
pub fn continuation_decision(on: ContinueOn, parent_state: JobState) -> Option<bool> {
    match (on, parent_state) {
        (ContinueOn::Succeeded, JobState::Succeeded) => Some(true),
        (ContinueOn::Succeeded, JobState::Deleted) => Some(false),
        (ContinueOn::AnyFinished, JobState::Succeeded | JobState::Deleted | JobState::Failed) => {
            Some(true)
        }
        (ContinueOn::Failed, JobState::Failed) => Some(true),
        (ContinueOn::Failed, JobState::Succeeded | JobState::Deleted) => Some(false),
        _ => None,
    }
}

/// A request to claim jobs.
#[derive(Debug, Clone, Copy)]
pub struct FetchRequest<'a> {
    /// The claiming server.
    pub server_id: &'a str,
    /// Queues in priority order.
    pub queues: &'a [String],
    /// At most this many jobs.
    pub limit: usize,
    /// The most jobs the server holds at once, running and fetched ahead (its workers and
    /// buffer; at least `limit`). A storage may reserve that much room under a queue's limits
    /// once, rather than counting on every fetch, as PostgreSQL does when the limits leave
    /// room for it.
    pub capacity: usize,
    /// The current time.
    pub now: DateTime<Utc>,
    /// The lease's end; kept alive by `keep_alive` while the job runs.
    pub lease_until: DateTime<Utc>,
    /// Apply flow control: skip paused queues, keep to queue and job kind limits and
    /// mutexes, and start gated jobs ([`NewJob::gated`]). A server sets it when any may
    /// apply to it; a fetch without it starts only jobs that are not gated, by the
    /// statement it always ran.
    pub flow: bool,
    /// With `flow`: the served queues may hold gated jobs (a registered job of one of them has
    /// a mutex or kind limits, or some were found there). Without it a storage may take a
    /// cheaper path that keeps queue limits and pauses and leaves gated jobs alone, as
    /// PostgreSQL does.
    pub gated: bool,
}

/// A claimed job, ready to run. Its texts are shared (`Arc<str>`): a storage that keeps them
/// as such hands them over without copying.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedJob {
    /// Its id.
    pub id: JobId,
    /// Its registered name.
    pub name: Arc<str>,
    /// Its queue.
    pub queue: Arc<str>,
    /// Its arguments, as JSON text.
    pub args: Arc<str>,
    /// Failed attempts so far (0 on the first run).
    pub retry_count: u32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last became Enqueued (for latency).
    pub enqueued_at: DateTime<Utc>,
    /// The parent, for a continuation.
    pub parent: Option<JobId>,
    /// The parent's result, for a continuation released by a parent that succeeded with one.
    pub parent_result: Option<serde_json::Value>,
}

/// The outcome of one attempt, to apply to a Processing job.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The job.
    pub id: JobId,
    /// The server that ran it (must still hold the lease).
    pub server_id: Arc<str>,
    /// When the attempt ended.
    pub at: DateTime<Utc>,
    /// What happened.
    pub outcome: Outcome,
}

impl Completion {
    /// The state the job moves to: the outcome's, except that a retry or snooze due at or
    /// before the attempt's end goes straight back to its queue (Enqueued, at its place), as
    /// Hangfire enqueues a retry with no delay, instead of waiting Scheduled for the next
    /// promotion.
    pub fn state(&self) -> JobState {
        match (self.outcome.runs_again_at(), self.run_at()) {
            (Some(_), None) => JobState::Enqueued,
            _ => self.outcome.state(),
        }
    }

    /// When a Scheduled retry or snoozed job runs (`None` for every other outcome, and for
    /// one due at once).
    pub fn run_at(&self) -> Option<DateTime<Utc>> {
        self.outcome
            .runs_again_at()
            .filter(|run_at| *run_at > self.at)
    }
}

/// What one attempt ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// → Succeeded.
    Succeeded {
        /// Server, attempt, duration, latency, result.
        data: StateData,
    },
    /// → Scheduled for a retry at `run_at` (Enqueued at once when `run_at` is not after the
    /// attempt's end: see [`Completion::state`]); the retry count grows by one.
    Retry {
        /// When to retry.
        run_at: DateTime<Utc>,
        /// "Retry attempt n of N: message".
        reason: String,
        /// The error and attempt data.
        data: StateData,
    },
    /// → Failed (retries exhausted); the retry count grows by one.
    Failed {
        /// Why.
        reason: String,
        /// The error and attempt data.
        data: StateData,
    },
    /// → Deleted (retries exhausted with `on_exhausted = "delete"`).
    Deleted {
        /// Why.
        reason: String,
        /// The error and attempt data.
        data: StateData,
    },
    /// → Enqueued at its original place at the head of the queue (server shutdown); the
    /// retry count does not change.
    Requeued {
        /// Why.
        reason: String,
    },
    /// → Scheduled for `run_at` (Enqueued at once when due: see [`Completion::state`]) because
    /// the job snoozed ([`JobError::snooze`]); the retry count does not change.
    Snoozed {
        /// When it runs again.
        run_at: DateTime<Utc>,
        /// "snoozed for 60s".
        reason: String,
        /// The attempt data.
        data: StateData,
    },
    /// → Deleted because the job cancelled itself ([`JobError::cancel`]); not a failed
    /// attempt.
    Cancelled {
        /// "cancelled by the job: …".
        reason: String,
        /// The attempt data.
        data: StateData,
    },
}

/// What every storage records for an outcome: the state, the reason and data of its history
/// entry, and whether it ends a failed attempt.
impl Outcome {
    /// The state the job moves to when the retry is not due at once (storages apply
    /// [`Completion::state`]).
    pub fn state(&self) -> JobState {
        match self {
            Outcome::Succeeded { .. } => JobState::Succeeded,
            Outcome::Retry { .. } | Outcome::Snoozed { .. } => JobState::Scheduled,
            Outcome::Failed { .. } => JobState::Failed,
            Outcome::Deleted { .. } | Outcome::Cancelled { .. } => JobState::Deleted,
            Outcome::Requeued { .. } => JobState::Enqueued,
        }
    }

    /// The reason of its history entry.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Succeeded { .. } => None,
            Outcome::Retry { reason, .. }
            | Outcome::Failed { reason, .. }
            | Outcome::Deleted { reason, .. }
            | Outcome::Snoozed { reason, .. }
            | Outcome::Cancelled { reason, .. }
            | Outcome::Requeued { reason } => Some(reason),
        }
    }

    /// When a retry or a snooze runs the job again (`None` for every other outcome).
    pub fn runs_again_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Outcome::Retry { run_at, .. } | Outcome::Snoozed { run_at, .. } => Some(*run_at),
            _ => None,
        }
    }

    /// The data of its history entry: a retry's or snooze's carries the time it runs again
    /// (a copy, on that rare path); a requeue has none.
    pub fn data(&self) -> Cow<'_, StateData> {
        match self {
            Outcome::Succeeded { data }
            | Outcome::Failed { data, .. }
            | Outcome::Deleted { data, .. }
            | Outcome::Cancelled { data, .. } => Cow::Borrowed(data),
            Outcome::Retry { run_at, data, .. } | Outcome::Snoozed { run_at, data, .. } => {
                Cow::Owned(StateData {
                    run_at: Some(*run_at),
                    ..data.clone()
                })
            }
            Outcome::Requeued { .. } => Cow::Owned(StateData::default()),
        }
    }

    /// Whether it ends a failed attempt (the retry count grows by one).
    pub fn failed_attempt(&self) -> bool {
        matches!(
            self,
            Outcome::Retry { .. } | Outcome::Failed { .. } | Outcome::Deleted { .. }
        )
    }
}

/// The data recorded with a state change. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateData {
    /// The server involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The attempt number (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// How long the attempt ran, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// From enqueued to started, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// The job's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// The attempt's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// For Scheduled: when it will be enqueued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at: Option<DateTime<Utc>>,
    /// For Awaiting: the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<JobId>,
    /// For Enqueued: the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// For a job fired by a recurring job: the occurrence it was fired for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrence: Option<DateTime<Utc>>,
}

/// The data of the entries a storage records by itself (the others carry what the worker
/// reported). PostgreSQL builds the same in SQL, one function each (`enqueued_data`,
/// `awaiting_data`, `attempt_data`, migrations 0005 and 0008); its test
/// `sql_entry_data_matches_rust` holds them equal.
impl StateData {
    /// Enqueued in `queue`, by continuation of `parent` if given.
    pub fn enqueued(queue: &str, parent: Option<JobId>) -> StateData {
        StateData {
            queue: Some(queue.to_owned()),
            parent,
            ..StateData::default()
        }
    }

    /// Awaiting `parent`.
    pub fn awaiting(parent: JobId) -> StateData {
        StateData {
            parent: Some(parent),
            ..StateData::default()
        }
    }

    /// Processing on `server`, attempt `attempt` (1-based).
    pub fn processing(server: &str, attempt: u32) -> StateData {
        StateData {
            server: Some(server.to_owned()),
            attempt: Some(attempt),
            ..StateData::default()
        }
    }
}

/// One entry of a job's state history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The state entered.
    pub state: JobState,
    /// When.
    pub at: DateTime<Utc>,
    /// Why, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Details.
    #[serde(default)]
    pub data: StateData,
}

/// A stored job with everything known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// Its id.
    pub id: JobId,
    /// Its registered name.
    pub name: String,
    /// Its queue.
    pub queue: String,
    /// Its place within its queue (lower first).
    pub priority: u8,
    /// Its unique key, if it has one.
    pub unique_key: Option<String>,
    /// The mutex key it holds while Processing, if any.
    pub mutex: Option<String>,
    /// Its arguments, as JSON text.
    pub args: String,
    /// Its current state.
    pub state: JobState,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it entered its current state.
    pub state_at: DateTime<Utc>,
    /// For Scheduled: when it will be enqueued.
    pub run_at: Option<DateTime<Utc>>,
    /// Failed attempts so far.
    pub retry_count: u32,
    /// For Processing: the server holding its lease.
    pub server_id: Option<String>,
    /// The parent, for a continuation.
    pub parent: Option<JobId>,
    /// When a continuation runs.
    pub continue_on: Option<ContinueOn>,
    /// Its continuations.
    pub children: Vec<JobId>,
    /// The recurring job that fired it.
    pub recurring_id: Option<String>,
    /// Its result (when Succeeded with a value).
    pub result: Option<serde_json::Value>,
    /// The last attempt's error.
    pub error: Option<JobError>,
    /// Every state it went through, oldest first.
    pub history: Vec<HistoryEntry>,
}

impl JobRecord {
    /// A Scheduled job waiting for a retry (it failed before): the dashboard's Retries page.
    pub fn is_retry(&self) -> bool {
        self.state == JobState::Scheduled && self.retry_count > 0
    }
}

/// What [`Storage::prune`](super::Storage::prune) removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneRequest {
    /// Succeeded and Deleted jobs that finished before this.
    pub finished_before: DateTime<Utc>,
    /// Failed jobs that failed before this (`None`: failed jobs are kept).
    pub failed_before: Option<DateTime<Utc>>,
    /// At most this many per call.
    pub limit: usize,
}

/// A server, as it announces itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Unique id (host, pid and a random part).
    pub id: String,
    /// Queues served, in priority order.
    pub queues: Vec<String>,
    /// Number of workers.
    pub workers: usize,
    /// When it started.
    pub started_at: DateTime<Utc>,
}

/// A registered server with its last heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRecord {
    /// What it announced.
    pub info: ServerInfo,
    /// Its last heartbeat.
    pub heartbeat_at: DateTime<Utc>,
}

/// What a recurring job does after downtime in which occurrences were missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    /// One job for all missed occurrences (default).
    #[default]
    FireOnce,
    /// One job per missed occurrence.
    FireAll,
}

/// A recurring job's definition and its last run.
#[derive(Debug, Clone, PartialEq)]
pub struct RecurringJob {
    /// Its id.
    pub id: String,
    /// The cron expression as given.
    pub cron: String,
    /// IANA time zone name (`UTC` by default).
    pub time_zone: String,
    /// The job it fires: name, queue, arguments.
    pub job_name: String,
    /// The queue of the fired jobs.
    pub queue: String,
    /// The priority of the fired jobs within their queue.
    pub priority: u8,
    /// The mutex key the fired jobs hold (rendered from the job when it was added).
    pub mutex: Option<String>,
    /// The fired jobs' kind has limits (see [`NewJob::limited`]).
    pub limited: bool,
    /// Arguments of the fired jobs, as JSON text.
    pub args: String,
    /// Misfire handling.
    pub misfire: Misfire,
    /// Skip a firing while the previous job is still Enqueued or Processing.
    pub skip_if_running: bool,
    /// Paused recurring jobs do not fire.
    pub paused: bool,
    /// The next occurrence (`None` if the expression has no future occurrence).
    pub next_run: Option<DateTime<Utc>>,
    /// When it last fired.
    pub last_run: Option<DateTime<Utc>>,
    /// The job it last created.
    pub last_job_id: Option<JobId>,
    /// That job's current state (filled when read).
    pub last_job_state: Option<JobState>,
    /// Why the last firing failed or was skipped.
    pub last_error: Option<String>,
    /// When it was first added.
    pub created_at: DateTime<Utc>,
}

/// One atomic claim of a recurring occurrence.
#[derive(Debug, Clone, PartialEq)]
pub struct RecurringClaim {
    /// The recurring job.
    pub id: String,
    /// The `next_run` the claimer saw; the claim fails if it changed.
    pub expected_next: Option<DateTime<Utc>>,
    /// The new `next_run`.
    pub next_run: Option<DateTime<Utc>>,
    /// The job to create, or `None` for a skipped firing.
    pub job: Option<NewJob>,
    /// Recorded as `last_error` (a skip reason), or cleared when `None`.
    pub note: Option<String>,
    /// The current time (recorded as `last_run`).
    pub now: DateTime<Utc>,
}

/// Job counts per state, and Enqueued per queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// Jobs per state (states with none may be missing).
    pub by_state: BTreeMap<JobState, u64>,
    /// Enqueued jobs per queue.
    pub enqueued_by_queue: BTreeMap<String, u64>,
    /// Scheduled jobs that are retries.
    pub retries: u64,
    /// Recurring jobs.
    pub recurring: u64,
    /// Registered servers.
    pub servers: u64,
}

impl StateCounts {
    /// The count of one state.
    pub fn get(&self, state: JobState) -> u64 {
        self.by_state.get(&state).copied().unwrap_or(0)
    }
}

/// Which jobs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobQuery {
    /// Only this state.
    pub state: Option<JobState>,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only names containing this (case-insensitive).
    pub name_contains: Option<String>,
    /// Only arguments whose JSON text contains this (case-insensitive).
    pub args_contains: Option<String>,
    /// Only jobs whose unique key contains this (case-insensitive).
    pub unique_key_contains: Option<String>,
    /// Only Scheduled jobs that are retries.
    pub retries_only: bool,
    /// Skip this many.
    pub offset: usize,
    /// At most this many (0 means 20).
    pub limit: usize,
}

impl JobQuery {
    /// Whether the list runs soonest first (Scheduled jobs, retries included: by run time,
    /// then id), rather than newest state change first (by state time, then id, descending).
    pub fn by_run_time(&self) -> bool {
        self.state == Some(JobState::Scheduled) || self.retries_only
    }
}

/// A page of jobs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobPage {
    /// The jobs on this page (without history).
    pub jobs: Vec<JobRecord>,
    /// How many match in all.
    pub total: u64,
}

/// Buckets of [`Storage::statistics`](super::Storage::statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Granularity {
    /// One point per hour.
    Hour,
    /// One point per day.
    Day,
}

/// Succeeded and failed counts in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatPoint {
    /// The bucket's start.
    pub at: DateTime<Utc>,
    /// Jobs that succeeded in it.
    pub succeeded: u64,
    /// Attempts that failed in it (retries included).
    pub failed: u64,
}
