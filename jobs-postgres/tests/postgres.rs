//! What only the Postgres storage has: the fetch plan, LISTEN/NOTIFY wake-ups, transactional
//! enqueue, payload limits, undecodable rows, and continuations racing their parent's finish.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use jobs::storage::{
    Completion, ContinueOn, FetchRequest, InitialState, NewJob, Outcome, StateData,
};
use jobs::{JobId, JobState, Storage};
use jobs_postgres::deadpool_postgres::GenericClient;
use jobs_postgres::testing::{explain_fetch, TestSchema};
use jobs_postgres::{PostgresError, PostgresStorage};

const DEADLINE: Duration = Duration::from_secs(10);

fn job(name: &str, queue: &str) -> NewJob {
    NewJob::plain(
        name,
        queue,
        &format!(r#"{{"name":"{name}"}}"#),
        InitialState::Enqueued,
    )
}

async fn fetch(storage: &dyn Storage, server: &str, queues: &[&str], limit: usize) -> Vec<JobId> {
    let queues: Vec<String> = queues.iter().map(|q| (*q).to_owned()).collect();
    let now = Utc::now();
    storage
        .fetch(FetchRequest {
            server_id: server,
            queues: &queues,
            limit,
            capacity: limit,
            now,
            lease_until: now + TimeDelta::seconds(60),
            flow: false,
            gated: false,
        })
        .await
        .expect("fetch")
        .into_iter()
        .map(|job| job.id)
        .collect()
}

async fn succeed(storage: &dyn Storage, server: &str, ids: &[JobId]) {
    storage
        .complete(
            &ids.iter()
                .map(|id| Completion {
                    id: *id,
                    server_id: server.into(),
                    at: Utc::now(),
                    outcome: Outcome::Succeeded {
                        data: StateData::default(),
                    },
                })
                .collect::<Vec<_>>(),
        )
        .await
        .expect("complete");
}

async fn sql(storage: &PostgresStorage, statement: &str) {
    let client = storage.pool().get().await.expect("connection");
    client.batch_execute(statement).await.expect(statement);
}

/// Fills the schema's jobs table with 50,000 Succeeded jobs and 2,000 Enqueued ones (1,000 each
/// in `default` and `critical`), statistics up to date.
async fn finished_and_waiting(schema: &TestSchema) {
    let s = schema.schema();
    sql(
        schema.storage(),
        &format!(
            "INSERT INTO {s}.jobs (name, queue, args, state, created_at, state_at, enqueued_at)
             SELECT 'done', 'default', '{{}}', 'succeeded', now(), now(), now()
             FROM generate_series(1, 50000);
             INSERT INTO {s}.jobs (name, queue, args, state, created_at, state_at, enqueued_at)
             SELECT 'todo', CASE WHEN i % 2 = 0 THEN 'default' ELSE 'critical' END, '{{}}',
                    'enqueued', now(), now(), now()
             FROM generate_series(1, 2000) AS i;
             ANALYZE {s}.jobs;"
        ),
    )
    .await;
}

/// The fetch reads the head of the partial index of Enqueued jobs, however many finished jobs
/// the table holds.
/// The plan `explain` (an `EXPLAIN` statement) prints, one line per row.
async fn plan(client: &impl GenericClient, explain: &str) -> String {
    let rows = client.query(explain, &[]).await.expect("explain");
    let lines: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    lines.join("\n")
}

#[tokio::test]
async fn fetch_uses_the_partial_index() {
    let schema = TestSchema::new().await;
    let storage = schema.storage();
    finished_and_waiting(&schema).await;
    let plan = explain_fetch(storage, &["critical", "default"], 10).await;
    println!("{plan}");
    assert!(
        plan.contains("jobs_fetch_idx"),
        "the fetch should use jobs_fetch_idx:\n{plan}"
    );
    // Its key is (queue, priority, position): an ordered index read gives each queue's head,
    // by priority then position, with no sort of the queue's jobs.
    assert!(
        plan.contains("Index Scan using jobs_fetch_idx"),
        "an ordered read of jobs_fetch_idx:\n{plan}"
    );
    assert!(
        !plan.contains("Seq Scan on jobs"),
        "no sequential scan of jobs:\n{plan}"
    );
    assert!(plan.contains("LockRows"), "{plan}");
    schema.teardown().await;
}

/// The counts read Enqueued jobs from `jobs_fetch_idx` and the others from `jobs_state_idx`
/// (which holds no Enqueued job since migration 0007), never the whole table.
#[tokio::test]
async fn counts_use_the_state_and_fetch_indexes() {
    let schema = TestSchema::new().await;
    let storage = schema.storage();
    finished_and_waiting(&schema).await;
    let counts = storage.counts().await.expect("counts");
    assert_eq!(counts.get(JobState::Succeeded), 50_000);
    assert_eq!(counts.get(JobState::Enqueued), 2_000);
    assert_eq!(counts.enqueued_by_queue.get("default"), Some(&1_000));
    assert_eq!(counts.enqueued_by_queue.get("critical"), Some(&1_000));
    let statements: std::collections::BTreeMap<_, _> = storage.__statements().into_iter().collect();
    let client = storage.pool().get().await.expect("connection");
    let plan = plan(&client, &format!("EXPLAIN {}", statements["counts"])).await;
    assert!(plan.contains("jobs_state_idx"), "{plan}");
    assert!(plan.contains("jobs_fetch_idx"), "{plan}");
    assert!(
        !plan.contains("Seq Scan on jobs"),
        "no sequential scan of jobs:\n{plan}"
    );
    drop(client);
    schema.teardown().await;
}

/// How long a `wait_for_work` of `waiter` (up to a minute) waited once `storage` enqueued the
/// job `name`; fails if it was not woken within [`DEADLINE`].
async fn waiting_woken_by_enqueue(
    waiter: &PostgresStorage,
    storage: &PostgresStorage,
    name: &str,
) -> Duration {
    let waiting = {
        let waiter = waiter.clone();
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            waiter.wait_for_work(Duration::from_secs(60)).await;
            started.elapsed()
        })
    };
    tokio::task::yield_now().await;
    storage
        .enqueue(vec![job(name, "default")], Utc::now())
        .await
        .expect("enqueue");
    tokio::time::timeout(DEADLINE, waiting)
        .await
        .unwrap_or_else(|_| panic!("`{name}` did not wake the waiter before the deadline"))
        .expect("task")
}

