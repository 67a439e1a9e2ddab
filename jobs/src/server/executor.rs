//! The executor: runs one job as a pipeline: look up the entry → build the invocation →
//! run under timeout and panic capture → turn the result into an [`Outcome`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Shared;
use crate::__private::Invocation;
use crate::clock;
use crate::container::{Container, Scope};
use crate::context::{ContextParts, JobContext};
use crate::job::{Directive, JobError, JobId, JobOptions, OnExhausted, RunResult};
use crate::registry::JobEntry;
use crate::retry::{self, RetryDecision};
use crate::storage::{Completion, FetchedJob, Outcome, StateData};

/// Longest error message kept in a retry reason.
const REASON_MESSAGE_LEN: usize = 200;

/// A worker's own handles on the server's id and container. Every job takes references from
/// them; taken from the server's shared ones, the counters bounced between the cores (three
/// atomic increments per job were three fifths of the executor's own time, perf).
pub(crate) struct Local {
    server_id: Arc<str>,
    container: Arc<dyn Container>,
}

impl Local {
    pub(crate) fn new(shared: &Shared) -> Self {
        Local {
            server_id: Arc::from(&*shared.server_id),
            container: Arc::new(shared.container.clone()),
        }
    }
}

pub(crate) async fn execute(
    shared: &Arc<Shared>,
    local: &Local,
    mut job: FetchedJob,
    token: CancellationToken,
) -> Completion {
    let attempt = job.retry_count + 1;
    let span = tracing::info_span!(
        "job",
        id = %job.id,
        name = %job.name,
        queue = %job.queue,
        attempt,
    );
    async move {
        let started_at = shared.clock.now();
        let latency_ms = (started_at - job.enqueued_at).num_milliseconds().max(0) as u64;
        let started = Instant::now();
        let entry = shared.registry.get(&job.name);
        let result = match entry {
            Some(entry) => run(local, entry, &mut job, attempt, token).await,
            None => Err(JobError::new(
                JobError::UNKNOWN_JOB,
                format!("no job named `{}` is registered in this process", job.name),
            )),
        };
        let data = StateData {
            server: Some(String::from(&*shared.server_id)),
            attempt: Some(attempt),
            duration_ms: Some(started.elapsed().as_millis() as u64),
            latency_ms: Some(latency_ms),
            ..StateData::default()
        };
        let outcome = outcome(shared, entry, &job, attempt, result, data);
        match &outcome {
            Outcome::Succeeded { .. } => tracing::debug!("job succeeded"),
            Outcome::Requeued { reason } => tracing::info!(%reason, "job requeued"),
            Outcome::Snoozed { reason, .. } => tracing::info!(%reason, "job snoozed"),
            Outcome::Cancelled { reason, .. } => tracing::info!(%reason, "job cancelled itself"),
            Outcome::Retry { reason, .. }
            | Outcome::Failed { reason, .. }
            | Outcome::Deleted { reason, .. } => tracing::warn!(%reason, "job failed"),
        }
        completion(shared, local, job.id, outcome)
    }
    .instrument(span)
    .await
}

/// A buffered job the server stopped before it started: back to its place at the head of its
/// queue, untouched.
pub(crate) fn unstarted(shared: &Shared, local: &Local, job: &FetchedJob) -> Completion {
    let reason = format!(
        "server {} shut down before the job started",
        shared.server_id
    );
    completion(shared, local, job.id, Outcome::Requeued { reason })
}

/// The outcome of `id` on this server, now.
fn completion(shared: &Shared, local: &Local, id: JobId, outcome: Outcome) -> Completion {
    Completion {
        id,
        server_id: local.server_id.clone(),
        at: shared.clock.now(),
        outcome,
    }
}

