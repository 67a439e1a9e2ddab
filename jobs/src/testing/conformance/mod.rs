//! The [`Storage`] contract as tests. Every storage runs the same cases:
//!
//! ```ignore
//! async fn setup() -> jobs::MemoryStorage { jobs::MemoryStorage::new() }
//! jobs::conformance_tests!(setup);
//! ```
//!
//! `setup` is an async fn returning a [`Fixture`]: a fresh, empty storage per case (a new
//! schema for a database), torn down after the case. Every case pins time: nothing waits on
//! the wall clock.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::job::{JobError, JobId, JobState};
use crate::storage::*;

// The cases, one file per topic. `conformance_tests!` calls each as `conformance::<case>`,
// hence the re-exports.
mod continuations;
mod dashboard;
mod enqueue;
mod fetch_complete;
mod flow;
mod history;
mod pruning;
mod recurring;
mod retries;
mod servers;

pub use continuations::*;
pub use dashboard::*;
pub use enqueue::*;
pub use fetch_complete::*;
pub use flow::*;
pub use history::*;
pub use pruning::*;
pub use recurring::*;
pub use retries::*;
pub use servers::*;

/// A fresh storage for one conformance case.
pub trait Fixture: Send {
    /// The storage under test.
    fn storage(&self) -> Arc<dyn Storage>;
    /// Cleans up after the case (drop a schema, ...).
    fn teardown(self) -> impl Future<Output = ()> + Send;
}

impl Fixture for MemoryStorage {
    fn storage(&self) -> Arc<dyn Storage> {
        Arc::new(self.clone())
    }

    async fn teardown(self) {}
}

/// Generates one `#[tokio::test]` per conformance case, each on a fresh fixture from `$setup`
/// (an async fn returning a [`Fixture`]).
#[macro_export]
macro_rules! conformance_tests {
    ($setup:path) => {
        $crate::conformance_tests!(@cases $setup;
            enqueue_then_fetch_is_fifo,
            fetch_follows_queue_priority,
            fetch_follows_job_priority_within_a_queue,
            fetch_serves_only_given_queues,
            concurrent_fetchers_never_share_a_job,
            fetch_records_processing,
            succeeded_stores_result_and_history,
            completion_needs_the_lease,
            completion_after_delete_keeps_deleted,
            retry_schedules_then_promotes,
            a_retry_due_at_once_is_enqueued,
            snoozed_and_cancelled_outcomes,
            failed_and_deleted_outcomes,
            requeued_outcome_keeps_queue_position,
            scheduled_jobs_promote_at_their_time,
            lapsed_lease_is_rescued,
            keep_alive_reports_lost_jobs,
            delete_and_requeue,
            a_succeeded_job_keeps_its_history_when_requeued_and_deleted,
            a_worker_success_reads_back_whole,
            missing_job_is_an_error,
            many_jobs_read_at_once,
            prune_respects_retention,
            leadership_is_exclusive,
            server_registry,
            continuation_runs_after_parent_succeeds,
            continuation_delete_cascades,
            continuation_missing_parent_is_an_error,
            enqueue_refuses_invalid_queue_names,
            continuation_of_finished_parent_moves_at_once,
            continuation_conditions,
            requeued_parent_rearms_deleted_children,
            continuations_added_while_parents_finish,
            continuation_reasons_are_the_same_everywhere,
            history_entries_carry_their_data,
            recurring_upsert_list_pause_remove,
            recurring_claim_is_atomic,
            counts_and_listing,
            scheduled_jobs_list_soonest_first,
            statistics_per_hour,
            unique_jobs_answer_the_existing_id,
            a_job_back_from_a_final_state_does_not_take_a_held_key,
            concurrent_unique_enqueues_create_one_job,
            mutex_jobs_run_one_at_a_time,
            a_lapsed_lease_frees_its_mutex,
            a_lapsed_lease_frees_its_queue_slot,
            queue_limits_hold_across_both_fetch_paths,
            job_kind_limits_apply_across_fetches,
            queue_limits_and_pause,
            queues_list_counts_and_settings,
        );
    };
    (@cases $setup:path; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $setup().await;
                let storage = $crate::testing::conformance::Fixture::storage(&fixture);
                $crate::testing::conformance::$case(storage).await;
                $crate::testing::conformance::Fixture::teardown(fixture).await;
            }
        )*
    };
}

/// The fixed time every case starts at.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(seconds)
}

fn job(name: &str, queue: &str) -> NewJob {
    NewJob::plain(
        name,
        queue,
        &format!(r#"{{"name":"{name}"}}"#),
        InitialState::Enqueued,
    )
}

fn child(name: &str, parent: JobId, on: ContinueOn) -> NewJob {
    NewJob {
        initial: InitialState::Awaiting { parent, on },
        ..job(name, "default")
    }
}

const SERVER: &str = "server-a";
const OTHER: &str = "server-b";

fn queues(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

async fn enqueue(storage: &dyn Storage, jobs: Vec<NewJob>) -> Vec<JobId> {
    storage
        .enqueue(jobs, t0())
        .await
        .expect("enqueue")
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect()
}

async fn fetch_from(
    storage: &dyn Storage,
    server: &str,
    queue_names: &[&str],
    limit: usize,
    now: DateTime<Utc>,
) -> Vec<FetchedJob> {
    fetch_as(storage, server, queue_names, limit, now, false, false).await
}

/// A fetch by `server`, with flow control (for queues that may hold gated jobs, or not) or
/// without, leasing for 60 s.
async fn fetch_as(
    storage: &dyn Storage,
    server: &str,
    queue_names: &[&str],
    limit: usize,
    now: DateTime<Utc>,
    flow: bool,
    gated: bool,
) -> Vec<FetchedJob> {
    let queues = queues(queue_names);
    storage
        .fetch(FetchRequest {
            server_id: server,
            queues: &queues,
            limit,
            capacity: limit,
            now,
            lease_until: now + TimeDelta::seconds(60),
            flow,
            gated,
        })
        .await
        .expect("fetch")
}

async fn fetch(storage: &dyn Storage, limit: usize) -> Vec<FetchedJob> {
    fetch_from(storage, SERVER, &["default"], limit, at(1)).await
}

fn ids(fetched: &[FetchedJob]) -> Vec<JobId> {
    fetched.iter().map(|job| job.id).collect()
}

async fn record(storage: &dyn Storage, id: JobId) -> JobRecord {
    storage
        .job(id)
        .await
        .expect("job")
        .unwrap_or_else(|| panic!("job {id} should exist"))
}

async fn state(storage: &dyn Storage, id: JobId) -> JobState {
    record(storage, id).await.state
}

/// The reason of the job's last history entry.
fn last_reason(record: &JobRecord) -> Option<String> {
    record.history.last().and_then(|entry| entry.reason.clone())
}

fn states(record: &JobRecord) -> Vec<JobState> {
    record.history.iter().map(|entry| entry.state).collect()
}

async fn complete(
    storage: &dyn Storage,
    id: JobId,
    server: &str,
    now: DateTime<Utc>,
    outcome: Outcome,
) {
    storage
        .complete(&[Completion {
            id,
            server_id: server.into(),
            at: now,
            outcome,
        }])
        .await
        .expect("complete");
}

fn succeeded(result: Option<serde_json::Value>) -> Outcome {
    Outcome::Succeeded {
        data: StateData {
            result,
            duration_ms: Some(5),
            ..StateData::default()
        },
    }
}

fn error_data() -> StateData {
    StateData {
        error: Some(JobError::new("test::Error", "boom")),
        ..StateData::default()
    }
}
