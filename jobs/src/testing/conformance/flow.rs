//! Flow control: unique jobs, mutexes, job kind and queue limits, paused queues.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::*;
use crate::flow::{Enqueued, JobLimits, QueueLimits, Rate, Uniqueness};

fn unique(name: &str, key: &str, window: Option<Duration>) -> NewJob {
    NewJob {
        unique: Some(Uniqueness {
            key: key.to_owned(),
            window,
        }),
        ..job(name, "default")
    }
}

fn mutex(name: &str, key: &str) -> NewJob {
    NewJob {
        mutex: Some(key.to_owned()),
        ..job(name, "default")
    }
}

fn limited(name: &str, queue: &str) -> NewJob {
    NewJob {
        limited: true,
        ..job(name, queue)
    }
}

async fn enqueue_at(storage: &dyn Storage, jobs: Vec<NewJob>, now: DateTime<Utc>) -> Vec<Enqueued> {
    storage.enqueue(jobs, now).await.expect("enqueue")
}

/// A flow-controlled fetch of `queue` by `server`, for queues that may hold gated jobs.
async fn fetch_flow(
    storage: &dyn Storage,
    server: &str,
    queue: &str,
    limit: usize,
    now: DateTime<Utc>,
) -> Vec<JobId> {
    ids(&fetch_as(storage, server, &[queue], limit, now, true, true).await)
}

/// A flow-controlled fetch of `queue` by `server` that says no gated job is there (a storage
/// may take a cheaper path for queue limits alone).
async fn fetch_limited(
    storage: &dyn Storage,
    server: &str,
    queue: &str,
    limit: usize,
    now: DateTime<Utc>,
) -> Vec<JobId> {
    ids(&fetch_as(storage, server, &[queue], limit, now, true, false).await)
}

fn reasons(record: &JobRecord) -> Vec<String> {
    record
        .history
        .iter()
        .filter_map(|entry| entry.reason.clone())
        .filter(|reason| reason.starts_with("waiting: "))
        .collect()
}

