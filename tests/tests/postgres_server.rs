//! End to end in one process: `#[job]` functions run by a `Server` on `PostgresStorage` —
//! results, continuations with the parent's result, retries, delayed jobs, recurring jobs,
//! the shutdown requeue, and transactional enqueue.

mod postgres_support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use jobs::prelude::*;
use jobs::{JobRecord, ServerBuilder, Storage};
use jobs_postgres::PostgresStorage;
use postgres_support::eventually;

const DEADLINE: Duration = Duration::from_secs(20);

/// Doubles a number.
#[job(queue = "pg_e2e")]
async fn pg_double(value: i64) -> anyhow::Result<i64> {
    Ok(value * 2)
}

/// Adds one to its parent's result.
#[job(queue = "pg_e2e")]
async fn pg_add_one(context: JobContext) -> anyhow::Result<i64> {
    let parent: Option<i64> = context.parent_result()?;
    Ok(parent.unwrap_or_default() + 1)
}

static FLAKY_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

/// Fails its first attempt.
#[job(queue = "pg_e2e", retries = 3, retry_delays = [1])]
async fn pg_flaky() -> anyhow::Result<u32> {
    let attempt = FLAKY_ATTEMPTS.fetch_add(1, Ordering::SeqCst) + 1;
    if attempt == 1 {
        anyhow::bail!("first attempt fails");
    }
    Ok(attempt)
}

/// Always fails, without retries.
#[job(queue = "pg_e2e", retries = 0)]
async fn pg_broken() -> anyhow::Result<()> {
    anyhow::bail!("always broken")
}

/// Fired every second by a recurring job.
#[job(queue = "pg_e2e")]
async fn pg_tick() {}

/// Runs until cancelled, then reports the cancellation as an error.
#[job(queue = "pg_e2e")]
async fn pg_until_cancelled(token: CancellationToken) -> anyhow::Result<()> {
    token.cancelled().await;
    anyhow::bail!("cancelled")
}

fn server(storage: PostgresStorage) -> ServerBuilder {
    Server::builder(storage)
        .queues(["pg_e2e"])
        .workers(4)
        .poll_interval(Duration::from_millis(100))
        .maintenance_interval(Duration::from_millis(50))
        .heartbeat_interval(Duration::from_millis(200))
        .shutdown_grace(Duration::from_millis(200))
        .shutdown_timeout(Duration::from_secs(5))
}

async fn wait_state(client: &Client, id: JobId, state: JobState) -> JobRecord {
    jobs::testing::wait_for_state(client, id, state, DEADLINE)
        .await
        .unwrap_or_else(|error| panic!("{error}"))
}

fn last_reason(record: &JobRecord) -> String {
    record
        .history
        .last()
        .and_then(|entry| entry.reason.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_on_postgres_runs_every_kind_of_job() {
    let schema = postgres_support::schema().await;
    let storage = schema.storage().clone();
    let client = Client::new(storage.clone());
    let handle = server(storage.clone())
        .build()
        .expect("build")
        .start()
        .await
        .expect("start");

    // A result, and a continuation that receives it.
    let doubled = PgDouble::new(21).enqueue(&client).await.expect("enqueue");
    let continued = PgAddOne::new()
        .continue_after(&client, doubled)
        .await
        .expect("continuation");
    let record = wait_state(&client, doubled, JobState::Succeeded).await;
    assert_eq!(record.result, Some(serde_json::json!(42)));
    assert_eq!(record.children, vec![continued]);
    let record = wait_state(&client, continued, JobState::Succeeded).await;
    assert_eq!(record.result, Some(serde_json::json!(43)));

    // A retry after a failed attempt, then success.
    let flaky = PgFlaky::new().enqueue(&client).await.expect("enqueue");
    let record = wait_state(&client, flaky, JobState::Succeeded).await;
    assert_eq!(record.retry_count, 1);
    let states: Vec<JobState> = record.history.iter().map(|entry| entry.state).collect();
    assert_eq!(
        states,
        [
            JobState::Enqueued,
            JobState::Processing,
            JobState::Scheduled,
            JobState::Enqueued,
            JobState::Processing,
            JobState::Succeeded
        ]
    );
    assert!(
        record.history[2]
            .reason
            .as_deref()
            .is_some_and(|reason| reason.starts_with("Retry attempt 1 of 3: first attempt fails")),
        "{:?}",
        record.history[2]
    );

    // No retries: Failed with the error.
    let broken = PgBroken::new().enqueue(&client).await.expect("enqueue");
    let record = wait_state(&client, broken, JobState::Failed).await;
    assert_eq!(
        record.error.map(|error| error.message),
        Some("always broken".to_owned())
    );

    // A delayed job runs after its delay.
    let delayed = PgDouble::new(1)
        .schedule(&client, Duration::from_secs(1))
        .await
        .expect("schedule");
    assert_eq!(
        client.job(delayed).await.expect("job").state,
        JobState::Scheduled
    );
    let record = wait_state(&client, delayed, JobState::Succeeded).await;
    assert_eq!(
        record.history[1].reason.as_deref(),
        Some("scheduled time reached")
    );

    // A recurring job fires every second, once per occurrence.
    client
        .add_or_update_recurring(
            "pg-tick",
            Cron::parse("* * * * * *").expect("cron"),
            PgTick::new(),
        )
        .await
        .expect("recurring");
    eventually("the recurring job to fire twice", DEADLINE, || async {
        let page = storage
            .list_jobs(jobs::storage::JobQuery {
                name_contains: Some("pg_tick".into()),
                state: Some(JobState::Succeeded),
                ..Default::default()
            })
            .await
            .expect("list");
        page.total >= 2
    })
    .await;
    assert!(client.remove_recurring("pg-tick").await.expect("remove"));
    let fired = storage
        .list_jobs(jobs::storage::JobQuery {
            name_contains: Some("pg_tick".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("list");
    assert!(fired
        .jobs
        .iter()
        .all(|job| job.recurring_id.as_deref() == Some("pg-tick")));

    // Transactional enqueue, picked up by the running server.
    let mut connection = storage.pool().get().await.expect("connection");
    let tx = connection.transaction().await.expect("begin");
    let in_tx = storage
        .enqueue_tx(&tx, &PgDouble::new(5))
        .await
        .expect("enqueue in tx");
    tx.commit().await.expect("commit");
    drop(connection);
    let record = wait_state(&client, in_tx, JobState::Succeeded).await;
    assert_eq!(record.result, Some(serde_json::json!(10)));

    // Shutdown puts a running job back at the head of its queue, not Failed.
    let running = PgUntilCancelled::new()
        .enqueue(&client)
        .await
        .expect("enqueue");
    wait_state(&client, running, JobState::Processing).await;
    handle.shutdown().await.expect("shutdown");
    let record = client.job(running).await.expect("job");
    assert_eq!((record.state, record.retry_count), (JobState::Enqueued, 0));
    assert!(
        last_reason(&record).contains("shut down"),
        "{}",
        last_reason(&record)
    );
    assert!(storage.servers().await.expect("servers").is_empty());
    schema.teardown().await;
}
