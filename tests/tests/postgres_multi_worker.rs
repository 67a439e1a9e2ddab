//! Three worker processes on one schema process 20,000 jobs: every job Succeeded, and each
//! ran exactly once.

mod postgres_support;

use std::collections::HashSet;
use std::time::Duration;

use jobs::{JobState, Storage};
use postgres_support::*;

const JOBS: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_run_each_job_exactly_once() {
    let schema = schema().await;
    let storage = schema.storage();
    let settings = WorkerSettings {
        workers: 20,
        ..WorkerSettings::default()
    };
    let mut workers: Vec<Worker> = (0..3).map(|_| Worker::start(&schema, settings)).collect();

    let ids = enqueue_records(storage, JOBS).await;
    assert_eq!(ids.len(), JOBS);
    eventually("every job to succeed", Duration::from_secs(240), || async {
        count_in(storage, JobState::Succeeded).await == JOBS as u64
    })
    .await;

    let runs = executions(storage).await;
    assert_eq!(runs.len(), JOBS, "every job ran");
    let repeated: Vec<_> = runs.iter().filter(|(_, pids)| pids.len() > 1).collect();
    assert!(repeated.is_empty(), "jobs ran more than once: {repeated:?}");
    let expected: HashSet<i64> = ids.iter().map(|id| id.0).collect();
    assert_eq!(runs.keys().copied().collect::<HashSet<_>>(), expected);
    let counts = storage.counts().await.expect("counts");
    assert_eq!(counts.get(JobState::Succeeded), JOBS as u64);
    assert_eq!(
        counts.by_state.values().sum::<u64>(),
        JOBS as u64,
        "{counts:?}"
    );
    for worker in &workers {
        let mine = runs.values().filter(|pids| pids[0] == worker.pid).count();
        assert!(mine > 0, "worker {} ran no job", worker.pid);
    }

    for worker in &mut workers {
        let status = worker.stop().await;
        assert!(
            status.success(),
            "worker {} exited with {status}: {}",
            worker.pid,
            worker.stderr()
        );
        assert!(!worker.stderr().contains("panicked"), "{}", worker.stderr());
    }
    assert_eq!(
        storage.servers().await.expect("servers").len(),
        0,
        "workers unregistered"
    );
    drop(workers);
    schema.teardown().await;
}
