//! Migrations: up → down → up, re-running is a no-op, concurrent runs migrate once, and the
//! storage explains what is wrong with a schema that was never migrated or a bad name.

use jobs::storage::{Completion, FetchRequest, InitialState, NewJob, Outcome, StateData};
use jobs::{JobId, JobState, Storage};
use jobs_postgres::testing::TestSchema;
use jobs_postgres::{PostgresError, PostgresOptions, PostgresStorage, MIGRATIONS};

fn all_versions() -> Vec<u32> {
    MIGRATIONS
        .iter()
        .map(|migration| migration.version)
        .collect()
}

/// The first column of what `sql` returns, as text.
async fn strings(
    storage: &PostgresStorage,
    sql: &str,
    params: &[&(dyn jobs_postgres::tokio_postgres::types::ToSql + Sync)],
) -> Vec<String> {
    let client = storage.pool().get().await.expect("connection");
    client
        .query(sql, params)
        .await
        .expect(sql)
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn tables(storage: &PostgresStorage) -> Vec<String> {
    strings(
        storage,
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'S', 'i') ORDER BY 1",
        &[&storage.schema()],
    )
    .await
}

/// The states of a job's history rows, read with SQL (whatever version the schema is at).
async fn history_rows(storage: &PostgresStorage, id: JobId) -> Vec<String> {
    let sql = format!(
        "SELECT state FROM \"{}\".job_history WHERE job_id = $1 ORDER BY seq",
        storage.schema()
    );
    strings(storage, &sql, &[&id.0]).await
}

/// The states of a job's history, as the storage reads them.
async fn history_states(storage: &PostgresStorage, id: JobId) -> Vec<JobState> {
    let record = storage.job(id).await.expect("job").expect("exists");
    record.history.iter().map(|entry| entry.state).collect()
}

fn job(name: &str) -> NewJob {
    NewJob {
        name: name.to_owned(),
        queue: "default".to_owned(),
        args: "{}".to_owned(),
        initial: InitialState::Enqueued,
        recurring: None,
    }
}

#[tokio::test]
async fn up_down_up_and_rerun_is_a_no_op() {
    let schema = TestSchema::empty().await;
    let storage = PostgresStorage::connect_with(schema.url(), schema.options())
        .await
        .expect("connect");
    assert!(storage
        .applied_migrations()
        .await
        .expect("status")
        .is_empty());

    assert_eq!(storage.migrate().await.expect("up"), all_versions());
    let migrated = tables(&storage).await;
    assert!(
        migrated.contains(&"jobs_fetch_idx".to_owned()),
        "{migrated:?}"
    );
    assert_eq!(
        storage.migrate().await.expect("again"),
        Vec::<u32>::new(),
        "a no-op"
    );
    assert_eq!(tables(&storage).await, migrated);
    let ids = storage
        .enqueue(vec![job("a"), job("b")], chrono::Utc::now())
        .await
        .expect("enqueue");
    let (id, done) = (ids[0], ids[1]);
    // `id` running: since 0005 its Processing entry is read from the job row; `done` succeeded.
    let now = chrono::Utc::now();
    let queues = ["default".to_owned()];
    let fetched = storage
        .fetch(FetchRequest {
            server_id: "server-a",
            queues: &queues,
            limit: 2,
            now,
            lease_until: now + chrono::TimeDelta::seconds(60),
        })
        .await
        .expect("fetch");
    assert_eq!(fetched.len(), 2);
    storage
        .complete(&[Completion {
            id: done,
            server_id: "server-a".into(),
            at: chrono::Utc::now(),
            outcome: Outcome::Succeeded {
                data: StateData {
                    result: Some(serde_json::json!({"total": 3})),
                    ..StateData::default()
                },
            },
        }])
        .await
        .expect("complete");
    assert_eq!(
        history_states(&storage, id).await,
        [JobState::Enqueued, JobState::Processing]
    );
    let succeeded = [
        JobState::Enqueued,
        JobState::Processing,
        JobState::Succeeded,
    ];
    assert_eq!(history_states(&storage, done).await, succeeded);
    // Since 0006 a plain enqueue's Enqueued entry and a success (with its attempt) are the job
    // row too: no history rows at all.
    assert_eq!(history_rows(&storage, id).await, Vec::<String>::new());
    assert_eq!(history_rows(&storage, done).await, Vec::<String>::new());

    // Down to before 0006 (which gives the Enqueued and Succeeded entries their rows back),
    // then 0005 (the running attempt its Processing row); up again, they go back into the job
    // rows. The history reads the same throughout.
    let newer_than_5: Vec<u32> = all_versions()
        .into_iter()
        .filter(|v| *v > 5)
        .rev()
        .collect();
    assert_eq!(newer_than_5.last(), Some(&6));
    assert_eq!(
        storage.migrate_down_to(5).await.expect("down to 5"),
        newer_than_5
    );
    assert_eq!(history_rows(&storage, id).await, ["enqueued"]);
    assert_eq!(
        history_rows(&storage, done).await,
        ["enqueued", "succeeded"]
    );
    assert_eq!(
        storage.migrate_down_to(4).await.expect("down to 4"),
        vec![5]
    );
    assert_eq!(
        storage.applied_migrations().await.expect("status"),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        history_rows(&storage, id).await,
        ["enqueued", "processing"],
        "jobs and their history survive"
    );
    assert_eq!(
        storage.migrate().await.expect("up again"),
        all_versions()[4..].to_vec()
    );
    // Created before 0006: its stored Enqueued row stays and is read as before.
    assert_eq!(history_rows(&storage, id).await, ["enqueued"]);
    assert_eq!(
        history_states(&storage, id).await,
        [JobState::Enqueued, JobState::Processing]
    );
    // 0005's down dropped the Processing entry of the ended attempt (said in its file).
    assert_eq!(
        history_states(&storage, done).await,
        [JobState::Enqueued, JobState::Succeeded]
    );
    let record = storage.job(done).await.expect("job").expect("exists");
    assert_eq!(record.result, Some(serde_json::json!({"total": 3})));
    assert_eq!(
        record.history[1].data.result,
        Some(serde_json::json!({"total": 3})),
        "the entry written out by 0006's down has its result back"
    );

    // All the way down.
    let reverted = storage.migrate_down_to(0).await.expect("down all");
    assert_eq!(
        reverted,
        all_versions().iter().rev().copied().collect::<Vec<_>>()
    );
    let left = tables(&storage).await;
    assert_eq!(
        left,
        vec![
            "jobs_migrations".to_owned(),
            "jobs_migrations_pkey".to_owned()
        ],
        "down removes everything but the bookkeeping"
    );
    let error = storage.job(id).await.expect_err("no tables");
    assert!(
        error
            .to_string()
            .contains("is not migrated (run `PostgresStorage::migrate()` first)"),
        "{error}"
    );

    // And up again, from nothing.
    assert_eq!(storage.migrate().await.expect("up again"), all_versions());
    assert_eq!(tables(&storage).await, migrated);
    assert!(storage.job(id).await.expect("read").is_none());
    drop(storage);
    schema.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_apply_once() {
    let schema = TestSchema::empty().await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let url = schema.url().to_owned();
        let options = schema.options().pool_size(1);
        tasks.push(tokio::spawn(async move {
            let storage = PostgresStorage::connect_with(&url, options)
                .await
                .expect("connect");
            storage.migrate().await.expect("migrate")
        }));
    }
    let mut applied = Vec::new();
    for task in tasks {
        applied.extend(task.await.expect("task"));
    }
    applied.sort_unstable();
    assert_eq!(applied, all_versions(), "each migration ran exactly once");
    schema.teardown().await;
}

