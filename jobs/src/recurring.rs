//! Recurring jobs: the [`Client`] methods that add, trigger, pause, resume, list and remove them.
//!
//! A recurring job is a definition (id, cron, time zone, the job and its arguments) kept in
//! the storage. The elected server's maintenance fires it: each firing creates an ordinary job
//! (its `recurring_id` set, the occurrence in its first history entry). A firing is claimed
//! atomically in the storage, so it happens once per occurrence however many servers run.

use chrono::{DateTime, Utc};

use crate::client::Client;
use crate::cron::{parse_zone, Cron};
use crate::error::{Error, Result};
use crate::job::{Job, JobId};
use crate::storage::{
    InitialState, Misfire, NewJob, RecurringClaim, RecurringJob, RecurringOrigin,
};

/// Options of a recurring job.
///
/// ```
/// use jobs::RecurringOptions;
///
/// let options = RecurringOptions::new()
///     .time_zone("Europe/Paris")
///     .fire_every_missed()
///     .skip_if_running();
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecurringOptions {
    /// IANA time zone the cron is read in (default `UTC`).
    pub time_zone: Option<String>,
    /// What happens to occurrences missed while no server ran (default: one job for all).
    pub misfire: Misfire,
    /// Skip a firing (recorded as skipped) while the previous job is Enqueued or Processing.
    pub skip_if_running: bool,
}

impl RecurringOptions {
    /// The defaults: UTC, one job for all missed occurrences, no skipping.
    pub fn new() -> Self {
        RecurringOptions::default()
    }

    /// Reads the cron in this IANA time zone.
    #[must_use]
    pub fn time_zone(mut self, zone: impl Into<String>) -> Self {
        self.time_zone = Some(zone.into());
        self
    }

    /// After downtime, fires one job per missed occurrence instead of one for all.
    #[must_use]
    pub fn fire_every_missed(mut self) -> Self {
        self.misfire = Misfire::FireAll;
        self
    }

    /// Skips a firing while the previous run is still Enqueued or Processing.
    #[must_use]
    pub fn skip_if_running(mut self) -> Self {
        self.skip_if_running = true;
        self
    }
}

fn validate_id(id: &str) -> Result<()> {
    if id.trim().is_empty() || id.len() > 200 {
        return Err(Error::InvalidConfig(format!(
            "recurring job id `{id}` must be 1 to 200 characters and not blank"
        )));
    }
    Ok(())
}

/// The next occurrence of a definition after `after`.
pub(crate) fn next_run(job: &RecurringJob, after: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
    Cron::from(job.cron.as_str()).next_after(after, parse_zone(&job.time_zone)?)
}

impl Client {
    /// Adds a recurring job, or updates the one with this id. The cron and time zone are
    /// validated here. An update keeps the creation time, the pause state and the last run,
    /// replaces the job, and recomputes the next run only when the cron or time zone changed.
    pub async fn add_or_update_recurring<J: Job>(
        &self,
        id: &str,
        cron: impl Into<Cron>,
        job: J,
    ) -> Result<()> {
        self.add_or_update_recurring_with(id, cron, job, RecurringOptions::default())
            .await
    }

