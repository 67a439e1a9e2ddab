//! The throughput benchmark (a binary, not a test).
//!
//! ```text
//! cargo bench -p jobs-postgres --bench throughput -- [SCENARIO ...] [--storage postgres|memory]
//!     [--jobs N] [--workers N (default 100)] [--fetch-buffer N (default workers / 2)]
//!     [--repeat N (default 1)] [--soak-seconds N]
//! ```
//!
//! Scenarios: `enqueue-single`, `enqueue-batch`, `process`, `steady`, `latency`, `ceiling`,
//! flow control's `enqueue-unique` (unique jobs, one producer task per job as
//! `enqueue-single`), `process-limited` (`process` with a queue concurrency limit of 50 and a
//! rate limit far above the load), `process-mutex` (10,000 jobs over 1,000 mutex keys, and the
//! same number of plain jobs for reference; counts overlaps of one key, which must be none),
//! `soak` (10 minutes; only when named), `all` (the default: everything but `soak`). The
//! summary gives each flow control figure's ratio to its plain counterpart.
//! PostgreSQL is `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`); every
//! scenario runs in a fresh schema, dropped after. Each metric is printed as one line
//! `scenario=… storage=… metric=… value=… unit=…`, and a summary table ends the run, with each
//! library figure's ratio to the `ceiling` (the same SQL statements driven directly with
//! tokio-postgres, no library code) when both ran.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use jobs::prelude::*;
use jobs::storage::Storage;
use jobs_postgres::tokio_postgres::{self, NoTls};
use jobs_postgres::{PostgresOptions, PostgresStorage};

/// Jobs the `process` scenario counts.
static PROCESSED: AtomicU64 = AtomicU64::new(0);
/// Enqueue-to-start latencies of probe jobs, in microseconds.
static LATENCIES: Mutex<Vec<u64>> = Mutex::new(Vec::new());
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn micros_since_epoch() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// A no-op job.
#[job(queue = "bench")]
async fn noop(n: u64) {
    let _ = n;
    PROCESSED.fetch_add(1, Ordering::Relaxed);
}

/// Records how long after its enqueue it started.
#[job(queue = "bench")]
async fn probe(sent_micros: u64) {
    let latency = micros_since_epoch().saturating_sub(sent_micros);
    LATENCIES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(latency);
    PROCESSED.fetch_add(1, Ordering::Relaxed);
}

/// A no-op unique job (each `n` its own key).
#[job(queue = "bench", unique)]
async fn unique_noop(n: u64) {
    let _ = n;
    PROCESSED.fetch_add(1, Ordering::Relaxed);
}

/// The mutex keys held by running `locked` jobs, and how often one was found held.
static HELD: Mutex<Vec<u64>> = Mutex::new(Vec::new());
static OVERLAPS: AtomicU64 = AtomicU64::new(0);

/// A no-op job holding the mutex `key-{key}`: counts an overlap when another job of its key
/// is running, and yields once while it holds it, so that an overlap would be seen.
#[job(queue = "bench-mutex", mutex = "key-{key}")]
async fn locked(n: u64, key: u64) {
    let _ = n;
    {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if held.contains(&key) {
            OVERLAPS.fetch_add(1, Ordering::Relaxed);
        }
        held.push(key);
    }
    tokio::task::yield_now().await;
    {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = held.iter().position(|k| *k == key) {
            held.swap_remove(at);
        }
    }
    PROCESSED.fetch_add(1, Ordering::Relaxed);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Postgres,
    Memory,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Postgres => "postgres",
            Kind::Memory => "memory",
        }
    }
}

struct Options {
    scenarios: Vec<String>,
    kind: Kind,
    jobs: Option<u64>,
    workers: usize,
    /// The server's fetch buffer; the library's default (half the workers) when not given.
    fetch_buffer: Option<usize>,
    /// Rounds of the scenarios (each round runs them all, in order); the summary gives each
    /// metric's median.
    repeat: usize,
    soak_seconds: u64,
    url: String,
}

const SCENARIOS: [&str; 10] = [
    "enqueue-single",
    "enqueue-batch",
    "process",
    "enqueue-unique",
    "process-limited",
    "process-mutex",
    "steady",
    "latency",
    "ceiling",
    "soak",
];

