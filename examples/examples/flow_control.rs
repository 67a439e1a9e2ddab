//! Flow control: priorities, unique jobs, a mutex, a job kind's concurrency and rate limits,
//! queue limits, a paused queue, and the outcomes a job chooses (snooze, fatal, cancel).
//!
//! ```text
//! cargo run -p examples --example flow_control
//! ```
//!
//! Everything here holds across every server on one storage: the limits are stored, and
//! each server counts the jobs all of them run.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::anyhow;
use jobs::prelude::*;

/// One digest per user while one is pending: a second enqueue answers the first job's id.
#[job(queue = "mail", priority = 2, unique)]
async fn send_digest(user_id: i64) {
    println!("digest for user {user_id}");
}

/// At most one ledger rebuild per account at once, on every server.
#[job(queue = "ledger", mutex = "account-{account_id}")]
async fn rebuild_ledger(account_id: i64, part: u32) {
    println!("rebuilding account {account_id}, part {part}");
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// At most 2 calls at once and 20 a second to a partner API, on every server.
#[job(queue = "partner", concurrency = 2, rate = "20/1s")]
async fn call_partner(request: u32) {
    println!("partner call {request}");
    tokio::time::sleep(Duration::from_millis(10)).await;
}

static BUSY: AtomicU32 = AtomicU32::new(1);

/// Snoozes while the partner is busy (no attempt spent), cancels a request that no longer
/// exists, and fails at once, without retries, on a rejected card.
#[job(queue = "partner", retries = 5)]
async fn charge(order: i64) -> anyhow::Result<()> {
    match order {
        0 => Err(JobError::cancel("the order was withdrawn").into()),
        1 => Err(JobError::fatal(anyhow!("card rejected")).into()),
        _ if BUSY.fetch_sub(1, Ordering::SeqCst) > 0 => {
            Err(JobError::snooze(Duration::from_millis(100)).into())
        }
        _ => {
            println!("charged order {order}");
            Ok(())
        }
    }
}

async fn settle(client: &Client, ids: &[JobId]) -> anyhow::Result<()> {
    for id in ids {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let state = client.job(*id).await?.state;
            if matches!(
                state,
                JobState::Succeeded | JobState::Failed | JobState::Deleted
            ) {
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "job {id} is still {state}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());

    // Unique: the second enqueue creates nothing and answers the pending job's id.
    let first = SendDigest::new(7)
        .enqueue_with(&client, EnqueueOptions::new())
        .await?;
    let again = SendDigest::new(7)
        .enqueue_with(&client, EnqueueOptions::new())
        .await?;
    println!(
        "digest: job {} created, then duplicate={} (job {})",
        first.id, again.duplicate, again.id
    );
    // Per-enqueue options: another queue, the first place in it, later.
    let urgent = EnqueueOptions::new()
        .queue("critical")
        .priority(0)
        .delay(Duration::from_millis(50))
        .unique_key("digest:urgent:7");
    let urgent = SendDigest::new(7).enqueue_with(&client, urgent).await?;

    // A queue limit, stored for every server; and a paused queue.
    client
        .set_queue_limits("ledger", QueueLimits::new().concurrency(4))
        .await?;
    client.pause_queue("mail").await?;

    let mut ids = vec![urgent.id];
    for part in 0..6 {
        ids.push(
            RebuildLedger::new(i64::from(part % 2), part)
                .enqueue(&client)
                .await?,
        );
    }
    for request in 0..10 {
        ids.push(CallPartner::new(request).enqueue(&client).await?);
    }
    let orders: Vec<JobId> = vec![
        Charge::new(0).enqueue(&client).await?,
        Charge::new(1).enqueue(&client).await?,
        Charge::new(2).enqueue(&client).await?,
    ];

    let server = Server::builder(storage)
        .queues(["critical", "mail", "ledger", "partner"])
        .build()?
        .start()
        .await?;
    settle(&client, &ids).await?;
    settle(&client, &orders).await?;

    for info in client.queues().await? {
        println!(
            "queue {:<8} paused={:<5} {:<14} enqueued={}",
            info.queue,
            info.settings.paused,
            info.settings.limits,
            info.counts.get(&JobState::Enqueued).copied().unwrap_or(0)
        );
    }
    println!(
        "mail is paused: the digest waits ({})",
        client.job(first.id).await?.state
    );
    client.resume_queue("mail").await?;
    settle(&client, &[first.id]).await?;

    for id in orders {
        let record = client.job(id).await?;
        let reasons: Vec<String> = record
            .history
            .iter()
            .filter_map(|entry| entry.reason.clone())
            .collect();
        println!("order job {id}: {} ({})", record.state, reasons.join("; "));
    }
    server.shutdown().await?;
    Ok(())
}
