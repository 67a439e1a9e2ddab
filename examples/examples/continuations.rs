//! Continuations: a child runs after its parent, reads its result, and chains go on;
//! `ContinueOn::Failed` runs only when the parent failed after its retries.
//!
//! ```text
//! cargo run -p examples --example continuations
//! ```

use std::time::Duration;

use anyhow::anyhow;
use jobs::prelude::*;

/// Downloads a file; returns its size.
#[job]
async fn download(url: String, ctx: JobContext) -> anyhow::Result<u64> {
    println!("[job {}] downloading {url}", ctx.id());
    Ok(1024)
}

/// Runs after `download`, with its result.
#[job]
async fn process(ctx: JobContext) -> anyhow::Result<String> {
    let size: u64 = ctx.parent_result()?.unwrap_or_default();
    println!(
        "[job {}] processing {size} bytes from job {:?}",
        ctx.id(),
        ctx.parent().map(|id| id.0)
    );
    Ok(format!("processed {size} bytes"))
}

/// Always fails, without retries.
#[job(retries = 0)]
async fn import(ctx: JobContext) -> anyhow::Result<()> {
    println!("[job {}] import fails", ctx.id());
    Err(anyhow!("the source is unreachable"))
}

/// Runs only if its parent failed.
#[job]
async fn alert(ctx: JobContext) {
    println!(
        "[job {}] alert: job {:?} failed",
        ctx.id(),
        ctx.parent().map(|id| id.0)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let server = Server::builder(storage).build()?.start().await?;

    let downloaded = Download::new("https://example.com/data.csv".into())
        .enqueue(&client)
        .await?;
    let processed = Process::new().continue_after(&client, downloaded).await?;

    let imported = Import::new().enqueue(&client).await?;
    let alerted = client
        .continue_after_with(imported, &Alert::new(), ContinueOn::Failed)
        .await?;

    for id in [processed, alerted] {
        let record = jobs::testing::wait_for_state(
            &client,
            id,
            JobState::Succeeded,
            Duration::from_secs(10),
        )
        .await?;
        println!(
            "job {id} ({}) succeeded with {:?}",
            record.name, record.result
        );
    }
    match Process::new().continue_after(&client, JobId(999_999)).await {
        Err(error) => println!("refused: {error}"),
        Ok(id) => println!("unexpected: job {id}"),
    }
    server.shutdown().await?;
    Ok(())
}