/// The connections `connect` opens carry `SESSION_OPTIONS` beside the URL's own options.
#[tokio::test]
async fn connections_carry_the_session_options() {
    let schema = TestSchema::new().await;
    let separator = if schema.url().contains('?') { '&' } else { '?' };
    let url = format!(
        "{}{separator}options=-c%20statement_timeout%3D12345",
        schema.url()
    );
    let storage = PostgresStorage::connect_with(&url, schema.options())
        .await
        .expect("connect");
    let client = storage.pool().get().await.expect("connection");
    for (setting, expected) in [
        ("jit", "off"),
        ("enable_seqscan", "off"),
        ("enable_hashjoin", "off"),
        ("enable_mergejoin", "off"),
        ("statement_timeout", "12345ms"),
        // The server probes a silent client as the client probes the server.
        ("tcp_keepalives_idle", "15"),
        ("tcp_keepalives_interval", "5"),
        ("tcp_keepalives_count", "3"),
    ] {
        let row = client
            .query_one(&format!("SHOW {setting}"), &[])
            .await
            .expect("show");
        assert_eq!(row.get::<_, String>(0), expected, "{setting}");
    }
    drop(client);
    storage.pool().close();
    schema.teardown().await;
}

/// A fetch plan cached while the table was empty (a new schema: no statistics yet) stays on
/// the indexes once the table holds 50,000 jobs. Without the session options the cached
/// generic plan updated the claimed rows through a sequential scan of the whole table.
#[tokio::test]
async fn a_fetch_plan_cached_on_an_empty_table_stays_on_the_indexes() {
    let schema = TestSchema::new().await;
    let storage = schema.storage();
    let s = schema.schema();
    let fetch = storage
        .__statements()
        .into_iter()
        .find(|(name, _)| *name == "fetch")
        .map(|(_, sql)| sql)
        .expect("fetch statement");
    let mut client = storage.pool().get().await.expect("connection");
    let execute = "EXECUTE cached_fetch('{default}', 100, 'server', now(), now())";
    client
        .batch_execute(&format!(
            "SET plan_cache_mode = force_generic_plan;
             PREPARE cached_fetch(text[], bigint, text, timestamptz, timestamptz) AS {fetch};
             EXPLAIN {execute};"
        ))
        .await
        .expect("prepare on the empty table");
    sql(
        storage,
        &format!(
            "INSERT INTO {s}.jobs (name, queue, args, state, created_at, state_at, enqueued_at)
             SELECT 'todo', 'default', '{{}}', 'enqueued', now(), now(), now()
             FROM generate_series(1, 50000)"
        ),
    )
    .await;
    let tx = client.transaction().await.expect("begin");
    let plan = plan(&tx, &format!("EXPLAIN (ANALYZE) {execute}")).await;
    tx.rollback().await.expect("rollback");
    client
        .batch_execute("DEALLOCATE cached_fetch; RESET plan_cache_mode;")
        .await
        .expect("reset");
    println!("{plan}");
    assert!(plan.contains("jobs_fetch_idx"), "{plan}");
    assert!(!plan.contains("Seq Scan on jobs"), "{plan}");
    drop(client);
    schema.teardown().await;
}

