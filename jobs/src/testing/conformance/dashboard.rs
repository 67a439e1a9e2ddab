//! What the dashboard reads: counts, job lists and statistics.

use std::collections::HashSet;
use std::sync::Arc;

use crate::job::{JobId, JobState};
use crate::storage::*;

use super::{at, complete, enqueue, error_data, fetch, fetch_from, job, succeeded, t0, SERVER};

/// Counts per state and queue; listing filters, searches and pages.
pub async fn counts_and_listing(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let mut jobs = vec![
        job("send_email", "default"),
        job("send_email", "default"),
        job("charge", "critical"),
    ];
    jobs[1].args = r#"{"to":"ada@example.com"}"#.into();
    jobs.push(NewJob {
        initial: InitialState::Scheduled { at: at(100) },
        ..job("later", "default")
    });
    let created = enqueue(storage, jobs).await;
    fetch_from(storage, SERVER, &["critical"], 1, at(1)).await;
    complete(
        storage,
        created[2],
        SERVER,
        at(2),
        Outcome::Retry {
            run_at: at(50),
            reason: "Retry attempt 1 of 10: boom".into(),
            data: error_data(),
        },
    )
    .await;
    let counts = storage.counts().await.expect("counts");
    assert_eq!(counts.get(JobState::Enqueued), 2);
    assert_eq!(counts.get(JobState::Scheduled), 2);
    assert_eq!(counts.retries, 1);
    assert_eq!(counts.enqueued_by_queue.get("default"), Some(&2));
    assert_eq!(counts.enqueued_by_queue.get("critical"), None);
    let by_name = storage
        .list_jobs(JobQuery {
            name_contains: Some("EMAIL".into()),
            ..JobQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(by_name.total, 2);
    let by_args = storage
        .list_jobs(JobQuery {
            args_contains: Some("ada@".into()),
            ..JobQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(
        by_args.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![created[1]]
    );
    let retries = storage
        .list_jobs(JobQuery {
            state: Some(JobState::Scheduled),
            retries_only: true,
            ..JobQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(
        retries.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![created[2]]
    );
    let page1 = storage
        .list_jobs(JobQuery {
            limit: 3,
            ..JobQuery::default()
        })
        .await
        .expect("list");
    let page2 = storage
        .list_jobs(JobQuery {
            limit: 3,
            offset: 3,
            ..JobQuery::default()
        })
        .await
        .expect("list");
    assert_eq!((page1.total, page1.jobs.len(), page2.jobs.len()), (4, 3, 1));
    let first_page_ids: HashSet<_> = page1.jobs.iter().map(|j| j.id).collect();
    assert!(
        !first_page_ids.contains(&page2.jobs[0].id),
        "pages do not overlap"
    );
    assert_eq!(page1.jobs[0].id, created[2], "newest state change first");
    let queue = storage
        .list_jobs(JobQuery {
            state: Some(JobState::Enqueued),
            queue: Some("default".into()),
            ..JobQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(queue.total, 2);
}

async fn listed(storage: &dyn Storage, query: JobQuery) -> Vec<JobId> {
    let page = storage.list_jobs(query).await.expect("list");
    page.jobs.iter().map(|job| job.id).collect()
}

/// Scheduled jobs, retries included, are listed soonest run first, whenever they were
/// scheduled; other lists keep the newest state change first.
pub async fn scheduled_jobs_list_soonest_first(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    // Scheduled one after the other, to run in another order.
    let mut delayed = Vec::new();
    for (i, (name, run_at)) in [("c", 300), ("a", 100), ("b", 200)].into_iter().enumerate() {
        let scheduled = NewJob {
            initial: InitialState::Scheduled { at: at(run_at) },
            ..job(name, "default")
        };
        let seconds = i64::try_from(i).expect("small");
        delayed.extend(
            storage
                .enqueue(vec![scheduled], at(seconds))
                .await
                .expect("schedule")
                .into_iter()
                .map(|enqueued| enqueued.id),
        );
    }
    let [c, a, b] = delayed[..] else {
        panic!("three jobs scheduled, got {delayed:?}");
    };
    // Two retries: the one that failed later runs sooner.
    let failing = enqueue(storage, vec![job("r1", "retry"), job("r2", "retry")]).await;
    fetch_from(storage, SERVER, &["retry"], 2, at(10)).await;
    for (id, failed_at, run_at) in [(failing[0], 11, 250), (failing[1], 12, 150)] {
        let retry = Outcome::Retry {
            run_at: at(run_at),
            reason: "Retry attempt 1 of 10: boom".into(),
            data: error_data(),
        };
        complete(storage, id, SERVER, at(failed_at), retry).await;
    }
    let (r1, r2) = (failing[0], failing[1]);
    let scheduled = JobQuery {
        state: Some(JobState::Scheduled),
        ..JobQuery::default()
    };
    assert_eq!(
        listed(storage, scheduled.clone()).await,
        vec![a, r2, b, r1, c]
    );
    let second_page = JobQuery {
        offset: 2,
        limit: 2,
        ..scheduled
    };
    assert_eq!(listed(storage, second_page).await, vec![b, r1]);
    let retries = JobQuery {
        state: Some(JobState::Scheduled),
        retries_only: true,
        ..JobQuery::default()
    };
    assert_eq!(listed(storage, retries).await, vec![r2, r1]);
    assert_eq!(
        listed(storage, JobQuery::default()).await,
        vec![r2, r1, b, a, c],
        "every job: newest state change first"
    );
}

/// Succeeded jobs and failed attempts are counted per hour.
pub async fn statistics_per_hour(storage: Arc<dyn Storage>) {
    let storage = storage.as_ref();
    let created = enqueue(
        storage,
        vec![
            job("a", "default"),
            job("b", "default"),
            job("c", "default"),
        ],
    )
    .await;
    fetch(storage, 3).await;
    complete(storage, created[0], SERVER, at(10), succeeded(None)).await;
    complete(storage, created[1], SERVER, at(3700), succeeded(None)).await;
    complete(
        storage,
        created[2],
        SERVER,
        at(3700),
        Outcome::Failed {
            reason: "x".into(),
            data: error_data(),
        },
    )
    .await;
    let points = storage
        .statistics(Granularity::Hour, t0(), at(3 * 3600))
        .await
        .expect("statistics");
    let summary: Vec<_> = points
        .iter()
        .map(|p| (p.at, p.succeeded, p.failed))
        .collect();
    assert_eq!(
        summary,
        vec![(t0(), 1, 0), (at(3600), 1, 1), (at(7200), 0, 0)]
    );
    let days = storage
        .statistics(Granularity::Day, t0(), at(3600))
        .await
        .expect("statistics");
    assert_eq!(
        days.iter()
            .map(|p| (p.succeeded, p.failed))
            .collect::<Vec<_>>(),
        vec![(2, 1)]
    );
}
