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
    NewJob::plain(name, "default", "{}", InitialState::Enqueued)
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
        .expect("enqueue")
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect::<Vec<_>>();
    let (id, done) = (ids[0], ids[1]);
    // `id` running: since 0005 its Processing entry is read from the job row; `done` succeeded.
    let now = chrono::Utc::now();
    let queues = ["default".to_owned()];
    let fetched = storage
        .fetch(FetchRequest {
            server_id: "server-a",
            queues: &queues,
            limit: 2,
            capacity: 2,
            now,
            lease_until: now + chrono::TimeDelta::seconds(60),
            flow: false,
            gated: false,
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

/// One job in each state and on each path an entry can take (row-held or a history row):
/// returns their ids. Made at the newest version through the storage itself.
async fn jobs_in_every_state(storage: &PostgresStorage) -> Vec<JobId> {
    let now = chrono::Utc::now();
    let later = now + chrono::TimeDelta::hours(1);
    let earlier = now - chrono::TimeDelta::hours(1);
    let new = |name: &str, initial: InitialState| NewJob {
        initial,
        ..job(name)
    };
    let ids = storage
        .enqueue(
            vec![
                job("rescued"),
                job("running"),
                job("succeeded"),
                job("failed"),
                job("retrying"),
                job("succeeded-then-deleted"),
                job("deleted-then-requeued"),
                job("enqueued"),
            ],
            now,
        )
        .await
        .expect("enqueue")
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect::<Vec<_>>();
    let [rescued, running, succeeded, failed, retrying, deleted, requeued, enqueued] =
        ids[..].try_into().expect("eight ids");
    let later_ids = storage
        .enqueue(
            vec![
                new("scheduled", InitialState::Scheduled { at: later }),
                new("promoted", InitialState::Scheduled { at: earlier }),
                new(
                    "awaiting",
                    InitialState::Awaiting {
                        parent: running,
                        on: jobs::storage::ContinueOn::Succeeded,
                    },
                ),
                new(
                    "released",
                    InitialState::Awaiting {
                        parent: succeeded,
                        on: jobs::storage::ContinueOn::Succeeded,
                    },
                ),
                new(
                    "not-met",
                    InitialState::Awaiting {
                        parent: succeeded,
                        on: jobs::storage::ContinueOn::Failed,
                    },
                ),
            ],
            now,
        )
        .await
        .expect("enqueue")
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect::<Vec<_>>();
    let queues = ["default".to_owned()];
    let fetch = |limit: usize, lease_until| FetchRequest {
        server_id: "server-a",
        queues: &queues,
        limit,
        capacity: limit,
        now,
        lease_until,
        flow: false,
        gated: false,
    };
    // `rescued` is taken with a lease already lapsed (its server stopped renewing it).
    let lapsed = storage.fetch(fetch(1, earlier)).await.expect("fetch");
    let fetched = storage.fetch(fetch(6, later)).await.expect("fetch");
    assert_eq!(
        lapsed
            .iter()
            .chain(&fetched)
            .map(|job| job.id)
            .collect::<Vec<_>>(),
        ids[..7].to_vec()
    );
    let error = |message: &str| StateData {
        error: Some(jobs::JobError::new("test::Error", message)),
        attempt: Some(1),
        server: Some("server-a".into()),
        ..StateData::default()
    };
    let done = |id: JobId, outcome: Outcome| Completion {
        id,
        server_id: "server-a".into(),
        at: now,
        outcome,
    };
    storage
        .complete(&[
            done(
                succeeded,
                Outcome::Succeeded {
                    data: StateData {
                        result: Some(serde_json::json!({"total": 3})),
                        attempt: Some(1),
                        server: Some("server-a".into()),
                        ..StateData::default()
                    },
                },
            ),
            done(
                failed,
                Outcome::Failed {
                    reason: "boom".into(),
                    data: error("boom"),
                },
            ),
            done(
                retrying,
                Outcome::Retry {
                    run_at: later,
                    reason: "Retry attempt 1 of 3: flaky".into(),
                    data: error("flaky"),
                },
            ),
            done(
                deleted,
                Outcome::Succeeded {
                    data: StateData::default(),
                },
            ),
            done(
                requeued,
                Outcome::Failed {
                    reason: "broken".into(),
                    data: error("broken"),
                },
            ),
        ])
        .await
        .expect("complete");
    assert!(storage
        .delete(deleted, "by hand", now)
        .await
        .expect("delete"));
    assert!(storage
        .delete(requeued, "by hand", now)
        .await
        .expect("delete"));
    assert!(storage
        .requeue(requeued, "by hand again", now)
        .await
        .expect("requeue"));
    assert_eq!(storage.rescue_expired(now, 10).await.expect("rescue"), 1);
    assert_eq!(
        storage.promote_scheduled(now, 10).await.expect("promote"),
        1
    );
    let mut all = ids.clone();
    all.extend(later_ids);
    let records = storage.jobs(&all).await.expect("read");
    let mut states: Vec<JobState> = records.iter().map(|record| record.state).collect();
    states.sort_by_key(|state| state.as_str());
    states.dedup();
    assert_eq!(states.len(), JobState::ALL.len(), "every state: {states:?}");
    assert_eq!(records[0].state, JobState::Enqueued, "{rescued} rescued");
    assert_eq!(records[7].state, JobState::Enqueued, "{enqueued} untouched");
    all
}

/// What a down migration below 0005 loses, as its file says: the Processing entries of the
/// attempts that ended (a running attempt's entry is kept).
fn without_ended_attempts(mut record: jobs::storage::JobRecord) -> jobs::storage::JobRecord {
    let last = record.history.len().saturating_sub(1);
    let history = std::mem::take(&mut record.history);
    record.history = history
        .into_iter()
        .enumerate()
        .filter(|(index, entry)| entry.state != JobState::Processing || *index == last)
        .map(|(_, entry)| entry)
        .collect();
    record
}

/// From each earlier version (reached by the down migrations, which convert the stored jobs to
/// that version's layout) up to the newest: every job reads back as it was, in every state,
/// and the storage goes on running them.
#[tokio::test]
async fn every_version_migrates_up_with_jobs_in_every_state() {
    let schema = TestSchema::new().await;
    let storage = schema.storage();
    let ids = jobs_in_every_state(storage).await;
    let before = storage.jobs(&ids).await.expect("read");
    let newest = jobs_postgres::latest_version();
    for version in (1..newest).rev() {
        let reverted = storage.migrate_down_to(version).await.expect("down");
        assert_eq!(
            reverted,
            ((version + 1)..=newest).rev().collect::<Vec<_>>(),
            "down to {version}"
        );
        assert_eq!(
            storage.applied_migrations().await.expect("status"),
            (1..=version).collect::<Vec<_>>()
        );
        let applied = storage.migrate().await.expect("up");
        assert_eq!(applied, ((version + 1)..=newest).collect::<Vec<_>>());
        let after = storage.jobs(&ids).await.expect("read");
        assert_eq!(
            after.len(),
            before.len(),
            "no job lost from version {version}"
        );
        for (was, is) in before.iter().zip(after) {
            if version >= 5 {
                assert_eq!(&is, was, "{} from version {version}", was.name);
            } else {
                assert_eq!(
                    without_ended_attempts(is),
                    without_ended_attempts(was.clone()),
                    "{} from version {version}",
                    was.name
                );
            }
        }
    }

    // The migrated jobs still run: the running one completes and releases its continuation,
    // the Enqueued ones are fetched in their queue's order (the rescued and the untouched at
    // their original places, then each in the order it went to the tail).
    let now = chrono::Utc::now();
    let running = ids[1];
    storage
        .complete(&[Completion {
            id: running,
            server_id: "server-a".into(),
            at: now,
            outcome: Outcome::Succeeded {
                data: StateData::default(),
            },
        }])
        .await
        .expect("complete after migrations");
    let record = storage.job(running).await.expect("read").expect("exists");
    assert_eq!(record.state, JobState::Succeeded);
    let queues = ["default".to_owned()];
    let fetched = storage
        .fetch(FetchRequest {
            server_id: "server-b",
            queues: &queues,
            limit: 100,
            capacity: 100,
            now,
            lease_until: now + chrono::TimeDelta::seconds(60),
            flow: false,
            gated: false,
        })
        .await
        .expect("fetch after migrations");
    let names: Vec<&str> = fetched.iter().map(|job| &*job.name).collect();
    assert_eq!(
        names,
        [
            "rescued",
            "enqueued",
            "released",
            "deleted-then-requeued",
            "promoted",
            "awaiting"
        ],
        "each back in its queue at its place"
    );
    schema.teardown().await;
}
