//! `kill -9` of a worker process while it runs jobs: every job still Succeeds, and the only
//! jobs that ran twice are jobs that were running in the killed process.

mod postgres_support;

use std::collections::HashSet;
use std::time::Duration;

use jobs::{JobId, JobState, Storage};
use postgres_support::*;

const JOBS: usize = 1500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_jobs_are_rescued_and_run_once_more() {
    let schema = schema().await;
    let storage = schema.storage();
    let settings = WorkerSettings {
        workers: 8,
        lease: Duration::from_secs(3),
        pause: Duration::from_millis(20),
    };
    let mut victim = Worker::start(&schema, settings);
    let mut survivor = Worker::start(&schema, settings);
    let ids = enqueue_records(storage, JOBS).await;

    // Kill the victim in the middle of the run, while it has jobs in flight.
    let victim_pid = victim.pid;
    eventually(
        "the victim to run jobs",
        Duration::from_secs(60),
        || async {
            executions(storage)
                .await
                .values()
                .filter(|pids| pids.contains(&victim_pid))
                .count()
                >= 100
        },
    )
    .await;
    victim.kill();

    eventually(
        "every job to succeed after the rescue",
        Duration::from_secs(120),
        || async { count_in(storage, JobState::Succeeded).await == JOBS as u64 },
    )
    .await;

    let runs = executions(storage).await;
    let expected: HashSet<i64> = ids.iter().map(|id| id.0).collect();
    assert_eq!(
        runs.keys().copied().collect::<HashSet<_>>(),
        expected,
        "every job ran"
    );
    // Read after the run: a statement the victim sent just before dying still commits.
    let victim_started: HashSet<i64> = runs
        .iter()
        .filter(|(_, pids)| pids.contains(&victim_pid))
        .map(|(id, _)| *id)
        .collect();
    let repeated: Vec<i64> = runs
        .iter()
        .filter(|(_, pids)| pids.len() > 1)
        .map(|(id, _)| *id)
        .collect();
    for id in &repeated {
        let pids = &runs[id];
        assert!(
            victim_started.contains(id) && pids[0] == victim_pid,
            "job {id} ran twice but was not running in the killed process: {pids:?}"
        );
        assert_eq!(pids.len(), 2, "job {id} ran more than twice: {pids:?}");
        assert!(pids[1..].iter().all(|pid| *pid == survivor.pid), "{pids:?}");
        let record = storage.job(JobId(*id)).await.expect("job").expect("exists");
        let succeeded: Vec<_> = record
            .history
            .iter()
            .filter(|entry| entry.state == JobState::Succeeded)
            .collect();
        assert_eq!(succeeded.len(), 1, "job {id}: {:?}", record.history);
        assert_eq!(
            succeeded[0].data.server.as_deref(),
            Some(survivor.server_id.as_str()),
            "job {id} succeeded in the survivor"
        );
        assert!(
            record.history.iter().any(|entry| entry
                .reason
                .as_deref()
                .is_some_and(|reason| reason.starts_with("lease expired: server"))),
            "job {id} was rescued: {:?}",
            record.history
        );
    }
    assert!(
        !repeated.is_empty(),
        "the victim was killed with jobs in flight, so some should have run again"
    );
    println!(
        "victim {victim_pid} started {} jobs; {} ran again in {}",
        victim_started.len(),
        repeated.len(),
        survivor.pid
    );

    let status = survivor.stop().await;
    assert!(
        status.success(),
        "survivor exited with {status}: {}",
        survivor.stderr()
    );
    assert!(
        !survivor.stderr().contains("panicked"),
        "{}",
        survivor.stderr()
    );
    drop(victim);
    schema.teardown().await;
}
