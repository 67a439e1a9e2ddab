//! End-to-end flow control on PostgreSQL: unique jobs raced by 8 tasks in this process and 8
//! in each of two other processes; mutex jobs on two servers with their own connection pools;
//! a pause obeyed by a server started after it; a queue limit held across servers.

mod postgres_support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jobs::prelude::*;
use jobs::storage::{JobQuery, Storage};
use jobs::ServerHandle;
use jobs_postgres::{PostgresOptions, PostgresStorage};
use postgres_support::*;

const ROUNDS: u64 = 20;

/// The job `pg_unique` enqueues (same name), here only to enqueue it from this process too.
#[job(unique)]
async fn digest(user: u64) {
    let _ = user;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_jobs_raced_by_three_processes_are_created_once() {
    let schema = schema().await;
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_millis() as u64
        + 1500;
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_pg_unique"))
                .env("JOBS_TEST_DATABASE_URL", schema.url())
                .env("PG_WORKER_SCHEMA", schema.schema())
                .env("PG_UNIQUE_START_MS", start.to_string())
                .env("PG_UNIQUE_ROUNDS", ROUNDS.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start pg_unique")
        })
        .collect();
    let client = Client::new(schema.storage().clone());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_millis() as u64;
    tokio::time::sleep(Duration::from_millis(start.saturating_sub(now))).await;
    let mut tasks = Vec::new();
    for task in 0..8u64 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for round in 0..ROUNDS {
                let options = EnqueueOptions::new().unique_key(format!("race:{round}"));
                let enqueued = Digest::new(100 + task)
                    .enqueue_with(&client, options)
                    .await
                    .expect("enqueue");
                answers.push((round, enqueued.id.0, enqueued.duplicate));
            }
            answers
        }));
    }
    let mut answers: Vec<(u64, i64, bool)> = Vec::new();
    for task in tasks {
        answers.extend(task.await.expect("task"));
    }
    for child in children {
        let output = child.wait_with_output().expect("pg_unique");
        assert!(
            output.status.success(),
            "pg_unique failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let ["answer", round, id, duplicate] = parts[..] else {
                panic!("unexpected line {line:?}");
            };
            answers.push((
                round.parse().expect("round"),
                id.parse().expect("id"),
                duplicate == "true",
            ));
        }
    }
    assert_eq!(answers.len() as u64, 24 * ROUNDS, "every enqueue answered");
    let mut by_round: BTreeMap<u64, Vec<(i64, bool)>> = BTreeMap::new();
    for (round, id, duplicate) in answers {
        by_round.entry(round).or_default().push((id, duplicate));
    }
    for (round, answers) in &by_round {
        let created: Vec<_> = answers.iter().filter(|(_, dup)| !dup).collect();
        assert_eq!(created.len(), 1, "round {round}: {answers:?}");
        assert!(
            answers.iter().all(|(id, _)| *id == created[0].0),
            "round {round}"
        );
    }
    let page = schema
        .storage()
        .list_jobs(JobQuery {
            unique_key_contains: Some("race:".into()),
            limit: 1000,
            ..JobQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(page.total, ROUNDS, "one job per key in the database");
    schema.teardown().await;
}

/// Running `rebuild` jobs per key, and the most seen at once.
static RUNNING: Mutex<BTreeMap<String, (u32, u32)>> = Mutex::new(BTreeMap::new());

fn enter(key: String) {
    let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    let entry = running.entry(key).or_default();
    entry.0 += 1;
    entry.1 = entry.1.max(entry.0);
}

fn leave(key: String) {
    let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(entry) = running.get_mut(&key) {
        entry.0 -= 1;
    }
}

/// Counts a job of `key` as running for `ms` milliseconds.
async fn occupy(key: String, ms: u64) {
    enter(key.clone());
    tokio::time::sleep(Duration::from_millis(ms)).await;
    leave(key);
}

fn most(key: &str) -> u32 {
    let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    running.get(key).map_or(0, |entry| entry.1)
}

#[job(queue = "ledger", mutex = "account-{account}")]
async fn rebuild(account: u32, n: u32) {
    let _ = n;
    occupy(format!("account-{account}"), 3).await;
}

#[job(queue = "partner")]
async fn partner_call(n: u32) {
    let _ = n;
    occupy("partner".into(), 3).await;
}

#[job(queue = "solo")]
async fn solo_call(n: u32) {
    let _ = n;
    occupy("solo".into(), 2).await;
}

#[job(queue = "wide")]
async fn wide_call(n: u32) {
    let _ = n;
    occupy("wide".into(), 5).await;
}

#[job(queue = "mail")]
async fn mail(n: u32) {
    let _ = n;
}

async fn storage_for(schema: &jobs_postgres::testing::TestSchema) -> PostgresStorage {
    PostgresStorage::connect_with(
        schema.url(),
        PostgresOptions::new().schema(schema.schema()).pool_size(6),
    )
    .await
    .expect("connect")
}

async fn server(storage: PostgresStorage, queues: &[&str]) -> ServerHandle {
    Server::builder(storage)
        .queues(queues.iter().copied())
        .workers(8)
        .poll_interval(Duration::from_millis(100))
        .build()
        .expect("build")
        .start()
        .await
        .expect("start")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutexes_and_queue_limits_hold_across_two_servers() {
    let schema = schema().await;
    let client = Client::new(schema.storage().clone());
    let ledger: Vec<Rebuild> = (0..200).map(|n| Rebuild::new(n % 10, n)).collect();
    client.enqueue_many(&ledger).await.expect("enqueue");
    client
        .set_queue_limits("partner", QueueLimits::new().concurrency(3))
        .await
        .expect("limits");
    let calls: Vec<PartnerCall> = (0..100).map(PartnerCall::new).collect();
    client.enqueue_many(&calls).await.expect("enqueue");
    let a = server(storage_for(&schema).await, &["ledger", "partner"]).await;
    let b = server(storage_for(&schema).await, &["ledger", "partner"]).await;
    let storage = schema.storage();
    eventually("every job to succeed", Duration::from_secs(120), || async {
        count_in(storage, JobState::Succeeded).await == 300
    })
    .await;
    a.shutdown().await.expect("shutdown");
    b.shutdown().await.expect("shutdown");
    for account in 0..10 {
        assert_eq!(most(&format!("account-{account}")), 1, "account {account}");
    }
    let partner = most("partner");
    assert!(
        (1..=3).contains(&partner),
        "at most 3 partner calls at once, saw {partner}"
    );
    schema.teardown().await;
}

/// Servers whose queues hold no gated job fetch limited queues by one statement
/// (`FETCH_LIMITED`): four of them, racing, keep a concurrency limit of 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_limit_holds_across_four_servers_fetching_by_one_statement() {
    let schema = schema().await;
    let client = Client::new(schema.storage().clone());
    client
        .set_queue_limits("solo", QueueLimits::new().concurrency(2))
        .await
        .expect("limits");
    let calls: Vec<SoloCall> = (0..300).map(SoloCall::new).collect();
    client.enqueue_many(&calls).await.expect("enqueue");
    let mut servers = Vec::new();
    for _ in 0..4 {
        servers.push(server(storage_for(&schema).await, &["solo"]).await);
    }
    let storage = schema.storage();
    eventually("every job to succeed", Duration::from_secs(120), || async {
        count_in(storage, JobState::Succeeded).await == 300
    })
    .await;
    for server in servers {
        server.shutdown().await.expect("shutdown");
    }
    assert_eq!(most("solo"), 2, "two at once, never more");
    schema.teardown().await;
}

/// A limit with room for one server's whole capacity: that server reserves a share and
/// fetches under it, the others count it, and the limit holds across all four.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_limit_holds_across_servers_fetching_under_shares_and_by_the_limit() {
    let schema = schema().await;
    let client = Client::new(schema.storage().clone());
    client
        .set_queue_limits("wide", QueueLimits::new().concurrency(20))
        .await
        .expect("limits");
    let calls: Vec<WideCall> = (0..600).map(WideCall::new).collect();
    client.enqueue_many(&calls).await.expect("enqueue");
    let mut servers = Vec::new();
    for _ in 0..4 {
        servers.push(server(storage_for(&schema).await, &["wide"]).await);
    }
    let storage = schema.storage();
    let shares = format!("SELECT count(*) FROM {}.queue_shares", schema.schema());
    eventually(
        "a server to hold a share",
        Duration::from_secs(60),
        || async {
            let client = storage.pool().get().await.expect("connection");
            let row = client.query_one(&shares, &[]).await.expect("shares");
            row.get::<_, i64>(0) > 0
        },
    )
    .await;
    eventually("every job to succeed", Duration::from_secs(120), || async {
        count_in(storage, JobState::Succeeded).await == 600
    })
    .await;
    for server in servers {
        server.shutdown().await.expect("shutdown");
    }
    let most = most("wide");
    assert!(most <= 20, "{most} ran at once under a limit of 20");
    schema.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_is_obeyed_by_a_server_started_after_it() {
    let schema = schema().await;
    let client = Client::new(schema.storage().clone());
    let paused = Mail::new(1).enqueue(&client).await.expect("enqueue");
    client.pause_queue("mail").await.expect("pause");
    let other = PartnerCall::new(1).enqueue(&client).await.expect("enqueue");
    let handle = server(storage_for(&schema).await, &["mail", "partner"]).await;
    jobs::testing::wait_for_state(&client, other, JobState::Succeeded, Duration::from_secs(30))
        .await
        .expect("other queue runs");
    assert_eq!(
        client.job(paused).await.expect("job").state,
        JobState::Enqueued
    );
    client.resume_queue("mail").await.expect("resume");
    jobs::testing::wait_for_state(
        &client,
        paused,
        JobState::Succeeded,
        Duration::from_secs(30),
    )
    .await
    .expect("resumed queue runs");
    handle.shutdown().await.expect("shutdown");
    schema.teardown().await;
}