/// An enqueue through one storage wakes an idle `wait_for_work` of another (another process,
/// as far as the database can tell) long before its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_wakes_a_listener_elsewhere() {
    let schema = TestSchema::new().await;
    let waiter = PostgresStorage::connect_with(schema.url(), schema.options())
        .await
        .expect("second storage");
    // Start the LISTEN connection and wait until the database shows it listening.
    waiter.wait_for_work(Duration::from_millis(1)).await;
    let admin = schema.storage().pool().get().await.expect("connection");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let listening: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE application_name = $1 AND query LIKE 'LISTEN %'",
                &[&schema.application_name()],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if listening > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the LISTEN connection never came up"
        );
        waiter.wait_for_work(Duration::from_millis(20)).await;
    }
    // The listener wakes waiters once when it connects; use that wake-up up.
    waiter.wait_for_work(Duration::from_millis(50)).await;
    let waited = waiting_woken_by_enqueue(&waiter, schema.storage(), "wake").await;
    assert!(waited < DEADLINE, "woken after {waited:?}");
    drop(waiter);
    schema.teardown().await;
}

/// An enqueue inside the notify throttle's window sends no NOTIFY of its own; the throttle's
/// deferred one, at the window's end, still wakes the other process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_enqueue_still_wakes_a_listener_elsewhere() {
    let window = Duration::from_secs(1);
    let schema =
        TestSchema::with_options(jobs_postgres::PostgresOptions::new().notify_throttle(window))
            .await;
    let waiter = PostgresStorage::connect_with(schema.url(), schema.options())
        .await
        .expect("second storage");
    waiter.wait_for_work(Duration::from_millis(1)).await;
    // The first enqueue notifies at once and wakes the waiter (its LISTEN connection is up
    // once a wait returns early).
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        schema
            .storage()
            .enqueue(vec![job("first", "default")], Utc::now())
            .await
            .expect("enqueue");
        let started = tokio::time::Instant::now();
        waiter.wait_for_work(Duration::from_millis(500)).await;
        if started.elapsed() < Duration::from_millis(400) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never woken by a NOTIFY"
        );
    }
    // Use up a stored wake-up, then wait while a second enqueue falls inside the window.
    waiter.wait_for_work(Duration::from_millis(20)).await;
    let waited = waiting_woken_by_enqueue(&waiter, schema.storage(), "throttled").await;
    assert!(waited < DEADLINE, "woken after {waited:?}");
    drop(waiter);
    schema.teardown().await;
}

