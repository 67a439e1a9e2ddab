//! Retries and scheduled jobs: Scheduled (or Enqueued when due at once), promoted at their time.

use std::sync::Arc;

use crate::job::JobState;
use crate::storage::*;

use super::{
    at, complete, enqueue, error_data, fetch, fetch_from, ids, job, last_reason, record, state,
    SERVER,
};

/// A retry is Scheduled with its reason, counts the failure, and is enqueued at its time.
pub async fn retry_schedules_then_promotes(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let id = enqueue(storage, vec![job("a", "default")]).await[0];
    fetch(storage, 1).await;
    let reason = "Retry attempt 1 of 10: boom".to_owned();
    complete(
        storage,
        id,
        SERVER,
        at(2),
        Outcome::Retry {
            run_at: at(32),
            reason: reason.clone(),
            data: error_data(),
        },
    )
    .await;
    let scheduled = record(storage, id).await;
    assert_eq!(scheduled.state, JobState::Scheduled);
    assert_eq!(scheduled.run_at, Some(at(32)));
    assert_eq!(scheduled.retry_count, 1);
    assert_eq!(
        scheduled.error.as_ref().map(|e| e.message.as_str()),
        Some("boom")
    );
    assert_eq!(last_reason(&scheduled), Some(reason));
    assert_eq!(
        storage
            .promote_scheduled(at(31), 100)
            .await
            .expect("promote"),
        0
    );
    assert_eq!(
        storage
            .promote_scheduled(at(32), 100)
            .await
            .expect("promote"),
        1
    );
    assert_eq!(state(storage, id).await, JobState::Enqueued);
    let again = fetch_from(storage, SERVER, &["default"], 1, at(33)).await;
    assert_eq!(ids(&again), vec![id]);
    assert_eq!(again[0].retry_count, 1);
}

/// A retry due no later than the attempt's end is Enqueued at once (at its place in the
/// queue, the failed attempt counted), not Scheduled for the next promotion.
pub async fn a_retry_due_at_once_is_enqueued(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let id = enqueue(storage, vec![job("retried", "default")]).await[0];
    fetch(storage, 1).await;
    complete(
        storage,
        id,
        SERVER,
        at(2),
        Outcome::Retry {
            run_at: at(2),
            reason: "Retry attempt 1 of 3: boom".into(),
            data: error_data(),
        },
    )
    .await;
    let record = record(storage, id).await;
    assert_eq!(record.state, JobState::Enqueued);
    assert_eq!(record.retry_count, 1);
    let last = record.history.last().expect("history");
    assert_eq!(last.reason.as_deref(), Some("Retry attempt 1 of 3: boom"));
    assert!(last.data.error.is_some(), "the error is kept: {last:?}");
    let again = fetch_from(storage, SERVER, &["default"], 1, at(2)).await;
    assert_eq!(ids(&again), [id], "fetched again with no promotion");
}

/// A scheduled job becomes Enqueued at its time, not before.
pub async fn scheduled_jobs_promote_at_their_time(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let scheduled = NewJob {
        initial: InitialState::Scheduled { at: at(60) },
        ..job("later", "default")
    };
    let id = enqueue(storage, vec![scheduled]).await[0];
    let record = record(storage, id).await;
    assert_eq!(
        (record.state, record.run_at),
        (JobState::Scheduled, Some(at(60)))
    );
    assert!(fetch(storage, 1).await.is_empty());
    assert_eq!(
        storage
            .promote_scheduled(at(59), 10)
            .await
            .expect("promote"),
        0
    );
    assert_eq!(
        storage
            .promote_scheduled(at(60), 10)
            .await
            .expect("promote"),
        1
    );
    assert_eq!(
        super::record(storage, id)
            .await
            .history
            .last()
            .and_then(|e| e.reason.clone()),
        Some(MaintenanceReason::PROMOTED.to_owned())
    );
    assert_eq!(
        ids(&fetch_from(storage, SERVER, &["default"], 1, at(61)).await),
        vec![id]
    );
}

/// A snoozed job waits Scheduled for its time without spending an attempt (due at once, it is
/// Enqueued at its place); a job that cancelled itself is Deleted, not a failed attempt, and
/// its continuations are decided as for a deletion. Neither counts as a failed attempt in the
/// statistics.
pub async fn snoozed_and_cancelled_outcomes(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let created = enqueue(
        storage,
        vec![
            job("snoozed", "default"),
            job("snoozed-now", "default"),
            job("cancelled", "default"),
            job("behind", "default"),
        ],
    )
    .await;
    let [snoozed, now, cancelled, behind] = created[..] else {
        panic!("four ids: {created:?}");
    };
    let on_any = enqueue(
        storage,
        vec![
            super::child("after-any", cancelled, ContinueOn::AnyFinished),
            super::child("after-success", cancelled, ContinueOn::Succeeded),
        ],
    )
    .await;
    fetch(storage, 3).await;
    let attempt = || StateData {
        server: Some(SERVER.to_owned()),
        attempt: Some(1),
        ..StateData::default()
    };
    complete(
        storage,
        snoozed,
        SERVER,
        at(2),
        Outcome::Snoozed {
            run_at: at(62),
            reason: "snoozed for 60s".into(),
            data: attempt(),
        },
    )
    .await;
    complete(
        storage,
        now,
        SERVER,
        at(2),
        Outcome::Snoozed {
            run_at: at(2),
            reason: "snoozed for 0ns".into(),
            data: attempt(),
        },
    )
    .await;
    complete(
        storage,
        cancelled,
        SERVER,
        at(3),
        Outcome::Cancelled {
            reason: "cancelled by the job: order gone".into(),
            data: attempt(),
        },
    )
    .await;

    let record_of_snoozed = record(storage, snoozed).await;
    assert_eq!(record_of_snoozed.state, JobState::Scheduled);
    assert_eq!(record_of_snoozed.run_at, Some(at(62)));
    assert_eq!(record_of_snoozed.retry_count, 0, "no attempt spent");
    assert_eq!(record_of_snoozed.error, None);
    let last = record_of_snoozed.history.last().expect("an entry");
    assert_eq!(last.reason.as_deref(), Some("snoozed for 60s"));
    assert_eq!(last.data.run_at, Some(at(62)));

    let record_of_cancelled = record(storage, cancelled).await;
    assert_eq!(record_of_cancelled.state, JobState::Deleted);
    assert_eq!(record_of_cancelled.retry_count, 0, "not a failed attempt");
    assert_eq!(
        record_of_cancelled
            .history
            .last()
            .and_then(|e| e.reason.clone()),
        Some("cancelled by the job: order gone".to_owned())
    );
    assert_eq!(state(storage, on_any[0]).await, JobState::Enqueued);
    assert_eq!(state(storage, on_any[1]).await, JobState::Deleted);

    let again = fetch_from(storage, SERVER, &["default"], 10, at(4)).await;
    assert_eq!(
        ids(&again),
        vec![now, behind, on_any[0]],
        "snoozed with no delay: back at its place, ahead of the released continuation"
    );
    assert_eq!(again[0].retry_count, 0);

    let points = storage
        .statistics(Granularity::Hour, at(0), at(3600))
        .await
        .expect("statistics");
    assert_eq!(
        points.iter().map(|p| p.failed).sum::<u64>(),
        0,
        "no failed attempt counted"
    );
    assert_eq!(
        storage
            .promote_scheduled(at(62), 10)
            .await
            .expect("promote"),
        1
    );
    assert_eq!(state(storage, snoozed).await, JobState::Enqueued);
}