fn parse_options() -> anyhow::Result<Options> {
    let mut options = Options {
        scenarios: Vec::new(),
        kind: Kind::Postgres,
        jobs: None,
        workers: 100,
        fetch_buffer: None,
        repeat: 1,
        soak_seconds: 600,
        url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            // `cargo bench` passes --bench to harness = false targets.
            "--bench" => {}
            "--storage" => {
                options.kind = match value("--storage")?.as_str() {
                    "postgres" => Kind::Postgres,
                    "memory" => Kind::Memory,
                    other => bail!("unknown storage `{other}`: expected postgres or memory"),
                }
            }
            "--jobs" => options.jobs = Some(value("--jobs")?.parse()?),
            "--workers" => options.workers = value("--workers")?.parse()?,
            "--fetch-buffer" => options.fetch_buffer = Some(value("--fetch-buffer")?.parse()?),
            "--soak-seconds" => options.soak_seconds = value("--soak-seconds")?.parse()?,
            "--repeat" => {
                options.repeat = value("--repeat")?.parse()?;
                if options.repeat == 0 {
                    bail!("--repeat needs at least 1 round");
                }
            }
            "all" => options.scenarios.extend(
                SCENARIOS
                    .iter()
                    .filter(|s| **s != "soak")
                    .map(|s| (*s).to_owned()),
            ),
            scenario if SCENARIOS.contains(&scenario) => options.scenarios.push(arg),
            other => bail!(
                "unknown argument `{other}`; scenarios: {}, all",
                SCENARIOS.join(", ")
            ),
        }
    }
    if options.scenarios.is_empty() {
        options.scenarios.extend(
            SCENARIOS
                .iter()
                .filter(|s| **s != "soak")
                .map(|s| (*s).to_owned()),
        );
    }
    if options.kind == Kind::Memory {
        options.scenarios.retain(|s| s != "ceiling");
    }
    Ok(options)
}

/// Metrics of the run, printed as they come and summarised at the end.
#[derive(Default)]
struct Report {
    rows: Vec<(String, String, f64, String)>,
}

impl Report {
    fn record(&mut self, kind: Kind, scenario: &str, metric: &str, value: f64, unit: &str) {
        println!(
            "scenario={scenario} storage={} metric={metric} value={} unit={unit}",
            kind.name(),
            format_value(value)
        );
        self.rows.push((
            scenario.to_owned(),
            metric.to_owned(),
            value,
            unit.to_owned(),
        ));
    }

    /// `cpu_seconds` spent on `jobs` jobs, as CPU seconds per 1,000 jobs.
    fn record_cpu(
        &mut self,
        kind: Kind,
        scenario: &str,
        metric: &str,
        cpu_seconds: f64,
        jobs: u64,
    ) {
        self.record(
            kind,
            scenario,
            metric,
            cpu_seconds * 1000.0 / jobs as f64,
            "cpu-s",
        );
    }

    /// Every value of a metric, one per round, sorted.
    fn values(&self, scenario: &str, metric: &str) -> Vec<f64> {
        let mut values: Vec<f64> = self
            .rows
            .iter()
            .filter(|(s, m, _, _)| s == scenario && m == metric)
            .map(|(_, _, v, _)| *v)
            .collect();
        values.sort_by(f64::total_cmp);
        values
    }

    /// The median of a metric over the rounds.
    fn get(&self, scenario: &str, metric: &str) -> Option<f64> {
        let values = self.values(scenario, metric);
        let middle = values.len() / 2;
        match values.len() {
            0 => None,
            n if n % 2 == 1 => Some(values[middle]),
            _ => Some((values[middle - 1] + values[middle]) / 2.0),
        }
    }

    fn summary(&self, kind: Kind) {
        let ceiling_of: BTreeMap<(&str, &str), (&str, &str)> = BTreeMap::from([
            (
                ("enqueue-single", "throughput"),
                ("ceiling", "insert-single"),
            ),
            (("enqueue-batch", "throughput"), ("ceiling", "insert-batch")),
            (("process", "throughput"), ("ceiling", "process")),
            (("steady", "throughput"), ("ceiling", "process")),
        ]);
        // Flow control's figures against their plain counterparts of the same run.
        let plain_of: BTreeMap<(&str, &str), (&str, &str)> = BTreeMap::from([
            (
                ("enqueue-unique", "throughput"),
                ("enqueue-single", "throughput"),
            ),
            (("process-limited", "throughput"), ("process", "throughput")),
            (
                ("process-mutex", "throughput"),
                ("process-mutex", "plain-throughput"),
            ),
        ]);
        // One line per metric: the median over the rounds (and their range when there were
        // several); the ratio is of the medians.
        println!();
        println!("| scenario | metric | median | range | unit | ratio to ceiling |");
        println!("| --- | --- | ---: | ---: | --- | ---: |");
        let mut seen = std::collections::BTreeSet::new();
        for (scenario, metric, _, unit) in &self.rows {
            if !seen.insert((scenario.as_str(), metric.as_str())) {
                continue;
            }
            let values = self.values(scenario, metric);
            let Some(median) = self.get(scenario, metric) else {
                continue;
            };
            let range = match (values.first(), values.last()) {
                (Some(low), Some(high)) if values.len() > 1 => {
                    format!("{} – {}", format_value(*low), format_value(*high))
                }
                _ => String::new(),
            };
            let key = (scenario.as_str(), metric.as_str());
            let ratio = ceiling_of
                .get(&key)
                .and_then(|(s, m)| self.get(s, m))
                .map(|ceiling| format!("{:.0} %", 100.0 * median / ceiling))
                .or_else(|| {
                    let (s, m) = plain_of.get(&key)?;
                    let plain = self.get(s, m)?;
                    Some(format!("{:.0} % of {s} {m}", 100.0 * median / plain))
                })
                .unwrap_or_default();
            let median = format_value(median);
            println!("| {scenario} | {metric} | {median} | {range} | {unit} | {ratio} |");
        }
        println!("(storage: {})", kind.name());
    }
}