/// A job enqueued in a transaction exists only if the transaction commits.
#[tokio::test]
async fn enqueue_tx_commits_with_the_callers_writes() {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Welcome {
        user: String,
    }
    impl jobs::Job for Welcome {
        const NAME: &'static str = "welcome";
        const QUEUE: &'static str = "mail";
    }

    let schema = TestSchema::new().await;
    let storage = schema.storage();
    let s = schema.schema();
    sql(
        storage,
        &format!("CREATE TABLE {s}.users (name text PRIMARY KEY)"),
    )
    .await;
    let mut client = storage.pool().get().await.expect("connection");

    // Committed: the user and the job.
    let tx = client.transaction().await.expect("begin");
    tx.execute(&format!("INSERT INTO {s}.users VALUES ('ada')"), &[])
        .await
        .expect("insert");
    let kept = storage
        .enqueue_tx(&tx, &Welcome { user: "ada".into() })
        .await
        .expect("enqueue in tx");
    tx.commit().await.expect("commit");

    // Rolled back: neither.
    let tx = client.transaction().await.expect("begin");
    tx.execute(&format!("INSERT INTO {s}.users VALUES ('bob')"), &[])
        .await
        .expect("insert");
    let gone = storage
        .enqueue_many_tx(
            &tx,
            [
                &Welcome { user: "bob".into() },
                &Welcome { user: "cy".into() },
            ],
        )
        .await
        .expect("enqueue in tx");
    assert_eq!(gone.len(), 2);
    tx.rollback().await.expect("rollback");

    let record = storage
        .job(kept)
        .await
        .expect("job")
        .expect("committed job exists");
    assert_eq!(
        (
            record.name.as_str(),
            record.queue.as_str(),
            record.args.as_str(),
            record.state
        ),
        ("welcome", "mail", r#"{"user":"ada"}"#, JobState::Enqueued)
    );
    for id in gone {
        assert!(storage.job(id).await.expect("job").is_none(), "rolled back");
    }
    assert_eq!(fetch(storage, "s", &["mail"], 10).await, vec![kept]);

    // A plain tokio-postgres transaction works the same.
    let (mut raw, connection) = tokio_postgres::connect(schema.url(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    let driver = tokio::spawn(connection);
    let tx = raw.transaction().await.expect("begin");
    let parentless = NewJob {
        initial: InitialState::Awaiting {
            parent: JobId(i64::MAX),
            on: ContinueOn::Succeeded,
        },
        ..job("orphan", "mail")
    };
    let error = storage
        .enqueue_new_tx(&tx, vec![parentless], Utc::now())
        .await
        .expect_err("missing parent");
    assert!(
        matches!(error, jobs::Error::ParentNotFound(JobId(i64::MAX))),
        "{error}"
    );
    drop(tx);
    drop(raw);
    let _ = driver.await;
    drop(client);
    schema.teardown().await;
}

/// Arguments over the limit are refused with a clear error; nothing is created. Without a
/// limit a 10 MiB payload round-trips.
#[tokio::test]
async fn payload_limit() {
    let schema = TestSchema::new().await;
    let storage = schema.storage();
    let huge = format!(r#"{{"blob":"{}"}}"#, "x".repeat(10 * 1024 * 1024));
    let big = NewJob {
        args: huge.clone(),
        ..job("big", "default")
    };
    let error = storage
        .enqueue(vec![job("small", "default"), big.clone()], Utc::now())
        .await
        .expect_err("too large");
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "the arguments of job `big` are {} bytes, over the limit of 1048576 bytes",
            huge.len()
        )),
        "{message}"
    );
    let source = std::error::Error::source(&error).expect("a source");
    assert!(source.downcast_ref::<PostgresError>().is_some());
    assert_eq!(
        storage
            .counts()
            .await
            .expect("counts")
            .by_state
            .values()
            .sum::<u64>(),
        0
    );

    let unlimited =
        PostgresStorage::connect_with(schema.url(), schema.options().max_payload_bytes(None))
            .await
            .expect("connect");
    let id = unlimited
        .enqueue(vec![big], Utc::now())
        .await
        .expect("enqueue")
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect::<Vec<_>>()[0];
    let fetched = unlimited
        .fetch(FetchRequest {
            server_id: "s",
            queues: &["default".to_owned()],
            limit: 1,
            capacity: 1,
            now: Utc::now(),
            lease_until: Utc::now() + TimeDelta::seconds(60),
            flow: false,
            gated: false,
        })
        .await
        .expect("fetch");
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].id, id);
    assert_eq!(fetched[0].args.len(), huge.len());
    drop(unlimited);
    schema.teardown().await;
}

