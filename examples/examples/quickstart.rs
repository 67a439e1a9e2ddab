//! The seeds' examples as Rust: fire-and-forget, delayed, an instance job resolved from the
//! container, a job that honours its cancellation token, a job that fails twice then succeeds
//! through retries, a minutely recurring job and the "Hello, " → "world!" continuation.
//!
//! Runs on the embedded MemoryStorage, or on PostgreSQL when `DATABASE_URL` is set
//! (`postgres://postgres@127.0.0.1:5432/postgres`: the tables are created in the schema `jobs`),
//! and serves the dashboard on http://127.0.0.1:9400/
//! (`DASHBOARD_ADDR` changes the address). Ctrl-C stops it gracefully.
//!
//! ```text
//! cargo run -p examples --example quickstart
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use jobs::prelude::*;
use jobs::Storage;

/// Fire-and-forget: `BackgroundJob.Enqueue(() => Console.WriteLine("Hello, world!"))`.
#[job]
async fn hello_world(ctx: JobContext) {
    println!("[job {}] Hello, world!", ctx.id());
}

/// A delayed job: `BackgroundJob.Schedule(() => ..., TimeSpan.FromSeconds(5))`.
#[job]
async fn delayed(message: String, ctx: JobContext) {
    println!("[job {}] {message}", ctx.id());
}

/// A service the container provides; its `send` method is an instance job.
#[derive(Debug)]
pub struct EmailService {
    sender: String,
}

#[job]
impl EmailService {
    /// Sends an email (prints it).
    pub async fn send(&self, to: String, ctx: JobContext) -> anyhow::Result<()> {
        println!(
            "[job {}] EmailService ({}) sends a welcome mail to {to}",
            ctx.id(),
            self.sender
        );
        Ok(())
    }
}

/// A long job that honours its cancellation token (fired on shutdown or delete).
#[job]
async fn long_running(
    steps: u32,
    token: CancellationToken,
    ctx: JobContext,
) -> anyhow::Result<u32> {
    for step in 1..=steps {
        tokio::select! {
            () = token.cancelled() => {
                println!("[job {}] cancellation requested: stopping at step {step} of {steps}", ctx.id());
                return Err(anyhow!("cancelled at step {step}"));
            }
            () = tokio::time::sleep(Duration::from_secs(2)) => {
                println!("[job {}] long job: step {step} of {steps} done (Ctrl-C cancels it)", ctx.id());
            }
        }
    }
    Ok(steps)
}

/// Fails on its first two attempts, succeeds on the third (retries 1 s apart).
#[job(retries = 3, retry_delays = [1])]
async fn flaky_payment(order: u32, ctx: JobContext) -> anyhow::Result<String> {
    if ctx.attempt() < 3 {
        println!(
            "[job {}] payment for order {order}: attempt {} fails",
            ctx.id(),
            ctx.attempt()
        );
        return Err(anyhow!(
            "payment gateway timed out (attempt {})",
            ctx.attempt()
        ));
    }
    println!(
        "[job {}] payment for order {order}: attempt {} succeeds",
        ctx.id(),
        ctx.attempt()
    );
    Ok(format!("receipt for order {order}"))
}

/// A recurring job: `RecurringJob.AddOrUpdate(() => ..., Cron.Minutely)`.
#[job]
async fn minutely_report(ctx: JobContext) {
    println!(
        "[job {}] minutely report (recurring, {})",
        ctx.id(),
        chrono_now()
    );
}

/// First half of the continuation.
#[job]
async fn hello(ctx: JobContext) -> anyhow::Result<String> {
    println!("[job {}] Hello, ", ctx.id());
    Ok("Hello, ".to_owned())
}

/// Second half: runs after `hello` succeeded, and reads its result.
#[job]
async fn world(ctx: JobContext) -> anyhow::Result<String> {
    let greeting: String = ctx.parent_result()?.unwrap_or_default();
    println!(
        "[job {}] world! (after job {:?}: {greeting:?})",
        ctx.id(),
        ctx.parent().map(|id| id.0)
    );
    Ok(format!("{greeting}world!"))
}

