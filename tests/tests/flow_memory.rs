//! End-to-end flow control on `MemoryStorage`: mutexes and limits held across two servers,
//! paused queues, unique jobs, and the errors of bad settings.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use jobs::prelude::*;
use jobs::storage::{JobQuery, Storage};
use jobs::{Error, MAX_UNIQUE_KEY_BYTES};
use support::*;

/// Jobs running now, per key, and the most seen at once.
#[derive(Default)]
struct Overlaps {
    running: BTreeMap<String, u32>,
    most: BTreeMap<String, u32>,
}

static OVERLAPS: Mutex<Overlaps> = Mutex::new(Overlaps {
    running: BTreeMap::new(),
    most: BTreeMap::new(),
});

/// Counts itself running under `key` for a few milliseconds.
async fn hold(key: String) {
    {
        let mut overlaps = OVERLAPS.lock().unwrap_or_else(|e| e.into_inner());
        let running = overlaps.running.entry(key.clone()).or_default();
        *running += 1;
        let now = *running;
        let most = overlaps.most.entry(key.clone()).or_default();
        *most = (*most).max(now);
    }
    // Long enough for the other server's fetch to come by while it runs.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut overlaps = OVERLAPS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(running) = overlaps.running.get_mut(&key) {
        *running -= 1;
    }
}

fn most(key: &str) -> u32 {
    let overlaps = OVERLAPS.lock().unwrap_or_else(|e| e.into_inner());
    overlaps.most.get(key).copied().unwrap_or(0)
}

/// At most one per account at once.
#[job(queue = "ledger", mutex = "account-{account}")]
async fn rebuild_ledger(account: u32, n: u32) {
    let _ = n;
    hold(format!("account-{account}")).await;
}

/// At most two at once, across servers.
#[job(queue = "partner", concurrency = 2)]
async fn call_partner(n: u32) {
    let _ = n;
    hold("call_partner".to_owned()).await;
}

/// A job of a limited queue.
#[job(queue = "limited")]
async fn limited_work(n: u32) {
    let _ = n;
    hold("limited".to_owned()).await;
}

static MAIL_RUNS: AtomicU32 = AtomicU32::new(0);

#[job(queue = "mail")]
async fn send_mail(n: u32) {
    let _ = n;
    MAIL_RUNS.fetch_add(1, Ordering::SeqCst);
}

#[job(queue = "other")]
async fn other_work() {}

#[job(queue = "digest", unique)]
async fn send_digest(user: u32) {
    let _ = user;
}

fn two_servers(storage: &MemoryStorage, queue: &str) -> [jobs::ServerBuilder; 2] {
    [0, 1].map(|_| fast(storage.clone()).queues([queue]).workers(4))
}