/// A row the storage cannot read back is an error naming the job and column, not a panic; the
/// other jobs are unaffected.
#[tokio::test]
async fn undecodable_rows_are_clear_errors() {
    let schema = TestSchema::new().await;
    let storage = schema.storage();
    let s = schema.schema();
    let ids = storage
        .enqueue(
            vec![
                job("a", "default"),
                job("b", "default"),
                job("c", "default"),
            ],
            Utc::now(),
        )
        .await
        .expect("enqueue")
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect::<Vec<_>>();
    let (bad_error, bad_history) = (ids[0], ids[1]);
    sql(
        storage,
        &format!(
            "UPDATE {s}.jobs SET error = '{{\"unexpected\": true}}' WHERE id = {bad_error};
             INSERT INTO {s}.job_history (job_id, state, at, data)
             VALUES ({bad_history}, 'enqueued', now(), '{{\"attempt\": \"first\"}}');"
        ),
    )
    .await;
    let error = storage.job(bad_error).await.expect_err("bad error column");
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "job {bad_error}, column `error` holds undecodable data: missing field `type_name`"
        )),
        "{message}"
    );
    let error = storage.job(bad_history).await.expect_err("bad history");
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            // Entry 1 is its creation (from the job row), entry 2 the row written above.
            "job {bad_history}, history entry 2 holds undecodable data"
        )),
        "{message}"
    );
    // Everything else still works, including listing the broken jobs without their history.
    let record = storage.job(ids[2]).await.expect("job").expect("exists");
    assert_eq!(record.state, JobState::Enqueued);
    let listed = storage
        .list_jobs(jobs::storage::JobQuery {
            name_contains: Some("b".into()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(listed.total, 1);
    assert_eq!(fetch(storage, "s", &["default"], 10).await.len(), 3);
    schema.teardown().await;
}

/// A continuation created while its parent finishes is released either way: never left
/// Awaiting under a parent that already succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuations_racing_their_parent_are_never_stranded() {
    let schema = TestSchema::new().await;
    let storage: Arc<dyn Storage> = Arc::new(schema.storage().clone());
    for round in 0..40 {
        let parent = storage
            .enqueue(vec![job(&format!("parent{round}"), "race")], Utc::now())
            .await
            .expect("enqueue")
            .into_iter()
            .map(|enqueued| enqueued.id)
            .collect::<Vec<_>>()[0];
        assert_eq!(
            fetch(storage.as_ref(), "s", &["race"], 1).await,
            vec![parent]
        );
        let adding = {
            let storage = storage.clone();
            tokio::spawn(async move {
                let kid = NewJob {
                    initial: InitialState::Awaiting {
                        parent,
                        on: ContinueOn::Succeeded,
                    },
                    ..job("kid", "kids")
                };
                storage
                    .enqueue(vec![kid], Utc::now())
                    .await
                    .expect("continuation")
                    .into_iter()
                    .map(|enqueued| enqueued.id)
                    .collect::<Vec<_>>()[0]
            })
        };
        succeed(storage.as_ref(), "s", &[parent]).await;
        let kid = adding.await.expect("task");
        let record = storage.job(kid).await.expect("job").expect("exists");
        assert_eq!(
            record.state,
            JobState::Enqueued,
            "round {round}: {:?}",
            record.history
        );
    }
    drop(storage);
    schema.teardown().await;
}

/// One `complete` call applies a big batch, and the hourly statistics count all of it.
#[tokio::test]
async fn big_batches() {
    let schema = TestSchema::new().await;
    let storage = schema.storage();
    let jobs: Vec<NewJob> = (0..5000)
        .map(|i| job(&format!("j{i}"), "default"))
        .collect();
    let ids = storage
        .enqueue(jobs, Utc::now())
        .await
        .expect("enqueue")
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect::<Vec<_>>();
    assert_eq!(ids.len(), 5000);
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "ids in input order"
    );
    let fetched = fetch(storage, "s", &["default"], 5000).await;
    assert_eq!(fetched, ids, "FIFO");
    succeed(storage, "s", &fetched).await;
    let counts = storage.counts().await.expect("counts");
    assert_eq!(counts.get(JobState::Succeeded), 5000);
    let now = Utc::now();
    let stats = storage
        .statistics(
            jobs::storage::Granularity::Day,
            now - TimeDelta::hours(1),
            now,
        )
        .await
        .expect("statistics");
    assert_eq!(stats.iter().map(|p| p.succeeded).sum::<u64>(), 5000);
    schema.teardown().await;
}