    /// [`add_or_update_recurring`](Client::add_or_update_recurring) with options.
    pub async fn add_or_update_recurring_with<J: Job>(
        &self,
        id: &str,
        cron: impl Into<Cron>,
        job: J,
        options: RecurringOptions,
    ) -> Result<()> {
        validate_id(id)?;
        let cron = Cron::parse(cron.into().expression())?;
        let time_zone = options.time_zone.unwrap_or_else(|| "UTC".to_owned());
        let zone = parse_zone(&time_zone)?;
        let template = NewJob::from_job(&job, InitialState::Enqueued)?;
        let now = self.now();
        let existing = self.storage.recurring(id).await?;
        let unchanged_schedule = existing
            .as_ref()
            .is_some_and(|old| old.cron == cron.expression() && old.time_zone == time_zone);
        let next_run = match &existing {
            Some(old) if unchanged_schedule => old.next_run,
            _ => cron.next_after(now, zone)?,
        };
        let definition = RecurringJob {
            id: id.to_owned(),
            cron: cron.expression().to_owned(),
            time_zone,
            job_name: template.name,
            queue: template.queue,
            priority: template.priority,
            mutex: template.mutex,
            limited: template.limited,
            args: template.args,
            misfire: options.misfire,
            skip_if_running: options.skip_if_running,
            paused: existing.as_ref().is_some_and(|old| old.paused),
            next_run,
            last_run: existing.as_ref().and_then(|old| old.last_run),
            last_job_id: existing.as_ref().and_then(|old| old.last_job_id),
            last_job_state: None,
            last_error: existing.as_ref().and_then(|old| old.last_error.clone()),
            created_at: existing.as_ref().map_or(now, |old| old.created_at),
        };
        self.storage.upsert_recurring(definition).await
    }

    /// Fires a recurring job now, outside its schedule (its next run does not move).
    pub async fn trigger_recurring(&self, id: &str) -> Result<JobId> {
        loop {
            let job = self.recurring_job(id).await?;
            let now = self.now();
            let claim = RecurringClaim {
                id: id.to_owned(),
                expected_next: job.next_run,
                next_run: job.next_run,
                job: Some(fired_job(&job, now)),
                note: None,
                now,
            };
            // `None`: a server fired it at this very moment and moved next_run; read again.
            if let Some(created) = self.storage.claim_recurring(claim).await? {
                return created.ok_or_else(|| Error::storage("the storage created no job"));
            }
        }
    }

    /// Removes a recurring job (jobs it already fired stay). Returns false if none had this id.
    pub async fn remove_recurring(&self, id: &str) -> Result<bool> {
        self.storage.remove_recurring(id).await
    }

    /// Pauses a recurring job: it does not fire until resumed.
    pub async fn pause_recurring(&self, id: &str) -> Result<()> {
        self.set_paused(id, true).await
    }

    /// Resumes a paused recurring job. Occurrences missed while paused are not fired; the next
    /// run is the first occurrence from now.
    pub async fn resume_recurring(&self, id: &str) -> Result<()> {
        let job = self.recurring_job(id).await?;
        if job.paused {
            let mut resumed = job;
            resumed.paused = false;
            resumed.next_run = next_run(&resumed, self.now())?;
            self.storage.upsert_recurring(resumed).await?;
        }
        Ok(())
    }

    async fn set_paused(&self, id: &str, paused: bool) -> Result<()> {
        if self.storage.set_recurring_paused(id, paused).await? {
            Ok(())
        } else {
            Err(Error::RecurringNotFound(id.to_owned()))
        }
    }

    /// One recurring job, with its last job's state.
    pub async fn recurring_job(&self, id: &str) -> Result<RecurringJob> {
        self.storage
            .recurring(id)
            .await?
            .ok_or_else(|| Error::RecurringNotFound(id.to_owned()))
    }

    /// Every recurring job, sorted by id, with id, cron, time zone, next run, last run and its
    /// job's id and state, paused flag and last error.
    pub async fn recurring_jobs(&self) -> Result<Vec<RecurringJob>> {
        self.storage.list_recurring().await
    }
}

/// The ordinary job a recurring job fires for `occurrence`.
pub(crate) fn fired_job(job: &RecurringJob, occurrence: DateTime<Utc>) -> NewJob {
    NewJob {
        name: job.job_name.clone(),
        queue: job.queue.clone(),
        priority: job.priority,
        args: job.args.clone(),
        initial: InitialState::Enqueued,
        recurring: Some(RecurringOrigin {
            id: job.id.clone(),
            occurrence,
        }),
        unique: None,
        mutex: job.mutex.clone(),
        limited: job.limited,
    }
}