/// Two decimals, or four for small values (CPU seconds per 1k jobs).
fn format_value(value: f64) -> String {
    if value.abs() < 1.0 {
        format!("{value:.4}")
    } else {
        format!("{value:.2}")
    }
}

/// A storage for one scenario: a fresh schema on PostgreSQL, a new MemoryStorage otherwise.
struct Fixture {
    storage: Arc<dyn Storage>,
    postgres: Option<PostgresStorage>,
    url: String,
    fetch_buffer: Option<usize>,
}

static SCHEMA_SEQ: AtomicU64 = AtomicU64::new(0);

impl Fixture {
    async fn new(options: &Options) -> anyhow::Result<Fixture> {
        match options.kind {
            Kind::Memory => Ok(Fixture {
                storage: Arc::new(MemoryStorage::new()),
                postgres: None,
                url: options.url.clone(),
                fetch_buffer: options.fetch_buffer,
            }),
            Kind::Postgres => {
                let schema = format!(
                    "jobs_bench_{}_{}",
                    std::process::id(),
                    SCHEMA_SEQ.fetch_add(1, Ordering::Relaxed)
                );
                let storage = PostgresStorage::connect_with(
                    &options.url,
                    PostgresOptions::new().schema(schema).pool_size(16),
                )
                .await
                .with_context(|| {
                    format!(
                        "cannot connect to {}: start PostgreSQL (`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`) or set DATABASE_URL",
                        options.url
                    )
                })?;
                storage.migrate().await?;
                // Every scenario starts right after a checkpoint, so none pays for the dirty
                // buffers of the one before (with the default `max_wal_size` the server
                // checkpointed 61 times on WAL size in one session of runs). Needs superuser
                // or pg_checkpoint; without, the scenario runs as it is.
                let client = storage.pool().get().await?;
                if let Err(error) = client.batch_execute("CHECKPOINT").await {
                    println!("# no checkpoint before the scenario: {error}");
                }
                drop(client);
                Ok(Fixture {
                    storage: Arc::new(storage.clone()),
                    postgres: Some(storage),
                    url: options.url.clone(),
                    fetch_buffer: options.fetch_buffer,
                })
            }
        }
    }

    fn client(&self) -> Client {
        Client::from_arc(self.storage.clone())
    }

    fn server(&self, workers: usize) -> jobs::ServerBuilder {
        Server::builder_from_arc(self.storage.clone())
            .queues(["bench"])
            .workers(workers)
            .fetch_buffer(self.fetch_buffer.unwrap_or(workers / 2))
    }

    async fn dead_tuples(&self) -> anyhow::Result<Option<i64>> {
        let Some(storage) = &self.postgres else {
            return Ok(None);
        };
        let (db, connection) = tokio_postgres::connect(&self.url, NoTls).await?;
        tokio::spawn(connection);
        let row = db
            .query_one(
                "SELECT coalesce(sum(n_dead_tup), 0)::bigint FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'jobs'",
                &[&storage.schema()],
            )
            .await?;
        Ok(Some(row.get(0)))
    }

    async fn teardown(self) -> anyhow::Result<()> {
        if let Some(storage) = self.postgres {
            let (db, connection) = tokio_postgres::connect(&self.url, NoTls).await?;
            tokio::spawn(connection);
            db.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                storage.schema()
            ))
            .await?;
        }
        Ok(())
    }
}

