//! An enqueuing process for the unique-jobs race test (`tests/tests/postgres_flow.rs`): at
//! `PG_UNIQUE_START_MS` (Unix time in milliseconds), 8 tasks each enqueue one unique job per
//! round with the key `race:<round>`, for `PG_UNIQUE_ROUNDS` rounds, and the process prints
//! one line `answer <round> <id> <duplicate>` per enqueue.
//!
//! | variable | what |
//! | --- | --- |
//! | `JOBS_TEST_DATABASE_URL` | the database (default: the local `postgres`) |
//! | `PG_WORKER_SCHEMA` | the schema, already migrated |
//! | `PG_UNIQUE_START_MS` | when to start |
//! | `PG_UNIQUE_ROUNDS` | how many keys |

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jobs::prelude::*;
use jobs_postgres::{PostgresOptions, PostgresStorage};

/// The job enqueued; never run here.
#[job(unique)]
async fn digest(user: u64) {
    let _ = user;
}

fn setting(name: &str) -> anyhow::Result<String> {
    std::env::var(name).map_err(|_| anyhow::anyhow!("{name} is not set"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("JOBS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let schema = setting("PG_WORKER_SCHEMA")?;
    let start: u64 = setting("PG_UNIQUE_START_MS")?.parse()?;
    let rounds: u64 = setting("PG_UNIQUE_ROUNDS")?.parse()?;
    let storage =
        PostgresStorage::connect_with(&url, PostgresOptions::new().schema(schema).pool_size(8))
            .await?;
    let client = Client::new(storage);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    tokio::time::sleep(Duration::from_millis(start.saturating_sub(now))).await;
    let mut tasks = Vec::new();
    for task in 0..8 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for round in 0..rounds {
                let options = EnqueueOptions::new().unique_key(format!("race:{round}"));
                let enqueued = Digest::new(task).enqueue_with(&client, options).await?;
                answers.push((round, enqueued));
            }
            anyhow::Ok(answers)
        }));
    }
    for task in tasks {
        for (round, enqueued) in task.await?? {
            println!("answer {round} {} {}", enqueued.id, enqueued.duplicate);
        }
    }
    Ok(())
}
