//! Shared by the multi-process Postgres tests: a schema with an `executions` table, worker
//! processes (`src/bin/pg_worker.rs`), and polling with a deadline.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use jobs::storage::{InitialState, NewJob};
use jobs::{JobId, JobState, Storage};
use jobs_postgres::testing::TestSchema;
use jobs_postgres::{PostgresOptions, PostgresStorage};

/// The application name of the test's own connections (not the workers').
pub const CLIENT_APPLICATION: &str = "jobs-tests-client";

/// A migrated schema for one test, with the `executions` table the `record` job writes to.
/// The test's own storage uses [`CLIENT_APPLICATION`], so terminating the workers'
/// connections leaves it alone.
pub async fn schema() -> TestSchema {
    let schema = TestSchema::with_options(
        PostgresOptions::new()
            .pool_size(4)
            .application_name(CLIENT_APPLICATION),
    )
    .await;
    let client = schema.storage().pool().get().await.expect("connection");
    client
        .batch_execute(&format!(
            "CREATE TABLE \"{}\".executions (
                 job_id bigint NOT NULL,
                 pid    bigint NOT NULL,
                 at     timestamptz NOT NULL DEFAULT clock_timestamp()
             )",
            schema.schema()
        ))
        .await
        .expect("executions table");
    schema
}

/// The application name of the workers' connections on `schema`.
pub fn worker_application(schema: &TestSchema) -> String {
    PostgresOptions::new()
        .schema(schema.schema())
        .application_name_or_default()
}

/// `count` `record` jobs (`{"n": i}`), enqueued in batches. Returns their ids.
pub async fn enqueue_records(storage: &PostgresStorage, count: usize) -> Vec<JobId> {
    let mut ids = Vec::with_capacity(count);
    let all: Vec<usize> = (0..count).collect();
    for chunk in all.chunks(5000) {
        let jobs = chunk
            .iter()
            .map(|n| {
                NewJob::plain(
                    "record",
                    "default",
                    &format!(r#"{{"n":{n}}}"#),
                    InitialState::Enqueued,
                )
            })
            .collect();
        ids.extend(
            storage
                .enqueue(jobs, Utc::now())
                .await
                .expect("enqueue")
                .into_iter()
                .map(|enqueued| enqueued.id),
        );
    }
    ids
}

/// Every execution recorded: job id → the pids that started it, in order.
pub async fn executions(storage: &PostgresStorage) -> BTreeMap<i64, Vec<i64>> {
    let client = storage.pool().get().await.expect("connection");
    let rows = client
        .query(
            &format!(
                "SELECT job_id, pid FROM \"{}\".executions ORDER BY at, job_id",
                storage.schema()
            ),
            &[],
        )
        .await
        .expect("executions");
    let mut runs: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for row in rows {
        runs.entry(row.get(0)).or_default().push(row.get(1));
    }
    runs
}

/// How many executions were recorded.
pub async fn execution_count(storage: &PostgresStorage) -> i64 {
    let client = storage.pool().get().await.expect("connection");
    client
        .query_one(
            &format!("SELECT count(*) FROM \"{}\".executions", storage.schema()),
            &[],
        )
        .await
        .expect("count executions")
        .get(0)
}

/// How many jobs are in `state`.
pub async fn count_in(storage: &PostgresStorage, state: JobState) -> u64 {
    storage.counts().await.expect("counts").get(state)
}

/// Polls `condition` every 50 ms until it holds; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Settings of a worker process.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    pub workers: usize,
    pub lease: Duration,
    pub pause: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            workers: 10,
            lease: Duration::from_secs(30),
            pause: Duration::ZERO,
        }
    }
}

/// A `pg_worker` process. Killed when dropped (a failing test leaves no process behind).
pub struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    pub pid: i64,
    pub server_id: String,
}

impl Worker {
    /// Starts a worker on `schema` and waits until it serves.
    pub fn start(schema: &TestSchema, settings: WorkerSettings) -> Worker {
        Worker::start_on(schema.url(), schema.schema(), settings)
    }

    /// Starts a worker on any schema name (even an invalid one) and waits until it serves or
    /// exits.
    pub fn start_on(url: &str, schema: &str, settings: WorkerSettings) -> Worker {
        Worker::spawn(url, schema, settings).ready()
    }

    /// Starts a worker in the network namespace `netns` (`ip netns exec`, which keeps the
    /// process id), logging at `log` level, and waits until it serves.
    pub fn start_in(
        netns: &str,
        url: &str,
        schema: &str,
        settings: WorkerSettings,
        log: &str,
    ) -> Worker {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", netns, env!("CARGO_BIN_EXE_pg_worker")])
            .env("RUST_LOG", log);
        let worker = Worker::spawn_command(command, url, schema, settings);
        worker.ready()
    }

    /// Waits until the worker prints that it serves; panics with its output if it exits first.
    fn ready(mut self) -> Worker {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(id) = line.strip_prefix("ready ") {
                        self.server_id = id.to_owned();
                        return self;
                    }
                }
                Err(_) => panic!(
                    "worker {} did not become ready: {}",
                    self.pid,
                    self.stderr()
                ),
            }
        }
    }

    /// Starts a worker without waiting for it.
    pub fn spawn(url: &str, schema: &str, settings: WorkerSettings) -> Worker {
        Worker::spawn_command(
            Command::new(env!("CARGO_BIN_EXE_pg_worker")),
            url,
            schema,
            settings,
        )
    }

    fn spawn_command(
        mut command: Command,
        url: &str,
        schema: &str,
        settings: WorkerSettings,
    ) -> Worker {
        let mut child = command
            .env("JOBS_TEST_DATABASE_URL", url)
            .env("PG_WORKER_SCHEMA", schema)
            .env("PG_WORKER_WORKERS", settings.workers.to_string())
            .env("PG_WORKER_LEASE_MS", settings.lease.as_millis().to_string())
            .env("PG_WORKER_PAUSE_MS", settings.pause.as_millis().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pg_worker");
        let pid = i64::from(child.id());
        let stdin = child.stdin.take();
        let (sender, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if sender.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(pipe) = child.stderr.take() {
            let collected = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    eprintln!("[worker {pid}] {line}");
                    let mut all = collected.lock().unwrap_or_else(|e| e.into_inner());
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        Worker {
            child,
            stdin,
            lines,
            stderr,
            pid,
            server_id: String::new(),
        }
    }

    /// What the worker wrote to its standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (polling, with a deadline) until the process exits.
    pub async fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "worker {} did not exit within {timeout:?}",
                self.pid
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Closes its standard input (a graceful shutdown) and waits for it to exit.
    pub async fn stop(&mut self) -> ExitStatus {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        self.wait(Duration::from_secs(30)).await
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}
