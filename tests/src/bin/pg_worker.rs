//! A worker process for the multi-process Postgres tests (`tests/tests/postgres_*.rs`).
//!
//! It runs a `Server` on one schema until its standard input closes (then shuts down
//! gracefully), and prints `ready <server id>` once it is serving. Settings come from the
//! environment:
//!
//! | variable | default | what |
//! | --- | --- | --- |
//! | `JOBS_TEST_DATABASE_URL` | local `postgres` | the database |
//! | `PG_WORKER_SCHEMA` | (required) | the schema, already migrated, with an `executions` table |
//! | `PG_WORKER_WORKERS` | 10 | concurrent jobs |
//! | `PG_WORKER_LEASE_MS` | 30000 | job lease; the heartbeat renews it 6 times per lease |
//! | `PG_WORKER_PAUSE_MS` | 0 | how long each `record` job runs after recording its start |
//!
//! The `record` job inserts `(job id, process id)` into `<schema>.executions` when it starts,
//! so a test can tell which process ran which job, and how often.

use std::io::BufRead;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use jobs::prelude::*;
use jobs_postgres::{PostgresOptions, PostgresStorage};

/// Where `record` writes.
struct Recorder {
    storage: PostgresStorage,
    insert: String,
    pause: Duration,
}

/// Records that this process started the job, runs for the configured pause, succeeds.
#[job]
async fn record(
    n: u64,
    context: JobContext,
    #[inject] recorder: Arc<Recorder>,
) -> anyhow::Result<u64> {
    let pid = i64::from(std::process::id());
    // The tests cut connections on purpose: a lost one is retried here, so what they measure
    // is the storage's recovery, not this job's retry schedule.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let inserted = match recorder.storage.pool().get().await {
            Ok(client) => client
                .execute(&recorder.insert, &[&context.id().0, &pid])
                .await
                .map_err(anyhow::Error::from),
            Err(error) => Err(error.into()),
        };
        match inserted {
            Ok(_) => break,
            Err(error) if attempts >= 20 => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    if !recorder.pause.is_zero() {
        tokio::time::sleep(recorder.pause).await;
    }
    Ok(n)
}

fn setting<T: FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={value} is not a valid value")),
        Err(_) => Ok(default),
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    if let Err(error) = run().await {
        eprintln!("pg_worker: {error:#}");
        std::process::exit(2);
    }
}

async fn run() -> anyhow::Result<()> {
    let url = jobs_postgres_url();
    let schema = std::env::var("PG_WORKER_SCHEMA")
        .map_err(|_| anyhow::anyhow!("PG_WORKER_SCHEMA is not set"))?;
    let workers: usize = setting("PG_WORKER_WORKERS", 10)?;
    let lease = Duration::from_millis(setting("PG_WORKER_LEASE_MS", 30_000)?);
    let pause = Duration::from_millis(setting("PG_WORKER_PAUSE_MS", 0)?);
    let options = PostgresOptions::new()
        .schema(schema.clone())
        .pool_size(workers + 4);
    let storage = PostgresStorage::connect_with(&url, options).await?;
    let recorder = Recorder {
        storage: storage.clone(),
        insert: format!("INSERT INTO \"{schema}\".executions (job_id, pid) VALUES ($1, $2)"),
        pause,
    };
    let handle = Server::builder(storage)
        .queues(["default"])
        .workers(workers)
        .lease(lease)
        .heartbeat_interval(lease / 6)
        .poll_interval(Duration::from_millis(200))
        .maintenance_interval(Duration::from_millis(250))
        .shutdown_grace(Duration::from_secs(2))
        .container(Services::new().with(Arc::new(recorder)))
        .build()?
        .start()
        .await?;
    println!("ready {}", handle.id());

    // Serve until standard input closes (the test dropped it, or died).
    let (closed, stdin_closed) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut lines = stdin.lock().lines();
        while let Some(Ok(_)) = lines.next() {}
        let _ = closed.send(());
    });
    let _ = stdin_closed.await;
    handle.shutdown().await?;
    println!("stopped");
    Ok(())
}

fn jobs_postgres_url() -> String {
    std::env::var("JOBS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}