/// The SQL `continuation_decision` is the table on `ContinueOn`, case for case.
#[tokio::test]
async fn sql_continuation_decision_matches_the_rust_table() {
    let schema = TestSchema::new().await;
    let client = schema.storage().pool().get().await.expect("connection");
    let sql = format!(
        "SELECT \"{}\".continuation_decision($1, $2)",
        schema.schema()
    );
    for on in [
        ContinueOn::Succeeded,
        ContinueOn::AnyFinished,
        ContinueOn::Failed,
    ] {
        let on_sql = serde_json::to_value(on).expect("serialize");
        let on_sql = on_sql.as_str().expect("a string");
        for state in JobState::ALL {
            let decided: Option<bool> = client
                .query_one(&sql, &[&on_sql, &state.as_str()])
                .await
                .expect("decision")
                .get(0);
            assert_eq!(
                decided,
                jobs::storage::continuation_decision(on, state),
                "{on:?} when the parent is {state}"
            );
        }
    }
    drop(client);
    schema.teardown().await;
}

/// Each entry's data that SQL builds (migrations 0005, 0006, 0008) is the JSON of the
/// `StateData` constructor it mirrors, key for key: renaming a field fails here, not in a
/// reader.
#[tokio::test]
async fn sql_entry_data_matches_rust() {
    let schema = TestSchema::new().await;
    let client = schema.storage().pool().get().await.expect("connection");
    let s = format!("\"{}\"", schema.schema());
    let built = |sql: String| {
        let client = &client;
        async move {
            let value: serde_json::Value = client.query_one(&sql, &[]).await.expect(&sql).get(0);
            value
        }
    };
    let rust = |data: StateData| serde_json::to_value(data).expect("serialize");
    for (sql, expected) in [
        (
            format!("SELECT {s}.enqueued_data('mail', NULL)"),
            StateData::enqueued("mail", None),
        ),
        (
            format!("SELECT {s}.enqueued_data('mail', 7)"),
            StateData::enqueued("mail", Some(JobId(7))),
        ),
        (
            format!("SELECT {s}.awaiting_data(7)"),
            StateData::awaiting(JobId(7)),
        ),
        (
            format!("SELECT {s}.attempt_data('server-a', 2)"),
            StateData::processing("server-a", 3),
        ),
        (
            format!(
                "SELECT {s}.succeeded_entry_data('{{\"server\": \"a\", \"attempt\": 1}}', 'null')"
            ),
            StateData {
                server: Some("a".into()),
                attempt: Some(1),
                result: Some(serde_json::Value::Null),
                ..StateData::default()
            },
        ),
        (
            format!("SELECT {s}.succeeded_entry_data('{{\"attempt\": 1}}', NULL)"),
            StateData {
                attempt: Some(1),
                ..StateData::default()
            },
        ),
    ] {
        assert_eq!(built(sql.clone()).await, rust(expected), "{sql}");
    }
    drop(client);
    schema.teardown().await;
}

/// Many continuations released at once keep their creation order in the queue.
#[tokio::test]
async fn released_siblings_keep_their_order() {
    let schema = TestSchema::new().await;
    let storage = schema.storage();
    let parent = storage
        .enqueue(vec![job("parent", "default")], Utc::now())
        .await
        .expect("enqueue")
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect::<Vec<_>>()[0];
    let kids: Vec<NewJob> = (0..50)
        .map(|i| NewJob {
            initial: InitialState::Awaiting {
                parent,
                on: ContinueOn::AnyFinished,
            },
            ..job(&format!("kid{i}"), "kids")
        })
        .collect();
    let kids = storage
        .enqueue(kids, Utc::now())
        .await
        .expect("continuations")
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect::<Vec<_>>();
    assert_eq!(fetch(storage, "s", &["default"], 1).await, vec![parent]);
    succeed(storage, "s", &[parent]).await;
    assert_eq!(fetch(storage, "s", &["kids"], 100).await, kids);
    schema.teardown().await;
}