#[tokio::test]
async fn a_schema_that_was_never_migrated_is_a_clear_error() {
    let schema = TestSchema::empty().await;
    let storage = PostgresStorage::connect_with(schema.url(), schema.options())
        .await
        .expect("connect");
    let error = storage
        .enqueue(vec![job("a")], chrono::Utc::now())
        .await
        .expect_err("not migrated");
    let message = error.to_string();
    assert!(
        message.contains(&format!("schema `{}` is not migrated", schema.schema())),
        "{message}"
    );
    drop(storage);
    schema.teardown().await;
}

#[tokio::test]
async fn bad_names_are_refused_before_connecting() {
    for bad in [
        "bad\"name",
        "Jobs",
        "x; drop table y",
        "",
        "1st",
        &"a".repeat(64),
    ] {
        let error = PostgresStorage::connect_with(
            "postgres://nobody@127.0.0.1:1/none",
            PostgresOptions::new().schema(bad),
        )
        .await
        .expect_err("refused");
        assert!(
            matches!(
                error,
                PostgresError::InvalidIdentifier {
                    kind: "schema name",
                    ..
                }
            ),
            "{bad}: {error}"
        );
        assert!(
            error.to_string().starts_with("invalid schema name"),
            "{error}"
        );
    }
    let error = PostgresStorage::connect_with(
        "postgres://nobody@127.0.0.1:1/none",
        PostgresOptions::new().notify_channel("no-dashes"),
    )
    .await
    .expect_err("refused");
    assert!(
        error
            .to_string()
            .starts_with("invalid notify channel `no-dashes`"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error() {
    let error = PostgresStorage::connect("postgres://postgres@127.0.0.1:1/postgres")
        .await
        .expect_err("nothing listens on port 1");
    let message = error.to_string();
    assert!(
        message.starts_with("could not get a database connection"),
        "{message}"
    );
    assert!(
        message.contains("refused") || message.contains("connect"),
        "{message}"
    );
    let error = PostgresStorage::connect("not a url at all=")
        .await
        .expect_err("bad url");
    assert!(
        error.to_string().starts_with("invalid database url"),
        "{error}"
    );
}