/// A duplicate answers the holder's id and creates nothing; a job of the same call counts; a
/// finished or Failed holder no longer blocks, unless the window says so; the key is stored,
/// read back and searchable.
pub async fn unique_jobs_answer_the_existing_id(storage: Arc<dyn Storage>) {
    let s = storage.as_ref();
    let first = enqueue_at(s, vec![unique("digest", "digest:7", None)], t0()).await;
    assert!(!first[0].duplicate);
    let again = enqueue_at(
        s,
        vec![
            unique("digest", "digest:7", None),
            unique("digest", "digest:8", None),
            unique("digest", "digest:8", None),
        ],
        t0(),
    )
    .await;
    assert_eq!(
        again[0],
        Enqueued {
            id: first[0].id,
            duplicate: true
        }
    );
    assert!(!again[1].duplicate, "a new key is created");
    assert_eq!(
        again[2],
        Enqueued {
            id: again[1].id,
            duplicate: true
        },
        "same call"
    );
    let stored = record(s, first[0].id).await;
    assert_eq!(stored.unique_key.as_deref(), Some("digest:7"));
    let found = s
        .list_jobs(JobQuery {
            unique_key_contains: Some("DIGEST:7".into()),
            ..JobQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(found.total, 1, "the key is searchable");
    assert_eq!(found.jobs[0].id, first[0].id);

    // The holder succeeds: a new job is created.
    fetch(s, 10).await;
    complete(s, first[0].id, SERVER, at(2), succeeded(None)).await;
    let after = enqueue_at(s, vec![unique("digest", "digest:7", None)], at(3)).await;
    assert!(!after[0].duplicate, "a finished holder does not block");

    // A window counts finished jobs created within it.
    let windowed = Some(Duration::from_secs(600));
    let w = enqueue_at(s, vec![unique("report", "report", windowed)], at(10)).await;
    s.delete(w[0].id, "done", at(11)).await.expect("delete");
    let within = enqueue_at(s, vec![unique("report", "report", windowed)], at(600)).await;
    assert_eq!(
        within[0],
        Enqueued {
            id: w[0].id,
            duplicate: true
        }
    );
    let past = enqueue_at(s, vec![unique("report", "report", windowed)], at(611)).await;
    assert!(!past[0].duplicate, "created after the window");

    // One call mixing every answer: each job gets its own, in the call's order.
    let mixed = enqueue_at(
        s,
        vec![
            job("plain-first", "default"),
            unique("report", "report", windowed),
            unique("digest", "digest:7", None),
            unique("digest", "digest:9", None),
            job("plain-last", "default"),
        ],
        at(612),
    )
    .await;
    let held = [
        Enqueued {
            id: past[0].id,
            duplicate: true,
        },
        Enqueued {
            id: after[0].id,
            duplicate: true,
        },
    ];
    assert_eq!(mixed[1..3], held, "held keys answer their holders");
    for (index, name, key) in [
        (0, "plain-first", None),
        (3, "digest", Some("digest:9")),
        (4, "plain-last", None),
    ] {
        assert!(!mixed[index].duplicate, "job {index} is created");
        let created = record(s, mixed[index].id).await;
        assert_eq!(created.name, name, "job {index} answers its own id");
        assert_eq!(created.unique_key.as_deref(), key);
    }
}

/// One job at most holds a key among the non-final states: a job requeued, or re-armed with its
/// requeued parent, while another holds its key comes back without it (it still runs), and its
/// history says which job holds it; with no other holder it keeps its key.
pub async fn a_job_back_from_a_final_state_does_not_take_a_held_key(storage: Arc<dyn Storage>) {
    let s = storage.as_ref();
    let old = enqueue_at(s, vec![unique("digest", "digest:1", None)], t0()).await[0].id;
    s.delete(old, "by hand", at(1)).await.expect("delete");
    let holder = enqueue_at(s, vec![unique("digest", "digest:1", None)], at(2)).await[0];
    assert!(!holder.duplicate, "a deleted job does not hold its key");
    assert!(s
        .requeue(old, "requeued by hand", at(3))
        .await
        .expect("requeue"));
    let requeued = record(s, old).await;
    assert_eq!(
        requeued.state,
        JobState::Enqueued,
        "it is requeued all the same"
    );
    assert_eq!(requeued.unique_key, None);
    assert_eq!(
        last_reason(&requeued),
        Some(format!(
            "requeued by hand; {}",
            Uniqueness::released_note("digest:1", holder.id)
        ))
    );
    let again = enqueue_at(s, vec![unique("digest", "digest:1", None)], at(4)).await[0];
    assert_eq!(again.id, holder.id, "the holder keeps the key");
    assert!(again.duplicate);

    // With no other holder, a requeued job keeps its key.
    let alone = enqueue_at(s, vec![unique("digest", "digest:2", None)], at(5)).await[0].id;
    s.delete(alone, "by hand", at(6)).await.expect("delete");
    s.requeue(alone, "requeued by hand", at(7))
        .await
        .expect("requeue");
    let alone_record = record(s, alone).await;
    assert_eq!(alone_record.unique_key.as_deref(), Some("digest:2"));
    assert_eq!(
        last_reason(&alone_record),
        Some("requeued by hand".to_owned())
    );

    // A continuation re-armed by its requeued parent.
    let parent = enqueue_at(s, vec![job("parent", "default")], at(8)).await[0].id;
    let kid = enqueue_at(
        s,
        vec![NewJob {
            unique: Some(Uniqueness {
                key: "kid:1".to_owned(),
                window: None,
            }),
            ..child("kid", parent, ContinueOn::Succeeded)
        }],
        at(8),
    )
    .await[0]
        .id;
    s.delete(parent, "by hand", at(9)).await.expect("delete");
    assert_eq!(record(s, kid).await.state, JobState::Deleted);
    let kid_holder = enqueue_at(s, vec![unique("kid", "kid:1", None)], at(10)).await[0];
    assert!(!kid_holder.duplicate);
    s.requeue(parent, "requeued by hand", at(11))
        .await
        .expect("requeue");
    let rearmed = record(s, kid).await;
    assert_eq!(rearmed.state, JobState::Awaiting);
    assert_eq!(rearmed.unique_key, None);
    assert_eq!(
        last_reason(&rearmed),
        Some(format!(
            "parent job {parent} was requeued; {}",
            Uniqueness::released_note("kid:1", kid_holder.id)
        ))
    );
}

/// Concurrent enqueues of one key create one job.
pub async fn concurrent_unique_enqueues_create_one_job(storage: Arc<dyn Storage>) {
    for round in 0..4 {
        let key = format!("race:{round}");
        let start = Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (storage, start, key) = (storage.clone(), start.clone(), key.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    storage
                        .enqueue(vec![unique("race", &key, None)], t0())
                        .await
                        .expect("enqueue")[0]
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("task"));
        }
        let created: Vec<_> = answers.iter().filter(|a| !a.duplicate).collect();
        assert_eq!(
            created.len(),
            1,
            "round {round}: one job created: {answers:?}"
        );
        assert!(answers.iter().all(|a| a.id == created[0].id), "{answers:?}");
    }
}

/// At most one job per mutex key runs; the next eligible job is taken instead, and the one
/// passed over says why, once; a plain fetch leaves gated jobs alone.
pub async fn mutex_jobs_run_one_at_a_time(storage: Arc<dyn Storage>) {
    let s = storage.as_ref();
    let ids = enqueue(
        s,
        vec![
            mutex("ledger", "account-1"),
            mutex("ledger", "account-1"),
            mutex("ledger", "account-2"),
            job("plain", "default"),
        ],
    )
    .await;
    assert_eq!(s.gated_queues().await.expect("gated"), vec!["default"]);
    assert!(
        fetch(s, 10).await.iter().all(|job| job.id == ids[3]),
        "a plain fetch takes no gated job"
    );
    let first = fetch_flow(s, SERVER, "default", 10, at(2)).await;
    assert_eq!(first, vec![ids[0], ids[2]]);
    let waiting = record(s, ids[1]).await;
    assert_eq!(waiting.state, JobState::Enqueued);
    assert_eq!(waiting.mutex.as_deref(), Some("account-1"));
    assert_eq!(
        reasons(&waiting),
        vec!["waiting: mutex `account-1` is held by another job"]
    );
    assert!(fetch_flow(s, OTHER, "default", 10, at(3)).await.is_empty());
    assert_eq!(reasons(&record(s, ids[1]).await).len(), 1, "recorded once");
    complete(s, ids[0], SERVER, at(4), succeeded(None)).await;
    assert_eq!(
        fetch_flow(s, OTHER, "default", 10, at(5)).await,
        vec![ids[1]]
    );
    assert!(s.gated_queues().await.expect("gated").is_empty());
}

/// A crashed holder's slot comes back when its lease lapses.
pub async fn a_lapsed_lease_frees_its_mutex(storage: Arc<dyn Storage>) {
    let s = storage.as_ref();
    let ids = enqueue(s, vec![mutex("ledger", "k"), mutex("ledger", "k")]).await;
    assert_eq!(
        fetch_flow(s, SERVER, "default", 10, at(1)).await,
        vec![ids[0]]
    );
    assert!(fetch_flow(s, OTHER, "default", 10, at(30)).await.is_empty());
    // The lease (60 s) lapses: the holder goes back to its place, and runs again first.
    assert_eq!(s.rescue_expired(at(62), 10).await.expect("rescue"), 1);
    assert_eq!(
        fetch_flow(s, OTHER, "default", 10, at(63)).await,
        vec![ids[0]]
    );
}

/// A queue's slot held by a crashed server comes back when the lease lapses.
pub async fn a_lapsed_lease_frees_its_queue_slot(storage: Arc<dyn Storage>) {
    let s = storage.as_ref();
    let ids = enqueue(s, vec![job("a", "solo"), job("b", "solo")]).await;
    s.set_queue_limits("solo", QueueLimits::new().concurrency(1))
        .await
        .expect("limits");
    assert_eq!(fetch_flow(s, SERVER, "solo", 10, at(1)).await, vec![ids[0]]);
    assert!(fetch_limited(s, OTHER, "solo", 10, at(30)).await.is_empty());
    assert_eq!(s.rescue_expired(at(62), 10).await.expect("rescue"), 1);
    assert_eq!(
        fetch_limited(s, OTHER, "solo", 10, at(63)).await,
        vec![ids[0]]
    );
    complete(s, ids[0], OTHER, at(64), succeeded(None)).await;
    assert_eq!(fetch_flow(s, OTHER, "solo", 10, at(65)).await, vec![ids[1]]);
}

/// Fetches that take the cheaper path for queue limits and ones that meet gated jobs count
/// the same claims: together they keep a queue's concurrency limit.
pub async fn queue_limits_hold_across_both_fetch_paths(storage: Arc<dyn Storage>) {
    let s = storage.as_ref();
    let ids = enqueue(s, vec![job("a", "mix"), job("b", "mix"), job("c", "mix")]).await;
    let locked = enqueue(
        s,
        vec![NewJob {
            mutex: Some("m".into()),
            ..job("d", "mix")
        }],
    )
    .await;
    s.set_queue_limits("mix", QueueLimits::new().concurrency(2))
        .await
        .expect("limits");
    assert_eq!(
        fetch_limited(s, SERVER, "mix", 1, at(1)).await,
        vec![ids[0]]
    );
    assert_eq!(fetch_flow(s, OTHER, "mix", 10, at(2)).await, vec![ids[1]]);
    assert!(fetch_limited(s, SERVER, "mix", 10, at(3)).await.is_empty());
    assert!(fetch_flow(s, OTHER, "mix", 10, at(4)).await.is_empty());
    complete(s, ids[0], SERVER, at(5), succeeded(None)).await;
    assert_eq!(
        fetch_limited(s, SERVER, "mix", 10, at(6)).await,
        vec![ids[2]]
    );
    complete(s, ids[1], OTHER, at(7), succeeded(None)).await;
    assert_eq!(
        fetch_flow(s, OTHER, "mix", 10, at(8)).await,
        vec![locked[0]]
    );
}

/// A job kind's concurrency and rate hold across servers; other kinds pass it.
pub async fn job_kind_limits_apply_across_fetches(storage: Arc<dyn Storage>) {
    let s = storage.as_ref();
    s.register_job_limits(&[
        JobLimits {
            name: "partner".into(),
            concurrency: Some(2),
            rate: None,
        },
        JobLimits {
            name: "burst".into(),
            concurrency: None,
            rate: Some(Rate::new(3, Duration::from_secs(60)).expect("rate")),
        },
    ])
    .await
    .expect("register");
    let partner = enqueue(s, (0..4).map(|_| limited("partner", "default")).collect()).await;
    let other = enqueue(s, vec![job("other", "default")]).await;
    assert_eq!(
        fetch_flow(s, SERVER, "default", 10, at(1)).await,
        vec![partner[0], partner[1], other[0]]
    );
    assert!(fetch_flow(s, OTHER, "default", 10, at(2)).await.is_empty());
    assert_eq!(
        reasons(&record(s, partner[2]).await),
        vec!["waiting: `partner` is at its concurrency limit of 2"]
    );
    complete(s, partner[0], SERVER, at(3), succeeded(None)).await;
    assert_eq!(
        fetch_flow(s, OTHER, "default", 10, at(4)).await,
        vec![partner[2]]
    );

    // Windows of 60 s from the epoch; t0 starts one.
    let burst = enqueue(s, (0..5).map(|_| limited("burst", "burst")).collect()).await;
    assert_eq!(
        fetch_flow(s, SERVER, "burst", 10, at(10)).await,
        burst[..3].to_vec()
    );
    assert!(fetch_flow(s, SERVER, "burst", 10, at(59)).await.is_empty());
    assert_eq!(
        reasons(&record(s, burst[3]).await),
        vec!["waiting: `burst` reached its rate limit"]
    );
    assert_eq!(
        fetch_flow(s, SERVER, "burst", 10, at(60)).await,
        burst[3..].to_vec()
    );

    // Registered without limits: removed.
    s.register_job_limits(&[JobLimits {
        name: "partner".into(),
        concurrency: None,
        rate: None,
    }])
    .await
    .expect("register");
    assert_eq!(
        fetch_flow(s, SERVER, "default", 10, at(61)).await,
        vec![partner[3]]
    );
}

/// A queue's concurrency and rate limits, and its pause, hold for every fetch; they are
/// stored and read back.
pub async fn queue_limits_and_pause(storage: Arc<dyn Storage>) {
    let s = storage.as_ref();
    let ids = enqueue(s, (0..6).map(|_| job("q", "partner")).collect()).await;
    s.set_queue_limits("partner", QueueLimits::new().concurrency(2))
        .await
        .expect("limits");
    let settings = s.queue_settings().await.expect("settings");
    assert_eq!(settings.len(), 1);
    assert_eq!(settings[0].queue, "partner");
    assert_eq!(settings[0].limits.concurrency, Some(2));
    assert_eq!(
        fetch_flow(s, SERVER, "partner", 10, at(1)).await,
        ids[..2].to_vec()
    );
    assert!(fetch_flow(s, OTHER, "partner", 10, at(2)).await.is_empty());
    s.set_queue_paused("partner", true).await.expect("pause");
    complete(s, ids[0], SERVER, at(3), succeeded(None)).await;
    assert!(
        fetch_limited(s, OTHER, "partner", 10, at(4))
            .await
            .is_empty(),
        "a paused queue starts nothing"
    );
    let settings = s.queue_settings().await.expect("settings");
    assert!(settings[0].paused);
    assert_eq!(
        settings[0].limits.concurrency,
        Some(2),
        "pausing keeps the limits"
    );
    s.set_queue_paused("partner", false).await.expect("resume");
    assert_eq!(
        fetch_flow(s, OTHER, "partner", 10, at(5)).await,
        vec![ids[2]]
    );

    // A rate of 2 per minute replaces the concurrency limit.
    let rate = QueueLimits::new().rate(2, Duration::from_secs(60));
    s.set_queue_limits("partner", rate).await.expect("limits");
    assert_eq!(
        fetch_flow(s, SERVER, "partner", 10, at(6)).await,
        ids[3..5].to_vec()
    );
    assert!(fetch_flow(s, SERVER, "partner", 10, at(7)).await.is_empty());
    assert_eq!(
        fetch_flow(s, SERVER, "partner", 10, at(60)).await,
        vec![ids[5]]
    );
    assert!(
        reasons(&record(s, ids[5]).await).is_empty(),
        "a queue limit records nothing"
    );

    s.set_queue_limits("partner", QueueLimits::new())
        .await
        .expect("clear");
    assert!(s.queue_settings().await.expect("settings").is_empty());
}

/// The Queues page's read: each queue's jobs per state and its settings.
pub async fn queues_list_counts_and_settings(storage: Arc<dyn Storage>) {
    let s = storage.as_ref();
    let ids = enqueue(
        s,
        vec![job("a", "mail"), job("b", "mail"), job("c", "default")],
    )
    .await;
    fetch_from(s, SERVER, &["mail"], 1, at(1)).await;
    complete(s, ids[2], SERVER, at(2), succeeded(None)).await;
    s.set_queue_paused("idle", true).await.expect("pause");
    let queues = s.queues().await.expect("queues");
    let names: Vec<&str> = queues.iter().map(|info| info.queue.as_str()).collect();
    assert_eq!(names, vec!["default", "idle", "mail"]);
    let mail = &queues[2];
    assert_eq!(mail.counts.get(&JobState::Enqueued), Some(&1));
    assert_eq!(mail.counts.get(&JobState::Processing), Some(&1));
    assert!(!mail.settings.paused);
    assert!(queues[1].settings.paused);
    assert!(queues[1].counts.is_empty());
}
