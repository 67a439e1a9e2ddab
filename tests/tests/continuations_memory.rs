//! End-to-end: continuations run by a server on MemoryStorage.

mod support;

use anyhow::anyhow;
use jobs::prelude::*;
use support::*;

/// The seeds' first half.
#[job(queue = "chain")]
async fn hello() -> anyhow::Result<String> {
    Ok("Hello, ".to_owned())
}

/// The seeds' second half: reads its parent's result.
#[job(queue = "chain")]
async fn world(ctx: JobContext) -> anyhow::Result<String> {
    let greeting: String = ctx.parent_result()?.unwrap_or_default();
    Ok(format!("{greeting}world!"))
}

/// Appends a letter to its parent's text.
#[job(queue = "chain")]
async fn append(letter: char, ctx: JobContext) -> anyhow::Result<String> {
    let text: Option<String> = ctx.parent_result()?;
    Ok(format!("{}{letter}", text.unwrap_or_default()))
}

#[job(queue = "chain", retries = 0)]
async fn broken() -> anyhow::Result<()> {
    Err(anyhow!("broken on purpose"))
}

/// Cleans up after a failure.
#[job(queue = "chain")]
async fn clean_up(ctx: JobContext) -> anyhow::Result<String> {
    Ok(format!(
        "cleaned up after job {}",
        ctx.parent().map(|id| id.to_string()).unwrap_or_default()
    ))
}

fn chain_server(storage: &MemoryStorage) -> jobs::ServerBuilder {
    fast(storage.clone()).queues(["chain"])
}

#[tokio::test]
async fn hello_then_world() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let parent = Hello::new().enqueue(&client).await.unwrap();
    let child = World::new().continue_after(&client, parent).await.unwrap();
    assert_eq!(client.job(child).await.unwrap().state, JobState::Awaiting);
    assert_eq!(client.job(parent).await.unwrap().children, vec![child]);
    let server = chain_server(&storage)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let done = wait_state(&client, child, JobState::Succeeded).await;
    assert_eq!(done.result, Some(serde_json::json!("Hello, world!")));
    assert_eq!(done.parent, Some(parent));
    assert_eq!(
        states(&done),
        vec![
            JobState::Awaiting,
            JobState::Enqueued,
            JobState::Processing,
            JobState::Succeeded
        ]
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn chains_of_any_length_with_several_children() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let mut previous = Append::new('a').enqueue(&client).await.unwrap();
    let mut ids = vec![previous];
    for letter in ['b', 'c', 'd', 'e', 'f', 'g', 'h'] {
        previous = Append::new(letter)
            .continue_after(&client, previous)
            .await
            .unwrap();
        ids.push(previous);
    }
    let sibling = Append::new('!')
        .continue_after(&client, ids[2])
        .await
        .unwrap();
    let server = chain_server(&storage)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let last = wait_state(&client, previous, JobState::Succeeded).await;
    assert_eq!(last.result, Some(serde_json::json!("abcdefgh")));
    let sibling = wait_state(&client, sibling, JobState::Succeeded).await;
    assert_eq!(sibling.result, Some(serde_json::json!("abc!")));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn continuation_on_failure_runs_after_retries_are_exhausted() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let parent = Broken::new().enqueue(&client).await.unwrap();
    let on_failure = client
        .continue_after_with(parent, &CleanUp::new(), ContinueOn::Failed)
        .await
        .unwrap();
    let on_success = World::new().continue_after(&client, parent).await.unwrap();
    let server = chain_server(&storage)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    wait_state(&client, parent, JobState::Failed).await;
    let cleaned = wait_state(&client, on_failure, JobState::Succeeded).await;
    assert_eq!(
        cleaned.result,
        Some(serde_json::json!(format!("cleaned up after job {parent}")))
    );
    assert_eq!(
        client.job(on_success).await.unwrap().state,
        JobState::Awaiting,
        "a failed parent can still be requeued"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn deleting_a_parent_deletes_the_chain_and_a_missing_parent_is_an_error() {
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let parent = Hello::new()
        .schedule(&client, std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    let child = World::new().continue_after(&client, parent).await.unwrap();
    let grandchild = Append::new('x')
        .continue_after(&client, child)
        .await
        .unwrap();
    client.delete(parent).await.unwrap();
    for id in [child, grandchild] {
        let record = client.job(id).await.unwrap();
        assert_eq!(record.state, JobState::Deleted);
        assert!(
            last_reason(&record).starts_with("continuation condition not met"),
            "{}",
            last_reason(&record)
        );
    }
    let missing = JobId(424_242);
    let error = World::new()
        .continue_after(&client, missing)
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "parent job 424242 does not exist");
}
