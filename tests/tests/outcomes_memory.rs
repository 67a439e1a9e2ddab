//! End-to-end: a job that snoozes, fails fatally or cancels itself (`JobError::snooze`,
//! `fatal`, `cancel`), returned through `anyhow::Error` or as a `JobError`, run by a `Server`
//! on `MemoryStorage`.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::anyhow;
use jobs::prelude::*;
use jobs::JobError;
use support::*;

static SNOOZE_RUNS: AtomicU32 = AtomicU32::new(0);

/// Snoozes on its first run; succeeds on the next, returning the attempt it is on.
#[job(retries = 3)]
async fn snoozes_once(ctx: JobContext) -> anyhow::Result<u32> {
    if SNOOZE_RUNS.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(JobError::snooze(Duration::from_millis(50)).into());
    }
    Ok(ctx.attempt())
}

/// Retries left, but the error is one no retry mends.
#[job(retries = 5, retry_delays = [0])]
async fn card_rejected() -> anyhow::Result<()> {
    Err(JobError::fatal(anyhow!("card rejected")).into())
}

/// Returns a `JobError` as its own error type.
#[job(retries = 5)]
async fn order_gone(order: u64) -> Result<(), JobError> {
    Err(JobError::cancel(format!("order {order} no longer exists")))
}

/// Runs after its parent finishes, however it finished.
#[job]
async fn after_any() -> anyhow::Result<u32> {
    Ok(7)
}

#[tokio::test]
async fn a_snoozed_job_runs_again_later_without_spending_an_attempt() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let id = SnoozesOnce::new().enqueue(&client).await.unwrap();
    let server = fast(storage).build().unwrap().start().await.unwrap();
    let record = wait_state(&client, id, JobState::Succeeded).await;
    assert_eq!(record.result, Some(serde_json::json!(1)), "still attempt 1");
    assert_eq!(record.retry_count, 0);
    assert_eq!(record.error, None);
    assert_eq!(
        states(&record),
        [
            JobState::Enqueued,
            JobState::Processing,
            JobState::Scheduled,
            JobState::Enqueued,
            JobState::Processing,
            JobState::Succeeded
        ]
    );
    assert_eq!(
        record.history[2].reason.as_deref(),
        Some("snoozed for 50ms")
    );
    assert!(record.history[3].at >= record.history[2].data.run_at.unwrap());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_fatal_error_fails_the_job_with_its_retries_left() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let id = CardRejected::new().enqueue(&client).await.unwrap();
    let server = fast(storage).build().unwrap().start().await.unwrap();
    let record = wait_state(&client, id, JobState::Failed).await;
    assert_eq!(record.retry_count, 1, "one attempt, none retried");
    assert_eq!(
        last_reason(&record),
        "failed, retries skipped: card rejected"
    );
    let error = record.error.unwrap();
    assert_eq!(error.type_name, "anyhow::Error");
    assert_eq!(error.message, "card rejected");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_job_that_cancels_itself_is_deleted_and_its_continuations_decided() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let id = OrderGone::new(42).enqueue(&client).await.unwrap();
    let after = client
        .continue_after_with(id, &AfterAny::new(), ContinueOn::AnyFinished)
        .await
        .unwrap();
    let server = fast(storage).build().unwrap().start().await.unwrap();
    let record = wait_state(&client, id, JobState::Deleted).await;
    assert_eq!(record.retry_count, 0, "not a failed attempt");
    assert_eq!(
        last_reason(&record),
        "cancelled by the job: order 42 no longer exists"
    );
    assert_eq!(record.error, None);
    let after = wait_state(&client, after, JobState::Succeeded).await;
    assert_eq!(after.result, Some(serde_json::json!(7)));
    server.shutdown().await.unwrap();
}