/// In a batch of completions, each parent releases its continuations at its own time.
#[tokio::test]
async fn batched_completions_release_at_each_parents_time() {
    let schema = TestSchema::new().await;
    let storage = schema.storage();
    let parents = storage
        .enqueue(vec![job("p1", "default"), job("p2", "default")], Utc::now())
        .await
        .expect("enqueue")
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect::<Vec<_>>();
    let kids = storage
        .enqueue(
            parents
                .iter()
                .map(|parent| NewJob {
                    initial: InitialState::Awaiting {
                        parent: *parent,
                        on: ContinueOn::Succeeded,
                    },
                    ..job("kid", "kids")
                })
                .collect(),
            Utc::now(),
        )
        .await
        .expect("continuations")
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect::<Vec<_>>();
    assert_eq!(fetch(storage, "s", &["default"], 2).await, parents);
    let first = Utc::now() + TimeDelta::seconds(10);
    let second = first + TimeDelta::seconds(5);
    storage
        .complete(
            &[(parents[0], first), (parents[1], second)]
                .into_iter()
                .map(|(id, at)| Completion {
                    id,
                    server_id: "s".into(),
                    at,
                    outcome: Outcome::Succeeded {
                        data: StateData::default(),
                    },
                })
                .collect::<Vec<_>>(),
        )
        .await
        .expect("complete");
    for (kid, at) in kids.iter().zip([first, second]) {
        let record = storage.job(*kid).await.expect("job").expect("exists");
        assert_eq!(record.state, JobState::Enqueued);
        assert_eq!(
            record.state_at.timestamp_micros(),
            at.timestamp_micros(),
            "released when its parent finished"
        );
    }
    schema.teardown().await;
}

/// The server process behind the connection the pool hands out next.
async fn backend_pid(storage: &PostgresStorage) -> i32 {
    let client = storage.pool().get().await.expect("connection");
    let row = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid");
    row.get(0)
}

/// An operation that waits on a lock (or on a network that is gone) ends with a timeout error
/// after `query_timeout`, not never; the storage keeps working afterwards, on connections
/// opened after the timeout (the pool's older ones are replaced when next taken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_that_cannot_finish_times_out_and_the_storage_recovers() {
    let schema = TestSchema::new().await;
    let storage = PostgresStorage::connect_with(
        schema.url(),
        schema.options().query_timeout(Duration::from_millis(500)),
    )
    .await
    .expect("connect");
    let id = storage
        .enqueue(vec![job("locked", "default")], Utc::now())
        .await
        .expect("enqueue")
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect::<Vec<_>>()[0];
    let before = backend_pid(&storage).await;

    // Another session holds the job's row: the delete waits for it.
    let mut holder = schema.storage().pool().get().await.expect("connection");
    let tx = holder.transaction().await.expect("begin");
    tx.execute(
        &format!(
            "SELECT 1 FROM \"{}\".jobs WHERE id = $1 FOR UPDATE",
            schema.schema()
        ),
        &[&id.0],
    )
    .await
    .expect("lock the job");
    let started = std::time::Instant::now();
    let error = storage
        .delete(id, "deleted by a test", Utc::now())
        .await
        .expect_err("the delete cannot finish while the row is locked");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(5),
        "timed out after the bound: {waited:?}"
    );
    assert_eq!(
        error.to_string(),
        "storage error: delete timed out after 500ms: the database did not answer"
    );
    let source = std::error::Error::source(&error).expect("the storage's error");
    assert!(
        matches!(
            source.downcast_ref::<PostgresError>(),
            Some(PostgresError::Timeout {
                operation: "delete",
                ..
            })
        ),
        "{source:?}"
    );
    tx.rollback().await.expect("release the lock");

    // Nothing was changed, and the next operation runs on a new connection.
    assert_eq!(
        storage.job(id).await.expect("job").expect("exists").state,
        JobState::Enqueued
    );
    assert!(storage
        .delete(id, "deleted by a test", Utc::now())
        .await
        .expect("delete after the lock is gone"));
    let after = backend_pid(&storage).await;
    assert_ne!(before, after, "the connection that hung is not reused");
    storage.pool().close();
    schema.teardown().await;
}