fn chrono_now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| format!("unix time {}", d.as_secs()))
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .init();

    let storage = open_storage().await?;
    let client = Client::from_arc(storage.clone());

    let services = Services::new().with(Arc::new(EmailService {
        sender: "noreply@example.com".into(),
    }));
    let server = Server::builder_from_arc(storage)
        .queues(["default"])
        .workers(10)
        .container(services)
        .shutdown_grace(Duration::from_secs(1))
        .build()?
        .start()
        .await?;
    println!("server {} started; press Ctrl-C to stop", server.id());

    let mut watched: Vec<(JobId, &str)> = vec![
        (HelloWorld::new().enqueue(&client).await?, "fire-and-forget"),
        (
            Delayed::new("delayed job, 5 s after start".into())
                .schedule(&client, Duration::from_secs(5))
                .await?,
            "delayed",
        ),
        (
            EmailServiceSend::new("ada@example.com".into())
                .enqueue(&client)
                .await?,
            "instance job",
        ),
        (
            LongRunning::new(1000).enqueue(&client).await?,
            "cancellable",
        ),
        (FlakyPayment::new(42).enqueue(&client).await?, "retried"),
    ];
    let parent = Hello::new().enqueue(&client).await?;
    let child = World::new().continue_after(&client, parent).await?;
    watched.push((parent, "continuation parent"));
    watched.push((child, "continuation"));
    client
        .add_or_update_recurring("minutely-report", Cron::minutely(), MinutelyReport::new())
        .await?;
    watched.push((
        client.trigger_recurring("minutely-report").await?,
        "recurring (triggered now)",
    ));

    let stop_dashboard = CancellationToken::new();
    let dashboard = tokio::spawn(serve_dashboard(client.clone(), stop_dashboard.clone()));
    let watcher = tokio::spawn(watch(client.clone(), watched));
    tokio::signal::ctrl_c().await?;
    println!("Ctrl-C: shutting down gracefully");
    server.shutdown().await?;
    stop_dashboard.cancel();
    let _ = dashboard.await;
    watcher.abort();
    println!("stopped");
    Ok(())
}

/// PostgreSQL when `DATABASE_URL` is set (migrated on start), else the embedded MemoryStorage.
async fn open_storage() -> anyhow::Result<Arc<dyn Storage>> {
    match std::env::var("DATABASE_URL") {
        Ok(url) => {
            let storage = jobs_postgres::PostgresStorage::connect(&url).await?;
            let applied = storage.migrate().await?;
            println!(
                "storage: PostgreSQL, schema `{}` ({} migrations applied now)",
                storage.schema(),
                applied.len()
            );
            Ok(Arc::new(storage))
        }
        Err(_) => {
            println!("storage: embedded MemoryStorage (jobs are lost when the process exits; set DATABASE_URL for PostgreSQL)");
            Ok(Arc::new(MemoryStorage::new()))
        }
    }
}

/// Serves the dashboard until `stop` fires; a busy port is reported, not fatal.
async fn serve_dashboard(client: Client, stop: CancellationToken) {
    let addr = std::env::var("DASHBOARD_ADDR").unwrap_or_else(|_| "127.0.0.1:9400".to_owned());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(error) => {
            println!("dashboard: cannot listen on {addr} ({error}); set DASHBOARD_ADDR to another address");
            return;
        }
    };
    println!("dashboard: http://{addr}/");
    let dashboard = jobs::dashboard::Dashboard::from_client(client).title("jobs quickstart");
    if let Err(error) = dashboard
        .serve_listener(listener, async move { stop.cancelled().await })
        .await
    {
        println!("dashboard stopped: {error}");
    }
}

/// Prints each job's state whenever it changes, with its id; and each recurring firing.
async fn watch(client: Client, jobs: Vec<(JobId, &'static str)>) {
    let mut seen: HashMap<JobId, JobState> = HashMap::new();
    let mut jobs = jobs;
    let mut last_recurring = None;
    loop {
        if let Ok(recurring) = client.recurring_job("minutely-report").await {
            if recurring.last_job_id != last_recurring {
                last_recurring = recurring.last_job_id;
                if let Some(id) = recurring.last_job_id {
                    if !jobs.iter().any(|(known, _)| *known == id) {
                        jobs.push((id, "recurring"));
                    }
                }
            }
        }
        for (id, kind) in &jobs {
            if let Ok(record) = client.job(*id).await {
                if seen.insert(*id, record.state) != Some(record.state) {
                    let reason = record
                        .history
                        .last()
                        .and_then(|e| e.reason.clone())
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default();
                    println!(
                        "  job {id} [{kind}] {}: {}{reason}",
                        record.name, record.state
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
