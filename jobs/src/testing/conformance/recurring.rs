//! Recurring jobs: definitions kept by id, and one job per occurrence however many claim it.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::job::JobState;
use crate::storage::*;

use super::{at, job, record, t0};

fn recurring(id: &str, next: Option<DateTime<Utc>>) -> RecurringJob {
    RecurringJob {
        id: id.to_owned(),
        cron: "0 * * * *".to_owned(),
        time_zone: "UTC".to_owned(),
        job_name: "report".to_owned(),
        queue: "default".to_owned(),
        priority: crate::job::DEFAULT_PRIORITY,
        mutex: None,
        limited: false,
        args: "{}".to_owned(),
        misfire: Misfire::FireOnce,
        skip_if_running: false,
        paused: false,
        next_run: next,
        last_run: None,
        last_job_id: None,
        last_job_state: None,
        last_error: None,
        created_at: t0(),
    }
}

/// Recurring jobs are upserted by id (keeping their creation time), listed, paused, removed.
pub async fn recurring_upsert_list_pause_remove(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    storage
        .upsert_recurring(recurring("b", Some(at(3600))))
        .await
        .expect("upsert");
    storage
        .upsert_recurring(recurring("a", Some(at(3600))))
        .await
        .expect("upsert");
    let updated = RecurringJob {
        cron: "*/5 * * * *".into(),
        created_at: at(999),
        next_run: Some(at(300)),
        ..recurring("a", None)
    };
    storage
        .upsert_recurring(updated)
        .await
        .expect("upsert again");
    let listed = storage.list_recurring().await.expect("list");
    assert_eq!(
        listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        vec!["a", "b"]
    );
    let a = storage
        .recurring("a")
        .await
        .expect("get")
        .expect("a exists");
    assert_eq!(
        (a.cron.as_str(), a.created_at, a.next_run),
        ("*/5 * * * *", t0(), Some(at(300)))
    );
    assert_eq!(
        storage.due_recurring(at(300), 10).await.expect("due").len(),
        1
    );
    assert!(storage
        .set_recurring_paused("a", true)
        .await
        .expect("pause"));
    assert!(
        storage
            .due_recurring(at(300), 10)
            .await
            .expect("due")
            .is_empty(),
        "paused jobs are not due"
    );
    assert!(storage
        .set_recurring_paused("a", false)
        .await
        .expect("resume"));
    assert!(!storage
        .set_recurring_paused("missing", true)
        .await
        .expect("pause missing"));
    assert!(storage.remove_recurring("a").await.expect("remove"));
    assert!(!storage.remove_recurring("a").await.expect("remove again"));
    assert!(storage.recurring("a").await.expect("get").is_none());
}

/// Of many servers claiming one occurrence at once, exactly one creates its job.
pub async fn recurring_claim_is_atomic(storage: Arc<dyn Storage>) {
    storage
        .upsert_recurring(recurring("hourly", Some(at(3600))))
        .await
        .expect("upsert");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let storage = storage.clone();
        tasks.push(tokio::spawn(async move {
            let claim = RecurringClaim {
                id: "hourly".into(),
                expected_next: Some(at(3600)),
                next_run: Some(at(7200)),
                job: Some(NewJob {
                    recurring: Some(RecurringOrigin {
                        id: "hourly".into(),
                        occurrence: at(3600),
                    }),
                    ..job("report", "default")
                }),
                note: None,
                now: at(3600),
            };
            storage.claim_recurring(claim).await.expect("claim")
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        if let Some(job) = task.await.expect("claim task") {
            created.push(job);
        }
    }
    assert_eq!(created.len(), 1, "exactly one claim wins");
    let id = created[0].expect("the winner created a job");
    let record = record(storage.as_ref(), id).await;
    assert_eq!(
        (record.state, record.recurring_id.as_deref()),
        (JobState::Enqueued, Some("hourly"))
    );
    let first = &record.history[0];
    assert_eq!(
        first.reason.as_deref(),
        Some("fired by recurring job `hourly`")
    );
    assert_eq!(first.data.occurrence, Some(at(3600)));
    let after = storage
        .recurring("hourly")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (after.next_run, after.last_run, after.last_job_id),
        (Some(at(7200)), Some(at(3600)), Some(id))
    );
    assert_eq!(after.last_job_state, Some(JobState::Enqueued));
    // A skipped firing moves next_run and records why, creating nothing.
    let skip = RecurringClaim {
        id: "hourly".into(),
        expected_next: Some(at(7200)),
        next_run: Some(at(10800)),
        job: None,
        note: Some("skipped: previous run still in flight".into()),
        now: at(7200),
    };
    assert_eq!(
        storage.claim_recurring(skip).await.expect("skip"),
        Some(None)
    );
    let after = storage
        .recurring("hourly")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(
        (after.next_run, after.last_job_id),
        (Some(at(10800)), Some(id))
    );
    assert_eq!(
        after.last_error.as_deref(),
        Some("skipped: previous run still in flight")
    );
    let stale = RecurringClaim {
        id: "hourly".into(),
        expected_next: Some(at(3600)),
        next_run: Some(at(7200)),
        job: None,
        note: None,
        now: at(7300),
    };
    assert_eq!(
        storage.claim_recurring(stale).await.expect("stale claim"),
        None
    );
}
