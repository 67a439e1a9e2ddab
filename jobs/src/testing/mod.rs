//! Test helpers (feature `test-util`): waiting for a job's state, and the storage
//! [`conformance`] suite every storage must pass.

use std::time::Duration;

use crate::client::Client;
use crate::job::{JobId, JobState};
use crate::storage::JobRecord;

/// A job did not reach the state a test waited for.
#[derive(Debug, thiserror::Error)]
#[error("job {id} did not reach {state} within {timeout:?}; it is {last}")]
pub struct WaitTimeout {
    /// The job.
    pub id: JobId,
    /// The state waited for.
    pub state: JobState,
    /// How long it waited.
    pub timeout: Duration,
    /// Its last state and history, in words.
    pub last: String,
}

/// Polls the job until it is in `state`, or fails after `timeout` with its last state and history.
pub async fn wait_for_state(
    client: &Client,
    id: JobId,
    state: JobState,
    timeout: Duration,
) -> Result<JobRecord, WaitTimeout> {
    wait_for(client, id, timeout, |record| record.state == state)
        .await
        .map_err(|last| WaitTimeout {
            id,
            state,
            timeout,
            last: describe(&last),
        })
}

/// Polls the job until `done` holds, or returns the last record read after `timeout`.
pub async fn wait_for(
    client: &Client,
    id: JobId,
    timeout: Duration,
    mut done: impl FnMut(&JobRecord) -> bool,
) -> std::result::Result<JobRecord, Option<JobRecord>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    loop {
        if let Ok(record) = client.job(id).await {
            if done(&record) {
                return Ok(record);
            }
            last = Some(record);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn describe(record: &Option<JobRecord>) -> String {
    match record {
        None => "missing".to_owned(),
        Some(record) => {
            let history: Vec<String> = record
                .history
                .iter()
                .map(|entry| match &entry.reason {
                    Some(reason) => format!("{} ({reason})", entry.state),
                    None => entry.state.to_string(),
                })
                .collect();
            format!("{} after {}", record.state, history.join(" → "))
        }
    }
}

pub mod conformance;