/// Drops the schemas of earlier runs that were interrupted before their teardown.
async fn drop_stale_schemas(url: &str) -> anyhow::Result<()> {
    let (db, connection) = tokio_postgres::connect(url, NoTls).await.with_context(|| {
        format!("cannot connect to {url}: start PostgreSQL (`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`) or set DATABASE_URL")
    })?;
    tokio::spawn(connection);
    let stale = db
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'jobs\\_bench\\_%'",
            &[],
        )
        .await?;
    for row in stale {
        let schema: String = row.get(0);
        db.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await?;
        println!("# dropped the schema {schema} of an interrupted run");
    }
    Ok(())
}

/// CPU seconds (user + system) of this process so far.
fn cpu_seconds() -> f64 {
    process_cpu_seconds("/proc/self/stat")
}

/// CPU seconds (user + system) of the `postgres` processes running now (a local server;
/// processes that exit meanwhile, like autovacuum workers, are missed).
fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("comm")).is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|entry| process_cpu_seconds(&entry.path().join("stat").to_string_lossy()))
        .sum()
}

/// CPU seconds (user + system) from a `/proc/<pid>/stat` file.
fn process_cpu_seconds(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the command name (which ends at the last ')'): utime is the 12th, stime 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident memory of this process, in MiB.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn prefill(client: &Client, count: u64) -> anyhow::Result<()> {
    let mut next = 0;
    while next < count {
        let end = (next + 1000).min(count);
        let batch: Vec<Noop> = (next..end).map(Noop::new).collect();
        client.enqueue_many(&batch).await?;
        next = end;
    }
    Ok(())
}

async fn wait_processed(target: u64, deadline: Duration) -> anyhow::Result<()> {
    let end = Instant::now() + deadline;
    while PROCESSED.load(Ordering::Relaxed) < target {
        if Instant::now() > end {
            bail!(
                "only {} of {target} jobs ran within {deadline:?}",
                PROCESSED.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

async fn enqueue_single(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    enqueue_each(options, report, "enqueue-single", |client, n| async move {
        Noop::new(n).enqueue(&client).await
    })
    .await
}

async fn enqueue_unique(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    enqueue_each(options, report, "enqueue-unique", |client, n| async move {
        let enqueued = UniqueNoop::new(n)
            .enqueue_with(&client, EnqueueOptions::new())
            .await?;
        anyhow::ensure!(!enqueued.duplicate, "job {n} was taken for a duplicate");
        Ok(enqueued.id)
    })
    .await
}

/// Eight producer tasks enqueue one job per call with `enqueue`, `total` in all.
async fn enqueue_each<F, Fut, E>(
    options: &Options,
    report: &mut Report,
    scenario: &str,
    enqueue: F,
) -> anyhow::Result<()>
where
    F: Fn(Client, u64) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = Result<JobId, E>> + Send,
    E: Into<anyhow::Error>,
{
    let fixture = Fixture::new(options).await?;
    let total = options.jobs.unwrap_or(match options.kind {
        Kind::Postgres => 20_000,
        Kind::Memory => 400_000,
    });
    let producers = 8;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for producer in 0..producers {
        let client = fixture.client();
        tasks.push(tokio::spawn(async move {
            let mut n = producer;
            while n < total {
                enqueue(client.clone(), n).await.map_err(Into::into)?;
                n += producers;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    report.record(
        options.kind,
        scenario,
        "throughput",
        total as f64 / elapsed,
        "jobs/s",
    );
    fixture.teardown().await
}

async fn enqueue_batch(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let fixture = Fixture::new(options).await?;
    let total = options.jobs.unwrap_or(match options.kind {
        Kind::Postgres => 200_000,
        Kind::Memory => 1_000_000,
    });
    let client = fixture.client();
    let postgres_cpu_before = postgres_cpu_seconds();
    let started = Instant::now();
    prefill(&client, total).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let postgres_cpu = postgres_cpu_seconds() - postgres_cpu_before;
    report.record(
        options.kind,
        "enqueue-batch",
        "throughput",
        total as f64 / elapsed,
        "jobs/s",
    );
    if options.kind == Kind::Postgres {
        report.record_cpu(
            options.kind,
            "enqueue-batch",
            "postgres-cpu-per-1k-jobs",
            postgres_cpu,
            total,
        );
    }
    fixture.teardown().await
}

async fn process(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    process_with(options, report, "process", None).await
}

/// `process` with a queue concurrency limit of 50 and a rate limit far above the load.
async fn process_limited(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let limits = QueueLimits::new()
        .concurrency(50)
        .rate(100_000_000, Duration::from_secs(1));
    process_with(options, report, "process-limited", Some(limits)).await
}

async fn process_with(
    options: &Options,
    report: &mut Report,
    scenario: &str,
    limits: Option<QueueLimits>,
) -> anyhow::Result<()> {
    let fixture = Fixture::new(options).await?;
    let total = options.jobs.unwrap_or(match options.kind {
        Kind::Postgres => 200_000,
        Kind::Memory => 1_000_000,
    });
    let client = fixture.client();
    prefill(&client, total).await?;
    if let Some(limits) = limits {
        client.set_queue_limits("bench", limits).await?;
    }
    PROCESSED.store(0, Ordering::Relaxed);
    let cpu_before = cpu_seconds();
    let postgres_cpu_before = postgres_cpu_seconds();
    let started = Instant::now();
    drain(&fixture, options, total, "bench").await?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let postgres_cpu = postgres_cpu_seconds() - postgres_cpu_before;
    report.record(
        options.kind,
        scenario,
        "throughput",
        total as f64 / elapsed,
        "jobs/s",
    );
    report.record_cpu(options.kind, scenario, "cpu-per-1k-jobs", cpu, total);
    if options.kind == Kind::Postgres {
        report.record_cpu(
            options.kind,
            scenario,
            "postgres-cpu-per-1k-jobs",
            postgres_cpu,
            total,
        );
    }
    fixture.teardown().await
}

/// Starts a server on `queue`, waits until `total` jobs ran, and stops it; every job must be
/// Succeeded. `PROCESSED` counts from zero.
async fn drain(
    fixture: &Fixture,
    options: &Options,
    total: u64,
    queue: &str,
) -> anyhow::Result<()> {
    PROCESSED.store(0, Ordering::Relaxed);
    let server = fixture
        .server(options.workers)
        .queues([queue])
        .build()?
        .start()
        .await?;
    wait_processed(total, Duration::from_secs(1800)).await?;
    // Shutdown flushes the completer: every outcome is committed when it returns.
    server.shutdown().await?;
    let succeeded = fixture.storage.counts().await?.get(JobState::Succeeded);
    if succeeded != total {
        bail!("{succeeded} of {total} jobs are Succeeded after the run");
    }
    Ok(())
}

/// 10,000 jobs over 1,000 mutex keys (each key's jobs spread through the queue), against the
/// same number of plain jobs processed in a schema of their own just before.
async fn process_mutex(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let total = options.jobs.unwrap_or(10_000);
    let plain = Fixture::new(options).await?;
    prefill(&plain.client(), total).await?;
    let started = Instant::now();
    drain(&plain, options, total, "bench").await?;
    let plain_elapsed = started.elapsed().as_secs_f64();
    plain.teardown().await?;

    let fixture = Fixture::new(options).await?;
    let client = fixture.client();
    let mut next = 0;
    while next < total {
        let end = (next + 1000).min(total);
        let batch: Vec<Locked> = (next..end).map(|n| Locked::new(n, n % 1000)).collect();
        client.enqueue_many(&batch).await?;
        next = end;
    }
    OVERLAPS.store(0, Ordering::Relaxed);
    let started = Instant::now();
    drain(&fixture, options, total, "bench-mutex").await?;
    let elapsed = started.elapsed().as_secs_f64();
    let overlaps = OVERLAPS.load(Ordering::Relaxed);
    report.record(
        options.kind,
        "process-mutex",
        "plain-throughput",
        total as f64 / plain_elapsed,
        "jobs/s",
    );
    report.record(
        options.kind,
        "process-mutex",
        "throughput",
        total as f64 / elapsed,
        "jobs/s",
    );
    report.record(
        options.kind,
        "process-mutex",
        "overlaps",
        overlaps as f64,
        "jobs",
    );
    if overlaps > 0 {
        bail!("{overlaps} jobs ran while another job of their mutex key was running");
    }
    fixture.teardown().await
}

/// Enqueues `rate` jobs/s in batches every 10 ms for `seconds`; returns (processed rate,
/// backlog at the end).
async fn run_at_rate(fixture: &Fixture, rate: u64, seconds: f64) -> anyhow::Result<(f64, u64)> {
    let client = fixture.client();
    let per_tick = (rate / 100).max(1);
    let ticks = (seconds * 100.0) as u64;
    let start_count = PROCESSED.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut interval = tokio::time::interval(Duration::from_millis(10));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0u64;
    for _ in 0..ticks {
        interval.tick().await;
        let batch: Vec<Noop> = (sent..sent + per_tick).map(Noop::new).collect();
        client.enqueue_many(&batch).await?;
        sent += per_tick;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let processed = PROCESSED.load(Ordering::Relaxed) - start_count;
    Ok((processed as f64 / elapsed, sent.saturating_sub(processed)))
}

/// Offers rising rates for 4 s each while the server runs; reports the processed rate of the
/// highest offer it kept up with (its queue did not grow).
async fn steady(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let fixture = Fixture::new(options).await?;
    let server = fixture.server(options.workers).build()?.start().await?;
    PROCESSED.store(0, Ordering::Relaxed);
    let rates: &[u64] = match options.kind {
        Kind::Postgres => &[
            2_000, 5_000, 10_000, 15_000, 17_500, 20_000, 25_000, 30_000, 40_000, 50_000, 60_000,
            70_000, 80_000,
        ],
        Kind::Memory => &[50_000, 100_000, 200_000, 300_000, 400_000, 500_000, 700_000],
    };
    let mut sustained = 0.0;
    for &rate in rates {
        // Drain what is left from the previous step before measuring.
        let backlog_before = fixture.storage.counts().await?.get(JobState::Enqueued);
        if backlog_before > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (processed_rate, backlog) = run_at_rate(&fixture, rate, 4.0).await?;
        // Kept up: at the end at most a tenth of a second's offer waits (every 10 ms tick adds
        // a hundredth), so the queue did not grow over the step.
        let kept_up = backlog <= rate / 10;
        println!(
            "# steady: offered {rate} jobs/s, processed {processed_rate:.0} jobs/s, backlog {backlog}: {}",
            if kept_up { "kept up" } else { "fell behind" }
        );
        if !kept_up {
            break;
        }
        sustained = processed_rate;
    }
    let stopping = Instant::now();
    server.shutdown().await?;
    println!(
        "# steady: server stopped in {:.1} s",
        stopping.elapsed().as_secs_f64()
    );
    report.record(options.kind, "steady", "throughput", sustained, "jobs/s");
    fixture.teardown().await
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

async fn probe_latency(fixture: &Fixture, count: u64) -> anyhow::Result<(f64, f64)> {
    let client = fixture.client();
    LATENCIES.lock().unwrap_or_else(|e| e.into_inner()).clear();
    for _ in 0..count {
        Probe::new(micros_since_epoch()).enqueue(&client).await?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let end = Instant::now() + Duration::from_secs(60);
    while (LATENCIES.lock().unwrap_or_else(|e| e.into_inner()).len() as u64) < count {
        if Instant::now() > end {
            bail!("probe jobs did not all run within a minute");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut latencies = LATENCIES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    latencies.sort_unstable();
    Ok((percentile(&latencies, 0.50), percentile(&latencies, 0.99)))
}

async fn latency(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let fixture = Fixture::new(options).await?;
    let server = fixture.server(options.workers).build()?.start().await?;
    let (p50, p99) = probe_latency(&fixture, 1000).await?;
    report.record(options.kind, "latency", "idle-p50", p50, "ms");
    report.record(options.kind, "latency", "idle-p99", p99, "ms");
    // The same probes under a background load of 5,000 jobs/s on the same queue.
    let load_client = fixture.client();
    let stop = CancellationToken::new();
    let load_stop = stop.clone();
    let load = tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(10));
        let mut n = 0u64;
        while !load_stop.is_cancelled() {
            interval.tick().await;
            let batch: Vec<Noop> = (n..n + 50).map(Noop::new).collect();
            load_client.enqueue_many(&batch).await?;
            n += 50;
        }
        anyhow::Ok(())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let measured = probe_latency(&fixture, 1000).await;
    stop.cancel();
    load.await??;
    let (p50, p99) = measured?;
    report.record(options.kind, "latency", "loaded-5k-p50", p50, "ms");
    report.record(options.kind, "latency", "loaded-5k-p99", p99, "ms");
    server.shutdown().await?;
    fixture.teardown().await
}

async fn soak(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let fixture = Fixture::new(options).await?;
    let workers = options.workers;
    let server = fixture
        .server(workers)
        .retention(Duration::from_secs(60))
        .build()?
        .start()
        .await?;
    PROCESSED.store(0, Ordering::Relaxed);
    let rss_start = rss_mib();
    let dead_start = fixture.dead_tuples().await?;
    let minutes = (options.soak_seconds / 60).max(1);
    let rate = match options.kind {
        Kind::Postgres => 5_000,
        Kind::Memory => 100_000,
    };
    let mut rates = Vec::new();
    let mut max_dead = dead_start.unwrap_or(0);
    for minute in 0..minutes {
        let (processed, backlog) = run_at_rate(&fixture, rate, 60.0).await?;
        let dead = fixture.dead_tuples().await?;
        max_dead = max_dead.max(dead.unwrap_or(0));
        println!(
            "# soak minute {}: processed {processed:.0} jobs/s, backlog {backlog}, dead tuples {dead:?}, rss {:.1} MiB",
            minute + 1,
            rss_mib()
        );
        rates.push(processed);
    }
    server.shutdown().await?;
    let first = rates.first().copied().unwrap_or(0.0);
    let last = rates.last().copied().unwrap_or(0.0);
    report.record(options.kind, "soak", "first-minute", first, "jobs/s");
    report.record(options.kind, "soak", "last-minute", last, "jobs/s");
    report.record(options.kind, "soak", "rss-start", rss_start, "MiB");
    report.record(options.kind, "soak", "rss-end", rss_mib(), "MiB");
    if let Some(dead) = dead_start {
        report.record(
            options.kind,
            "soak",
            "dead-tuples-start",
            dead as f64,
            "rows",
        );
        report.record(
            options.kind,
            "soak",
            "dead-tuples-max",
            max_dead as f64,
            "rows",
        );
    }
    fixture.teardown().await
}

/// The same enqueue, fetch and complete statements, driven with tokio-postgres alone.
async fn ceiling(options: &Options, report: &mut Report) -> anyhow::Result<()> {
    let fixture = Fixture::new(options).await?;
    let Some(storage) = fixture.postgres.clone() else {
        return fixture.teardown().await;
    };
    let statements: BTreeMap<&str, String> = storage.__statements().into_iter().collect();
    let statements = Arc::new(statements);
    let channel = storage.channel().to_owned();
    let connect = || async {
        // The session settings the storage's own connections have.
        let mut config: tokio_postgres::Config = options.url.parse()?;
        config.options(jobs_postgres::SESSION_OPTIONS);
        let (db, connection) = config.connect(NoTls).await?;
        tokio::spawn(connection);
        anyhow::Ok(db)
    };

    // insert-single: 8 connections, one job per statement (autocommit).
    let singles = 20_000u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for producer in 0..8u64 {
        let db = connect().await?;
        let statements = statements.clone();
        tasks.push(tokio::spawn(async move {
            let insert = db.prepare(&statements["enqueue"]).await?;
            let mut n = producer;
            while n < singles {
                enqueue_raw(&db, &insert, n, 1).await?;
                n += 8;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    report.record(
        options.kind,
        "ceiling",
        "insert-single",
        singles as f64 / started.elapsed().as_secs_f64(),
        "jobs/s",
    );

    // insert-batch: batches of 1,000 on one connection.
    let db = connect().await?;
    let insert = db.prepare(&statements["enqueue"]).await?;
    let total = 200_000u64;
    let postgres_cpu_before = postgres_cpu_seconds();
    let started = Instant::now();
    let mut n = 0;
    while n < total {
        enqueue_raw(&db, &insert, n, 1000).await?;
        n += 1000;
    }
    report.record(
        options.kind,
        "ceiling",
        "insert-batch",
        total as f64 / started.elapsed().as_secs_f64(),
        "jobs/s",
    );
    report.record_cpu(
        options.kind,
        "ceiling",
        "insert-batch-postgres-cpu-per-1k-jobs",
        postgres_cpu_seconds() - postgres_cpu_before,
        total,
    );

    // process: the 220,000 jobs just inserted, claimed and completed by 4 connections, each
    // claiming 100 at a time and completing them in one BEGIN/complete/release/COMMIT round trip.
    let inserted = singles + total;
    let remaining = Arc::new(AtomicU64::new(inserted));
    let postgres_cpu_before = postgres_cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let db = connect().await?;
        let statements = statements.clone();
        let channel = channel.clone();
        let remaining = remaining.clone();
        tasks.push(tokio::spawn(async move {
            let fetch = db.prepare(&statements["fetch"]).await?;
            let complete = db.prepare(&statements["complete"]).await?;
            let release = db.prepare(&statements["release"]).await?;
            let server = format!("ceiling-{worker}");
            let queues = vec!["bench"];
            loop {
                let now = Utc::now();
                let lease = now + chrono::TimeDelta::minutes(5);
                let rows = db.query(&fetch, &[&queues, &100i64, &server, &now, &lease]).await?;
                if rows.is_empty() {
                    if remaining.load(Ordering::Relaxed) == 0 {
                        return anyhow::Ok(());
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                let ids: Vec<i64> = rows.iter().map(|row| row.get::<_, i64>("id")).collect();
                let n = ids.len();
                let at = Utc::now();
                let servers = vec![server.as_str(); n];
                let ats = vec![at; n];
                let states = vec!["succeeded"; n];
                let reasons: Vec<Option<&str>> = vec![None; n];
                let data = vec![serde_json::json!({"server": server, "attempt": 1, "duration_ms": 0, "latency_ms": 0}); n];
                let run_ats: Vec<Option<chrono::DateTime<Utc>>> = vec![None; n];
                let failed = vec![false; n];
                let complete_params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
                    &ids, &servers, &ats, &states, &reasons, &data, &run_ats, &failed, &channel,
                ];
                let not_met = jobs::storage::CONTINUATION_NOT_MET;
                let release_params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                    [&ids, &ats, &channel, &not_met];
                let (begun, completed, released, committed) = tokio::join!(
                    biased;
                    db.batch_execute("BEGIN"),
                    db.query(&complete, &complete_params),
                    db.query(&release, &release_params),
                    db.batch_execute("COMMIT"),
                );
                begun?;
                completed?;
                released?;
                committed?;
                remaining.fetch_sub(n as u64, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    report.record(
        options.kind,
        "ceiling",
        "process",
        inserted as f64 / started.elapsed().as_secs_f64(),
        "jobs/s",
    );
    report.record_cpu(
        options.kind,
        "ceiling",
        "postgres-cpu-per-1k-jobs",
        postgres_cpu_seconds() - postgres_cpu_before,
        inserted,
    );
    fixture.teardown().await
}

/// One ENQUEUE statement of `count` jobs, without NOTIFY (the ceiling of an insert).
async fn enqueue_raw(
    db: &tokio_postgres::Client,
    insert: &tokio_postgres::Statement,
    first: u64,
    count: u64,
) -> anyhow::Result<()> {
    let n = count as usize;
    let names = vec!["noop"; n];
    let queues = vec!["bench"; n];
    let args: Vec<String> = (first..first + count)
        .map(|i| format!("{{\"n\":{i}}}"))
        .collect();
    let states = vec!["enqueued"; n];
    let run_ats: Vec<Option<chrono::DateTime<Utc>>> = vec![None; n];
    let parents: Vec<Option<i64>> = vec![None; n];
    let conditions: Vec<Option<&str>> = vec![None; n];
    let recurring: Vec<Option<&str>> = vec![None; n];
    let reasons: Vec<Option<&str>> = vec![None; n];
    // NULL entry data: created Enqueued with no reason, as the storage sends it.
    let data: Vec<Option<serde_json::Value>> = vec![None; n];
    let now = Utc::now();
    let channel: Option<&str> = None;
    db.query(
        insert,
        &[
            &names,
            &queues,
            &args,
            &states,
            &run_ats,
            &parents,
            &conditions,
            &recurring,
            &reasons,
            &data,
            &now,
            &channel,
        ],
    )
    .await?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        EPOCH.get_or_init(Instant::now);
        println!(
            "# jobs throughput benchmark: storage={} workers={} cores={} scenarios={}",
            options.kind.name(),
            options.workers,
            std::thread::available_parallelism().map_or(1, usize::from),
            options.scenarios.join(",")
        );
        if options.kind == Kind::Postgres {
            drop_stale_schemas(&options.url).await?;
        }
        let mut report = Report::default();
        for round in 1..=options.repeat {
            if options.repeat > 1 {
                println!("# round {round} of {}", options.repeat);
            }
            for scenario in &options.scenarios {
                let started = Instant::now();
                match scenario.as_str() {
                    "enqueue-single" => enqueue_single(&options, &mut report).await?,
                    "enqueue-batch" => enqueue_batch(&options, &mut report).await?,
                    "process" => process(&options, &mut report).await?,
                    "enqueue-unique" => enqueue_unique(&options, &mut report).await?,
                    "process-limited" => process_limited(&options, &mut report).await?,
                    "process-mutex" => process_mutex(&options, &mut report).await?,
                    "steady" => steady(&options, &mut report).await?,
                    "latency" => latency(&options, &mut report).await?,
                    "ceiling" => ceiling(&options, &mut report).await?,
                    "soak" => soak(&options, &mut report).await?,
                    other => bail!("unknown scenario {other}"),
                }
                println!("# {scenario} took {:.1} s", started.elapsed().as_secs_f64());
            }
        }
        report.summary(options.kind);
        anyhow::Ok(())
    })
}