async fn run_all(client: &Client, servers: [jobs::ServerBuilder; 2], ids: &[JobId]) {
    let mut handles = Vec::new();
    for server in servers {
        handles.push(server.build().expect("build").start().await.expect("start"));
    }
    for id in ids {
        wait_state(client, *id, JobState::Succeeded).await;
    }
    for handle in handles {
        handle.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutex_jobs_of_one_key_never_overlap_across_two_servers() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(
            RebuildLedger::new(n % 4, n)
                .enqueue(&client)
                .await
                .expect("enqueue"),
        );
    }
    let record = client.job(ids[0]).await.expect("job");
    assert_eq!(record.mutex.as_deref(), Some("account-0"));
    run_all(&client, two_servers(&storage, "ledger"), &ids).await;
    for account in 0..4 {
        assert_eq!(most(&format!("account-{account}")), 1, "account {account}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_kind_concurrency_limit_holds_across_two_servers() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let jobs: Vec<CallPartner> = (0..30).map(CallPartner::new).collect();
    let ids = client.enqueue_many(&jobs).await.expect("enqueue");
    run_all(&client, two_servers(&storage, "partner"), &ids).await;
    assert_eq!(most("call_partner"), 2, "two at once, never more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_limit_set_on_the_client_holds_for_every_server() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    client
        .set_queue_limits("limited", QueueLimits::new().concurrency(3))
        .await
        .expect("limits");
    let jobs: Vec<LimitedWork> = (0..30).map(LimitedWork::new).collect();
    let ids = client.enqueue_many(&jobs).await.expect("enqueue");
    run_all(&client, two_servers(&storage, "limited"), &ids).await;
    assert_eq!(most("limited"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_queue_waits_until_resumed() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    client.pause_queue("mail").await.expect("pause");
    let mail = SendMail::new(1).enqueue(&client).await.expect("enqueue");
    let other = OtherWork::new().enqueue(&client).await.expect("enqueue");
    // A server started after the pause obeys it: it runs the other queue's job, behind the
    // paused one in its queue order, and leaves the mail.
    let server = fast(storage.clone())
        .queues(["mail", "other"])
        .build()
        .expect("build")
        .start()
        .await
        .expect("start");
    wait_state(&client, other, JobState::Succeeded).await;
    assert_eq!(
        client.job(mail).await.expect("job").state,
        JobState::Enqueued
    );
    assert_eq!(MAIL_RUNS.load(Ordering::SeqCst), 0);
    let paused = client.queues().await.expect("queues");
    let info = paused
        .iter()
        .find(|info| info.queue == "mail")
        .expect("mail");
    assert!(info.settings.paused);
    assert_eq!(info.counts.get(&JobState::Enqueued), Some(&1));
    client.resume_queue("mail").await.expect("resume");
    wait_state(&client, mail, JobState::Succeeded).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_unique_job_answers_the_pending_one() {
    let client = Client::new(MemoryStorage::new());
    let first = SendDigest::new(7).enqueue(&client).await.expect("enqueue");
    let again = SendDigest::new(7).enqueue(&client).await.expect("enqueue");
    assert_eq!(again, first, "a duplicate returns the existing job's id");
    let with = SendDigest::new(7)
        .enqueue_with(&client, EnqueueOptions::new())
        .await
        .expect("enqueue");
    assert_eq!(
        with,
        Enqueued {
            id: first,
            duplicate: true
        }
    );
    let other = SendDigest::new(8).enqueue(&client).await.expect("enqueue");
    assert_ne!(other, first);
    assert_eq!(
        client.job(first).await.expect("job").unique_key.as_deref(),
        Some(r#"send_digest:{"user":7}"#)
    );
    // An explicit key replaces name and arguments; the options apply to the created job.
    let keyed = EnqueueOptions::new()
        .unique_key("digest-of-the-day")
        .queue("critical")
        .priority(0)
        .delay(Duration::from_secs(60));
    let a = SendDigest::new(9)
        .enqueue_with(&client, keyed.clone())
        .await
        .expect("a");
    let b = SendDigest::new(10)
        .enqueue_with(&client, keyed)
        .await
        .expect("b");
    assert!(!a.duplicate);
    assert_eq!(
        b,
        Enqueued {
            id: a.id,
            duplicate: true
        }
    );
    let record = client.job(a.id).await.expect("job");
    assert_eq!(
        (record.queue.as_str(), record.priority, record.state),
        ("critical", 0, JobState::Scheduled)
    );
}

/// A mutex job stored by an older version whose key field had another type: its key was
/// rendered when it was enqueued, so it still holds its mutex, and its arguments fail to
/// deserialize with a clear reason instead of a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutex_job_whose_field_changed_type_fails_clearly() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let old = jobs::storage::NewJob {
        mutex: Some("account-seven".into()),
        ..jobs::storage::NewJob::plain(
            "rebuild_ledger",
            "ledger",
            r#"{"account":"seven","n":1}"#,
            jobs::storage::InitialState::Enqueued,
        )
    };
    let id = storage
        .enqueue(vec![old], client.now())
        .await
        .expect("enqueue")[0]
        .id;
    let server = fast(storage.clone())
        .queues(["ledger"])
        .build()
        .expect("build")
        .start()
        .await
        .expect("start");
    let failed = wait_state(&client, id, JobState::Failed).await;
    assert_eq!(failed.mutex.as_deref(), Some("account-seven"));
    assert_eq!(
        failed.error.as_ref().map(|error| error.type_name.as_str()),
        Some(jobs::JobError::INVALID_ARGUMENTS)
    );
    assert!(
        last_reason(&failed)
            .starts_with("the arguments of `rebuild_ledger` could not be deserialized"),
        "{}",
        last_reason(&failed)
    );
    server.shutdown().await.expect("shutdown");
}

/// Bad settings and keys are refused with a clear error, and nothing is stored.
#[tokio::test]
async fn bad_flow_settings_are_refused_and_nothing_is_stored() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let limits = QueueLimits::new().concurrency(2);
    let error = client
        .set_queue_limits("no-such-queue", limits)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::UnknownQueue(_)), "{error}");
    assert_eq!(
        error.to_string(),
        "unknown queue `no-such-queue`: no job, server or registered job kind uses it"
    );
    let error = client.pause_queue("no-such-queue").await.unwrap_err();
    assert!(matches!(error, Error::UnknownQueue(_)), "{error}");
    let error = client
        .set_queue_limits("mail", QueueLimits::new().concurrency(0))
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "a concurrency limit must be at least 1");
    let error = client
        .set_queue_limits("mail", QueueLimits::new().rate(10, Duration::ZERO))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid rate: the period must be at least 1ms"
    );
    let error = client
        .set_queue_limits("mail", QueueLimits::new().rate(0, Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid rate: the count must be at least 1"
    );
    assert!(storage.queue_settings().await.expect("settings").is_empty());

    let long = "k".repeat(MAX_UNIQUE_KEY_BYTES + 1);
    let error = SendDigest::new(1)
        .enqueue_with(&client, EnqueueOptions::new().unique_key(long))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "invalid unique key: a unique key is at most {MAX_UNIQUE_KEY_BYTES} bytes; this one has {}",
            MAX_UNIQUE_KEY_BYTES + 1
        )
    );
    let error = SendDigest::new(1)
        .enqueue_with(&client, EnqueueOptions::new().queue("Not A Queue"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::InvalidQueue(_)), "{error}");
    let page = storage.list_jobs(JobQuery::default()).await.expect("list");
    assert_eq!(page.total, 0, "nothing was created");
}
