//! Fires due recurring jobs: one claim per occurrence, atomic in the storage.

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::job::JobState;
use crate::recurring::{fired_job, next_run};
use crate::server::Shared;
use crate::storage::{Misfire, RecurringClaim, RecurringJob};

/// Recurring jobs looked at per round.
const BATCH: usize = 100;

/// Most occurrences fired for one recurring job in one round with `Misfire::FireAll`; the
/// rest follow in the next rounds.
const MAX_CATCH_UP: usize = 1000;

pub(crate) async fn fire_due(shared: &Shared, now: DateTime<Utc>) -> Result<()> {
    for job in shared.storage.due_recurring(now, BATCH).await? {
        if let Err(error) = fire(shared, job, now).await {
            tracing::warn!(%error, "firing a recurring job failed");
        }
    }
    Ok(())
}

/// Fires one due recurring job: once for all missed occurrences, or once per occurrence.
async fn fire(shared: &Shared, mut job: RecurringJob, now: DateTime<Utc>) -> Result<()> {
    for _ in 0..MAX_CATCH_UP {
        let Some(occurrence) = job.next_run.filter(|next| *next <= now) else {
            return Ok(());
        };
        let following = match job.misfire {
            Misfire::FireOnce => next_run(&job, now),
            Misfire::FireAll => next_run(&job, occurrence),
        };
        let claim = match following {
            Err(error) => RecurringClaim {
                id: job.id.clone(),
                expected_next: job.next_run,
                next_run: None,
                job: None,
                note: Some(format!("stopped: {error}")),
                now,
            },
            Ok(following) => {
                let in_flight = job.skip_if_running
                    && matches!(
                        job.last_job_state,
                        Some(JobState::Enqueued | JobState::Processing)
                    );
                RecurringClaim {
                    id: job.id.clone(),
                    expected_next: job.next_run,
                    next_run: following,
                    job: (!in_flight).then(|| fired_job(&job, occurrence)),
                    note: in_flight.then(|| {
                        format!(
                            "skipped the occurrence of {}: job {} is still {}",
                            occurrence.to_rfc3339(),
                            job.last_job_id.map(|id| id.to_string()).unwrap_or_default(),
                            job.last_job_state
                                .map(|s| s.to_string())
                                .unwrap_or_default(),
                        )
                    }),
                    now,
                }
            }
        };
        let next = claim.next_run;
        match shared.storage.claim_recurring(claim).await? {
            // Another server claimed it first.
            None => return Ok(()),
            Some(created) => {
                tracing::info!(recurring = %job.id, job = ?created, %occurrence, "recurring job fired");
                job.next_run = next;
                if created.is_some() {
                    job.last_job_id = created;
                    job.last_job_state = Some(JobState::Enqueued);
                }
            }
        }
    }
    Ok(())
}
