//! The database kills the workers' connections (`pg_terminate_backend`) again and again while
//! they run jobs: they reconnect and carry on, every job Succeeds, nothing panics.

mod postgres_support;

use std::collections::HashSet;
use std::time::Duration;

use jobs::{JobState, Storage};
use postgres_support::*;

const JOBS: usize = 3000;
const KILLS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_survive_terminated_connections() {
    let schema = schema().await;
    let storage = schema.storage();
    let settings = WorkerSettings {
        workers: 10,
        lease: Duration::from_secs(3),
        pause: Duration::from_millis(5),
    };
    let mut workers: Vec<Worker> = (0..2).map(|_| Worker::start(&schema, settings)).collect();
    let application = worker_application(&schema);
    let admin = storage.pool().get().await.expect("connection");
    let terminate = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE application_name = $1 AND pid <> pg_backend_pid()";

    let ids = enqueue_records(storage, JOBS).await;
    let mut terminated = 0;
    for round in 1..=KILLS {
        // Wait for progress, then cut every connection of the workers (pool and LISTEN).
        let target = (JOBS * round / (KILLS + 1)) as i64;
        eventually(
            &format!("{target} executions before cut {round}"),
            Duration::from_secs(120),
            || async { execution_count(storage).await >= target },
        )
        .await;
        let killed: i64 = admin
            .query_one(terminate, &[&application])
            .await
            .expect("terminate")
            .get(0);
        terminated += killed;
    }
    assert!(
        terminated >= KILLS as i64,
        "connections were terminated ({terminated})"
    );

    eventually("every job to succeed", Duration::from_secs(120), || async {
        count_in(storage, JobState::Succeeded).await == JOBS as u64
    })
    .await;
    let runs = executions(storage).await;
    let expected: HashSet<i64> = ids.iter().map(|id| id.0).collect();
    assert_eq!(
        runs.keys().copied().collect::<HashSet<_>>(),
        expected,
        "nothing lost"
    );
    assert_eq!(
        storage
            .counts()
            .await
            .expect("counts")
            .by_state
            .values()
            .sum::<u64>(),
        JOBS as u64
    );

    // The LISTEN connections came back too.
    eventually(
        "the workers to LISTEN again",
        Duration::from_secs(30),
        || async {
            let listening: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
                 AND query LIKE 'LISTEN %'",
                    &[&application],
                )
                .await
                .expect("pg_stat_activity")
                .get(0);
            listening == 2
        },
    )
    .await;

    for worker in &mut workers {
        assert!(
            worker.is_running(),
            "worker {} died: {}",
            worker.pid,
            worker.stderr()
        );
        let status = worker.stop().await;
        assert!(
            status.success(),
            "worker {} exited with {status}: {}",
            worker.pid,
            worker.stderr()
        );
        assert!(!worker.stderr().contains("panicked"), "{}", worker.stderr());
    }
    drop(admin);
    drop(workers);
    schema.teardown().await;
}
