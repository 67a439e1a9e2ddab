//! Queue shares: a server whose queues' limits leave room for its capacity reserves that room
//! and fetches under it; every other fetch counts it; a settings change, a lapsed lease or a
//! leaving server ends it, and the limits hold throughout.

use chrono::{DateTime, TimeDelta, Utc};
use jobs::storage::{FetchRequest, InitialState, NewJob};
use jobs::{QueueLimits, Storage};
use jobs_postgres::testing::TestSchema;
use jobs_postgres::PostgresStorage;

const LEASE: TimeDelta = TimeDelta::seconds(60);

fn job(queue: &str) -> NewJob {
    NewJob::plain("work", queue, "{}", InitialState::Enqueued)
}

async fn enqueue(storage: &dyn Storage, queue: &str, count: usize) {
    storage
        .enqueue((0..count).map(|_| job(queue)).collect(), Utc::now())
        .await
        .expect("enqueue");
}

/// A flow-controlled fetch of the queue `q` (no gated jobs), `limit` jobs at most, by a
/// server of `capacity` at `now`; how many it took.
async fn fetch(
    storage: &dyn Storage,
    server: &str,
    limit: usize,
    capacity: usize,
    now: DateTime<Utc>,
) -> usize {
    let queues = vec!["q".to_owned()];
    storage
        .fetch(FetchRequest {
            server_id: server,
            queues: &queues,
            limit,
            capacity,
            now,
            lease_until: now + LEASE,
            flow: true,
            gated: false,
        })
        .await
        .expect("fetch")
        .len()
}

