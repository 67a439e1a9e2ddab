//! Bad input, each a clear error that affects nothing else: arguments that do not decode, a job
//! name no process knows, a 10 MiB payload, a schema name with quotes, a corrupted row.

mod postgres_support;

use std::time::Duration;

use chrono::Utc;
use jobs::storage::{InitialState, NewJob};
use jobs::{JobError, JobId, JobRecord, JobState, Storage};
use jobs_postgres::{PostgresError, PostgresOptions, PostgresStorage};
use postgres_support::*;

fn new_job(name: &str, args: &str) -> NewJob {
    NewJob::plain(name, "default", args, InitialState::Enqueued)
}

fn last_reason(record: &JobRecord) -> String {
    record
        .history
        .last()
        .and_then(|entry| entry.reason.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_fails_alone_and_clearly() {
    let schema = schema().await;
    let storage = schema.storage();
    let mut worker = Worker::start(&schema, WorkerSettings::default());

    // A schema name with quotes: refused before any SQL is built, by the library and by a
    // worker process started on it.
    let evil = "jobs\"; DROP SCHEMA public CASCADE; --";
    let error = PostgresStorage::connect_with(schema.url(), PostgresOptions::new().schema(evil))
        .await
        .expect_err("a quoted schema name");
    assert!(
        matches!(error, PostgresError::InvalidIdentifier { .. }),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        format!("invalid schema name `{evil}`: it must match ^[a-z_][a-z0-9_]{{0,62}}$")
    );
    let mut refused = Worker::spawn(schema.url(), evil, WorkerSettings::default());
    let status = refused.wait(Duration::from_secs(30)).await;
    assert!(!status.success());
    assert!(
        refused.stderr().contains("invalid schema name"),
        "{}",
        refused.stderr()
    );

    // A 10 MiB payload: refused at enqueue with the sizes, nothing created.
    let huge = format!(r#"{{"n":1,"pad":"{}"}}"#, "x".repeat(10 * 1024 * 1024));
    let error = storage
        .enqueue(
            vec![new_job("record", r#"{"n":1}"#), new_job("record", &huge)],
            Utc::now(),
        )
        .await
        .expect_err("too large");
    assert!(
        error.to_string().contains(&format!(
            "the arguments of job `record` are {} bytes, over the limit of 1048576 bytes",
            huge.len()
        )),
        "{error}"
    );
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

    // Undecodable arguments and an unknown name, among good jobs.
    let good = enqueue_records(storage, 20).await;
    let bad = storage
        .enqueue(
            vec![
                new_job("record", r#"{"n":"seven"}"#),
                new_job("record", "not json at all"),
                new_job("no_such_job", "{}"),
            ],
            Utc::now(),
        )
        .await
        .expect("enqueue")
        .into_iter()
        .map(|enqueued| enqueued.id)
        .collect::<Vec<_>>();
    let more_good = enqueue_records(storage, 20).await;

    // A corrupted row among them: its history cannot be read back.
    let corrupted = enqueue_records(storage, 1).await[0];
    let admin = storage.pool().get().await.expect("connection");
    admin
        .execute(
            &format!(
                "INSERT INTO \"{}\".job_history (job_id, state, at, data)
                 VALUES ($1, 'enqueued', now(), '[1, 2]')",
                schema.schema()
            ),
            &[&corrupted.0],
        )
        .await
        .expect("corrupt");

    let everything: Vec<JobId> = good.iter().chain(&more_good).chain(&bad).copied().collect();
    eventually("every job to finish", Duration::from_secs(60), || async {
        let counts = storage.counts().await.expect("counts");
        counts.get(JobState::Succeeded) == 41 && counts.get(JobState::Failed) == 3
    })
    .await;
    for id in good.iter().chain(&more_good) {
        let record = storage.job(*id).await.expect("job").expect("exists");
        assert_eq!(
            record.state,
            JobState::Succeeded,
            "job {id}: {:?}",
            record.history
        );
    }
    for id in &bad[..2] {
        let record = storage.job(*id).await.expect("job").expect("exists");
        assert_eq!(record.state, JobState::Failed);
        assert_eq!(record.retry_count, 1, "bad arguments are not retried");
        let error = record.error.clone().expect("an error");
        assert_eq!(error.type_name, JobError::INVALID_ARGUMENTS);
        assert!(
            last_reason(&record).contains("the arguments of `record` could not be deserialized"),
            "{}",
            last_reason(&record)
        );
    }
    let unknown = storage.job(bad[2]).await.expect("job").expect("exists");
    assert_eq!(unknown.state, JobState::Failed);
    assert_eq!(
        last_reason(&unknown),
        "no job named `no_such_job` is registered in this process"
    );
    let error = storage
        .job(corrupted)
        .await
        .expect_err("undecodable history");
    // Which entry it is depends on whether the job had finished when the row was written.
    let message = error.to_string();
    assert!(
        message.contains(&format!("job {corrupted}, history entry "))
            && message.contains(" holds undecodable data"),
        "{error}"
    );
    let runs = executions(storage).await;
    assert_eq!(runs.len(), 41, "each good job ran");
    assert!(runs.values().all(|pids| pids.len() == 1));
    assert_eq!(everything.len(), 43);

    assert!(
        worker.is_running(),
        "the worker survived: {}",
        worker.stderr()
    );
    let status = worker.stop().await;
    assert!(
        status.success(),
        "worker exited with {status}: {}",
        worker.stderr()
    );
    assert!(!worker.stderr().contains("panicked"), "{}", worker.stderr());
    drop(admin);
    drop(worker);
    schema.teardown().await;
}
