//! Recurring jobs: add or update by id, CRON helpers and expressions, time zones, trigger,
//! pause, resume, list, remove.
//!
//! ```text
//! cargo run -p examples --example recurring
//! ```

use std::time::Duration;

use jobs::prelude::*;

/// Sends the nightly report.
#[job]
async fn nightly_report(recipients: Vec<String>, ctx: JobContext) {
    println!("[job {}] nightly report for {recipients:?}", ctx.id());
}

/// Cleans temporary files.
#[job]
async fn clean_temp_files(older_than_hours: u32, ctx: JobContext) {
    println!(
        "[job {}] removing temp files older than {older_than_hours} h",
        ctx.id()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());

    // Helpers, a 5-field expression, a 6-field one with seconds, an IANA time zone.
    client
        .add_or_update_recurring(
            "nightly-report",
            Cron::daily_at(2, 30)?,
            NightlyReport::new(vec!["ops@example.com".into()]),
        )
        .await?;
    client
        .add_or_update_recurring_with(
            "clean-temp",
            "*/15 * * * *",
            CleanTempFiles::new(24),
            RecurringOptions::new()
                .time_zone("Europe/Paris")
                .skip_if_running(),
        )
        .await?;
    client
        .add_or_update_recurring(
            "every-ten-seconds",
            "*/10 * * * * *",
            CleanTempFiles::new(1),
        )
        .await?;
    // A broken expression is an error here, not at 3 a.m.
    let error = client
        .add_or_update_recurring("broken", "61 * * * *", CleanTempFiles::new(1))
        .await
        .unwrap_err();
    println!("refused: {error}");

    for job in client.recurring_jobs().await? {
        println!(
            "{:<18} {:<16} {:<13} next {:?} ({})",
            job.id,
            job.cron,
            job.time_zone,
            job.next_run.map(|t| t.to_rfc3339()),
            Cron::from(job.cron.as_str()).describe()
        );
    }

    let server = Server::builder(storage).build()?.start().await?;
    let triggered = client.trigger_recurring("nightly-report").await?;
    println!("triggered nightly-report now: job {triggered}");
    client.pause_recurring("clean-temp").await?;
    println!("paused clean-temp; waiting for two firings of every-ten-seconds (up to 25 s)...");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(25);
    let mut fired = Vec::new();
    while fired.len() < 2 && tokio::time::Instant::now() < deadline {
        let job = client.recurring_job("every-ten-seconds").await?;
        if let Some(id) = job.last_job_id.filter(|id| !fired.contains(id)) {
            fired.push(id);
            println!(
                "every-ten-seconds fired job {id} at {:?}",
                job.last_run.map(|t| t.to_rfc3339())
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    client.resume_recurring("clean-temp").await?;
    client.remove_recurring("every-ten-seconds").await?;
    println!(
        "{} recurring jobs left",
        client.recurring_jobs().await?.len()
    );
    server.shutdown().await?;
    Ok(())
}