/// The shares stored for the queue `q`: (server, slots), by server.
async fn shares(schema: &TestSchema) -> Vec<(String, i32)> {
    let client = schema.storage().pool().get().await.expect("connection");
    let sql = format!(
        "SELECT server_id, slots FROM {}.queue_shares WHERE queue = 'q' ORDER BY server_id",
        schema.schema()
    );
    client
        .query(&sql, &[])
        .await
        .expect("shares")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

async fn limit(storage: &dyn Storage, concurrency: u32) {
    storage
        .set_queue_limits("q", QueueLimits::new().concurrency(concurrency))
        .await
        .expect("limits");
}

/// A second process's storage on the same schema.
async fn elsewhere(schema: &TestSchema) -> PostgresStorage {
    PostgresStorage::connect_with(schema.url(), schema.options())
        .await
        .expect("a second storage")
}

#[tokio::test]
async fn a_share_is_reserved_when_the_limit_has_room_and_every_other_fetch_counts_it() {
    let schema = TestSchema::new().await;
    let storage = schema.storage();
    limit(storage, 10).await;
    enqueue(storage, "q", 30).await;
    let now = Utc::now();

    assert_eq!(fetch(storage, "a", 1, 4, now).await, 1);
    assert_eq!(shares(&schema).await, vec![("a".to_owned(), 4)]);
    // No room for a share of 10 beside a's 4: b counts a's share and fetches by the limit.
    assert_eq!(fetch(storage, "b", 10, 10, now).await, 6);
    assert_eq!(shares(&schema).await, vec![("a".to_owned(), 4)]);
    // a spends its share: three more, and the queue runs exactly its limit.
    assert_eq!(fetch(storage, "a", 3, 4, now).await, 3);
    assert_eq!(fetch(storage, "c", 5, 5, now).await, 0);
    assert_eq!(fetch(storage, "b", 4, 10, now).await, 0);
    schema.teardown().await;
}

#[tokio::test]
async fn a_settings_change_elsewhere_ends_the_shares_and_counts_their_running_jobs() {
    let schema = TestSchema::new().await;
    let storage = schema.storage();
    let other = elsewhere(&schema).await;
    limit(storage, 10).await;
    enqueue(storage, "q", 30).await;
    let now = Utc::now();
    assert_eq!(fetch(storage, "a", 2, 4, now).await, 2);

    // Paused by another process: a's next fetch, under the share it believes it holds, takes
    // nothing.
    other.set_queue_paused("q", true).await.expect("pause");
    assert!(shares(&schema).await.is_empty());
    assert_eq!(fetch(storage, "a", 2, 4, now).await, 0);
    assert_eq!(fetch(storage, "a", 2, 4, now).await, 0, "paused");

    // Resumed with a limit of 3: a's two running jobs are counted, so one more may start.
    other.set_queue_paused("q", false).await.expect("resume");
    limit(&other, 3).await;
    assert_eq!(fetch(storage, "b", 5, 5, now).await, 1);
    assert_eq!(fetch(storage, "a", 2, 4, now).await, 0);
    schema.teardown().await;
}

#[tokio::test]
async fn a_crashed_servers_share_lapses_with_its_lease_and_a_heartbeat_renews_a_live_one() {
    let schema = TestSchema::new().await;
    let storage = schema.storage();
    limit(storage, 4).await;
    enqueue(storage, "q", 30).await;
    let now = Utc::now();
    assert_eq!(fetch(storage, "a", 1, 4, now).await, 1);
    assert_eq!(
        fetch(storage, "b", 4, 4, now).await,
        0,
        "a's share takes the limit"
    );

    // a's heartbeat pushes its share a lease further; b's server never beats.
    storage
        .register_server(
            &jobs::storage::ServerInfo {
                id: "a".into(),
                queues: vec!["q".into()],
                workers: 4,
                started_at: now,
            },
            now,
        )
        .await
        .expect("register");
    storage
        .heartbeat("a", now + TimeDelta::seconds(50))
        .await
        .expect("heartbeat");
    let later = now + TimeDelta::seconds(70);
    assert_eq!(fetch(storage, "b", 4, 4, later).await, 0, "renewed");

    // Once a stops beating, its share lapses a lease after the last beat: its slots are free
    // (its job's lease has lapsed too).
    let lapsed = now + TimeDelta::seconds(111);
    assert_eq!(fetch(storage, "b", 4, 4, lapsed).await, 4);
    // The maintenance that removes dead servers removes lapsed shares too; b's stays.
    storage
        .remove_dead_servers(lapsed)
        .await
        .expect("remove dead servers");
    assert_eq!(shares(&schema).await, vec![("b".to_owned(), 4)]);
    schema.teardown().await;
}

#[tokio::test]
async fn a_leaving_server_or_one_fetching_gated_jobs_hands_its_share_back_as_claims() {
    let schema = TestSchema::new().await;
    let storage = schema.storage();
    limit(storage, 6).await;
    enqueue(storage, "q", 30).await;
    let now = Utc::now();
    assert_eq!(fetch(storage, "a", 1, 4, now).await, 1);
    storage.unregister_server("a").await.expect("unregister");
    assert!(shares(&schema).await.is_empty());
    // a's running job is a claim now: five slots left.
    assert_eq!(fetch(storage, "b", 6, 6, now).await, 5);

    let schema2 = TestSchema::new().await;
    let storage = schema2.storage();
    limit(storage, 6).await;
    enqueue(storage, "q", 30).await;
    assert_eq!(fetch(storage, "a", 2, 4, now).await, 2);
    let queues = vec!["q".to_owned()];
    let gated = storage
        .fetch(FetchRequest {
            server_id: "a",
            queues: &queues,
            limit: 1,
            capacity: 4,
            now,
            lease_until: now + LEASE,
            flow: true,
            gated: true,
        })
        .await
        .expect("gated fetch");
    assert_eq!(gated.len(), 1);
    assert!(shares(&schema2).await.is_empty());
    assert_eq!(
        fetch(storage, "b", 6, 6, now).await,
        3,
        "a's three jobs counted"
    );
    schema.teardown().await;
    schema2.teardown().await;
}

#[tokio::test]
async fn a_share_reserves_part_of_the_rate_window_and_the_rate_holds() {
    let schema = TestSchema::new().await;
    let storage = schema.storage();
    storage
        .set_queue_limits(
            "q",
            QueueLimits::new().rate(100, std::time::Duration::from_secs(3600)),
        )
        .await
        .expect("limits");
    enqueue(storage, "q", 150).await;
    let now = Utc::now();
    // a (capacity 5) reserves a quarter of the window's 100 starts: 25.
    assert_eq!(fetch(storage, "a", 5, 5, now).await, 5);
    // b has no room for a share of its own and takes what is left by the limited fetch.
    assert_eq!(fetch(storage, "b", 100, 100, now).await, 75);
    // a spends the rest of its 25, then finds no more.
    let mut taken = 0;
    for _ in 0..6 {
        taken += fetch(storage, "a", 5, 5, now).await;
    }
    assert_eq!(taken, 20);
    schema.teardown().await;
}