/// Runs the job's function with its timeout, catching panics. The invocation shares the job's
/// texts and takes its parent result (the outcome needs only its id and name).
async fn run(
    local: &Local,
    entry: &'static JobEntry,
    job: &mut FetchedJob,
    attempt: u32,
    token: CancellationToken,
) -> RunResult {
    // Kept only to cancel a job that outran its timeout (the context owns the other copy).
    let on_timeout = entry.options.timeout.map(|_| token.clone());
    let context = JobContext::new(ContextParts {
        id: job.id,
        name: job.name.clone(),
        queue: job.queue.clone(),
        attempt,
        created_at: job.created_at,
        server_id: local.server_id.clone(),
        token,
        parent: job.parent,
        parent_result: job.parent_result.take(),
    });
    let invocation = Invocation {
        args: job.args.clone(),
        context,
        scope: Scope::new(local.container.clone()),
    };
    let running = AssertUnwindSafe((entry.run)(invocation)).catch_unwind();
    let caught = match entry.options.timeout {
        Some(limit) => match tokio::time::timeout(limit, running).await {
            Ok(caught) => caught,
            Err(_) => {
                if let Some(token) = on_timeout {
                    token.cancel();
                }
                return Err(JobError::new(
                    JobError::TIMEOUT,
                    format!("job ran longer than its timeout of {limit:?}"),
                ));
            }
        },
        None => running.await,
    };
    caught.unwrap_or_else(|panic| Err(JobError::from_panic(panic.as_ref())))
}

/// Turns a run's result into the state change to persist.
fn outcome(
    shared: &Shared,
    entry: Option<&'static JobEntry>,
    job: &FetchedJob,
    attempt: u32,
    result: RunResult,
    mut data: StateData,
) -> Outcome {
    let mut error = match result {
        Ok(value) => {
            data.result = value;
            return Outcome::Succeeded { data };
        }
        Err(error) => error,
    };
    if shared.cancel_jobs.is_cancelled() {
        // Shutdown cancelled it: back to the head of the queue, not a failed attempt.
        return Outcome::Requeued {
            reason: format!(
                "server {} shut down while the job ran ({error})",
                shared.server_id
            ),
        };
    }
    let reason_message = truncate(&error.message);
    match error.take_directive() {
        Some(Directive::Snooze(delay)) => {
            return Outcome::Snoozed {
                run_at: clock::add(shared.clock.now(), delay),
                reason: reason_message,
                data,
            };
        }
        Some(Directive::Cancel) => {
            return Outcome::Cancelled {
                reason: format!("cancelled by the job: {reason_message}"),
                data,
            };
        }
        Some(Directive::Fatal) => {
            data.error = Some(error);
            return Outcome::Failed {
                reason: format!("failed, retries skipped: {reason_message}"),
                data,
            };
        }
        None => {}
    }
    let permanent = matches!(
        error.type_name.as_str(),
        JobError::UNKNOWN_JOB | JobError::INVALID_ARGUMENTS
    );
    let decision = if permanent {
        RetryDecision::Exhausted { of: 0 }
    } else {
        // The policy is the user's code, run outside the job's own panic capture: a panic
        // here would end this worker and leave the job Processing under a lease kept alive.
        let policy = shared
            .retry
            .of(entry.map_or(&*job.name, |entry| entry.name));
        match catch_unwind(AssertUnwindSafe(|| retry::decide(policy, attempt, &error))) {
            Ok(decision) => decision,
            Err(panic) => {
                let message = JobError::from_panic(panic.as_ref()).message;
                tracing::error!(?policy, %message, "the retry policy panicked");
                data.error = Some(error);
                return Outcome::Failed {
                    reason: format!(
                        "the retry policy panicked, so the job is not retried: {}",
                        truncate(&message)
                    ),
                    data,
                };
            }
        }
    };
    let reason = match decision {
        RetryDecision::Retry { retry, of, .. } => {
            format!("Retry attempt {retry} of {of}: {reason_message}")
        }
        RetryDecision::Exhausted { .. } if permanent => error.message.clone(),
        RetryDecision::Exhausted { of: 0 } => {
            format!("retries are disabled for this job: {reason_message}")
        }
        RetryDecision::Exhausted { of } => {
            format!("exceeded the maximum of {of} retries: {reason_message}")
        }
    };
    data.error = Some(error);
    match decision {
        RetryDecision::Retry { delay, .. } => Outcome::Retry {
            run_at: clock::add(shared.clock.now(), delay),
            reason,
            data,
        },
        RetryDecision::Exhausted { .. } => match entry
            .map_or(JobOptions::DEFAULT, |entry| entry.options)
            .on_exhausted
        {
            OnExhausted::Delete if !permanent => Outcome::Deleted { reason, data },
            _ => Outcome::Failed { reason, data },
        },
    }
}

fn truncate(message: &str) -> String {
    match message.char_indices().nth(REASON_MESSAGE_LEN) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    }
}