fn unique_job(name: &str, key: &str) -> NewJob {
    NewJob {
        unique: Some(jobs::Uniqueness {
            key: key.to_owned(),
            window: None,
        }),
        ..job(name, "default")
    }
}

/// A unique key enqueued in the caller's transaction is held until it commits: an enqueue of
/// the same key from elsewhere waits for that transaction (its insert meets the key in the
/// unique index), then answers the committed job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_key_enqueued_in_a_transaction_is_held_until_it_commits() {
    let schema = TestSchema::new().await;
    let storage = schema.storage().clone();
    let mut client = storage.pool().get().await.expect("connection");
    let tx = client.transaction().await.expect("begin");
    let first = storage
        .enqueue_new_tx(&tx, vec![unique_job("first", "tx-key")], Utc::now())
        .await
        .expect("enqueue in tx")[0];
    assert!(!first.duplicate);
    let other = storage.clone();
    let racing = tokio::spawn(async move {
        other
            .enqueue(vec![unique_job("second", "tx-key")], Utc::now())
            .await
            .expect("enqueue")[0]
    });
    // The racing enqueue waits for the caller's transaction (a lock on its transaction id, not
    // granted, in pg_locks) before the caller commits.
    let observer = storage.pool().get().await.expect("connection");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let waiting: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted",
                &[],
            )
            .await
            .expect("pg_locks")
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            !racing.is_finished(),
            "the racing enqueue did not wait for the key"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the racing enqueue never waited for the caller's transaction"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tx.commit().await.expect("commit");
    let second = racing.await.expect("task");
    assert_eq!(
        second,
        jobs::Enqueued {
            id: first.id,
            duplicate: true
        }
    );
    drop(observer);
    drop(client);
    schema.teardown().await;
}

/// A requeue racing an enqueue of its job's unique key: the enqueue, in a transaction, inserts
/// the key after the requeue's snapshot, so the requeue's update meets it in the unique index
/// and waits; when the enqueue commits, the requeue tries again, sees the holder, and brings
/// its job back without the key (no storage error).
#[tokio::test]
async fn a_requeue_racing_an_enqueue_of_its_key_comes_back_without_it() {
    let schema = TestSchema::new().await;
    let storage = schema.storage().clone();
    let first = storage
        .enqueue(vec![unique_job("first", "race-key")], Utc::now())
        .await
        .expect("enqueue")[0]
        .id;
    assert_eq!(fetch(&storage, "s", &["default"], 1).await, vec![first]);
    succeed(&storage, "s", &[first]).await;

    let mut client = storage.pool().get().await.expect("connection");
    let tx = client.transaction().await.expect("begin");
    let second = storage
        .enqueue_new_tx(&tx, vec![unique_job("second", "race-key")], Utc::now())
        .await
        .expect("enqueue in tx")[0];
    assert!(!second.duplicate);
    let other = storage.clone();
    let requeue =
        tokio::spawn(async move { other.requeue(first, "requeued by hand", Utc::now()).await });
    let observer = storage.pool().get().await.expect("connection");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let waiting: i64 = observer
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted
                   AND pid IN (SELECT pid FROM pg_stat_activity WHERE application_name = $1)",
                &[&schema.application_name()],
            )
            .await
            .expect("pg_locks")
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(!requeue.is_finished(), "the requeue did not meet the key");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the requeue never waited for the enqueue's transaction"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tx.commit().await.expect("commit");
    assert!(requeue.await.expect("task").expect("requeue"));

    let record = storage.job(first).await.expect("job").expect("first");
    assert_eq!(record.state, JobState::Enqueued);
    assert_eq!(record.unique_key, None);
    let reason = record.history.last().and_then(|entry| entry.reason.clone());
    assert_eq!(
        reason.as_deref(),
        Some(
            format!(
                "requeued by hand; {}",
                jobs::Uniqueness::released_note("race-key", second.id)
            )
            .as_str()
        )
    );
    let holder = storage.job(second.id).await.expect("job").expect("second");
    assert_eq!(holder.unique_key.as_deref(), Some("race-key"));
    drop(observer);
    drop(client);
    schema.teardown().await;
}
