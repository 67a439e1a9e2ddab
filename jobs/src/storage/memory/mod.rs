//! [`MemoryStorage`]: the embedded storage, and the reference semantics of the [`Storage`] trait.
//!
//! One mutex holds a [`State`](state::State); every operation takes it, reads or changes the
//! data, and lets it go. The data:
//!
//! - `jobs`, every job by id: a [`StoredJob`](job::StoredJob), the fields of a
//!   [`JobRecord`] with its history as plain [`HistoryEntry`]s, plus its lease while
//!   Processing and its position in its queue;
//! - one index per state that something looks jobs up by: the Enqueued jobs of each queue by
//!   priority, then position (fetch takes the first), Scheduled jobs by run time (promotion), Processing jobs
//!   (rescue of lapsed leases), Succeeded/Deleted and Failed jobs by the time they got there
//!   (pruning). Awaiting jobs are found through their parent's `children`;
//! - recurring jobs, servers and the leader, by id; succeeded and failed attempts per hour.
//!
//! Every change of a job's state goes through [`State::transition`](state::State::transition),
//! which moves the job between indexes, appends the entry to its history and decides its
//! continuations, so the state, the indexes and the history cannot disagree. The entries
//! themselves are built in [`history`], one function per kind.

mod by_time;
mod flow;
mod history;
mod job;
mod state;
mod stats;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use tokio::sync::Notify;

use self::job::StoredJob;
use self::state::{Placement, State};
use super::types::*;
use super::Storage;
use crate::error::{Error, Result};
use crate::flow::{Enqueued, JobLimits, QueueInfo, QueueLimits, QueueSettings};
use crate::job::{JobId, JobState};

/// An in-process storage: fast, shared by clones, gone when the process ends.
///
/// It implements the whole [`Storage`] contract (leases, retention, recurring claims,
/// continuations) and is what the conformance suite is checked against first. Use it for
/// development, tests and single-process applications that can lose their queue on restart.
///
/// ```
/// let storage = jobs::MemoryStorage::new();
/// let client = jobs::Client::new(storage.clone());
/// # let _ = client;
/// ```
#[derive(Clone, Default)]
pub struct MemoryStorage {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    work: Notify,
}

impl std::fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStorage").finish_non_exhaustive()
    }
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        MemoryStorage::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The maintenance passes that put jobs back in their queues (promotion, rescue): `pick`
    /// chooses the jobs and their Enqueued entries, each goes to its queue as `placement`
    /// says, and the servers are woken once the lock is let go. Returns how many moved.
    fn enqueue_picked(
        &self,
        placement: Placement,
        pick: impl FnOnce(&State) -> Vec<(JobId, HistoryEntry)>,
    ) -> usize {
        let moved = {
            let mut state = self.lock();
            let picked = pick(&state);
            let moved = picked.len();
            for (id, entry) in picked {
                state.transition(id, entry, placement);
            }
            moved
        };
        if moved > 0 {
            self.wake();
        }
        moved
    }

    fn wake(&self) {
        self.inner.work.notify_waiters();
        self.inner.work.notify_one();
    }
}

fn with_last_state(state: &State, mut job: RecurringJob) -> RecurringJob {
    job.last_job_state = job
        .last_job_id
        .and_then(|id| state.jobs.get(&id))
        .map(|last| last.state);
    job
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn enqueue(&self, jobs: Vec<NewJob>, now: DateTime<Utc>) -> Result<Vec<Enqueued>> {
        let ids = {
            let mut state = self.lock();
            for job in &jobs {
                crate::queue::validate_queue(&job.queue)?;
                if let InitialState::Awaiting { parent, .. } = job.initial {
                    if !state.jobs.contains_key(&parent) {
                        return Err(Error::ParentNotFound(parent));
                    }
                }
            }
            jobs.into_iter()
                .map(|job| match state.duplicate_of(&job, now) {
                    Some(existing) => Enqueued {
                        id: existing,
                        duplicate: true,
                    },
                    None => Enqueued::created(state.insert(job, now)),
                })
                .collect::<Vec<_>>()
        };
        self.wake();
        Ok(ids)
    }

    async fn fetch(&self, request: FetchRequest<'_>) -> Result<Vec<FetchedJob>> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        Ok(self.lock().fetch(&request))
    }

    async fn complete(&self, completions: &[Completion]) -> Result<()> {
        let mut requeued = false;
        {
            let mut state = self.lock();
            for completion in completions {
                requeued |= state.complete(completion) == Some(JobState::Enqueued);
            }
        }
        if requeued {
            self.wake();
        }
        Ok(())
    }

    async fn keep_alive(
        &self,
        server_id: &str,
        ids: &[JobId],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<JobId>> {
        let mut state = self.lock();
        let mut lost = Vec::new();
        for id in ids {
            // Only a Processing job has a lease.
            let lease = state
                .jobs
                .get_mut(id)
                .and_then(|job| job.lease.as_mut())
                .filter(|lease| *lease.server == *server_id);
            match lease {
                Some(lease) => lease.until = lease_until,
                None => lost.push(*id),
            }
        }
        Ok(lost)
    }

    async fn delete(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        let mut state = self.lock();
        if state.job(id)?.state == JobState::Deleted {
            return Ok(false);
        }
        state.transition(id, history::deleted(reason, now), Placement::Tail);
        Ok(true)
    }

    async fn requeue(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        {
            let mut state = self.lock();
            let job = state.job(id)?;
            if job.state == JobState::Enqueued {
                return Ok(false);
            }
            let queue = job.queue.clone();
            let entry = match state.release_held_key(id) {
                Some(note) => history::requeued(&queue, &format!("{reason}; {note}"), now),
                None => history::requeued(&queue, reason, now),
            };
            state.transition(id, entry, Placement::Tail);
            state.rearm(id, now);
        }
        self.wake();
        Ok(true)
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        let state = self.lock();
        Ok(state
            .jobs
            .get(&id)
            .map(|job| job.to_record(&state.jobs, true)))
    }

    async fn wait_for_work(&self, max_wait: Duration) {
        let _ = tokio::time::timeout(max_wait, self.inner.work.notified()).await;
    }

    async fn queue_settings(&self) -> Result<Vec<QueueSettings>> {
        Ok(self.lock().flow.settings())
    }

    async fn gated_queues(&self) -> Result<Vec<String>> {
        let state = self.lock();
        let mut queues: Vec<String> = state
            .gated
            .iter()
            .filter(|(_, jobs)| !jobs.is_empty())
            .map(|(queue, _)| queue.to_string())
            .collect();
        queues.sort();
        Ok(queues)
    }

    async fn set_queue_paused(&self, queue: &str, paused: bool) -> Result<()> {
        self.lock().flow.set_paused(queue, paused);
        if !paused {
            self.wake();
        }
        Ok(())
    }

    async fn set_queue_limits(&self, queue: &str, limits: QueueLimits) -> Result<()> {
        self.lock().flow.set_limits(queue, limits);
        self.wake();
        Ok(())
    }

    async fn register_job_limits(&self, limits: &[JobLimits]) -> Result<()> {
        self.lock().flow.register(limits);
        Ok(())
    }

    async fn queues(&self) -> Result<Vec<QueueInfo>> {
        let state = self.lock();
        let mut queues: BTreeMap<String, QueueInfo> = BTreeMap::new();
        for job in state.jobs.values() {
            if job.state.is_final() {
                continue;
            }
            let info = queues.entry(job.queue.to_string()).or_default();
            *info.counts.entry(job.state).or_default() += 1;
        }
        for settings in state.flow.settings() {
            queues.entry(settings.queue.clone()).or_default();
        }
        Ok(queues
            .into_iter()
            .map(|(queue, info)| QueueInfo {
                settings: state.flow.queue(&queue),
                queue,
                ..info
            })
            .collect())
    }

    async fn promote_scheduled(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        let promoted = self.enqueue_picked(Placement::Tail, |state| {
            state
                .scheduled
                .iter()
                .take_while(|(run_at, _)| *run_at <= now)
                .take(limit)
                .filter_map(|(_, id)| {
                    let job = state.jobs.get(id)?;
                    Some((*id, history::promoted(&job.queue, now)))
                })
                .collect()
        });
        Ok(promoted)
    }

    async fn rescue_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        let rescued = self.enqueue_picked(Placement::Original, |state| {
            state
                .processing
                .iter()
                .filter_map(|id| {
                    let job = state.jobs.get(id)?;
                    let lapsed = job.lease.as_ref().is_none_or(|lease| lease.until < now);
                    let server = job.server().unwrap_or_default();
                    lapsed.then(|| (*id, history::rescued(server, now)))
                })
                .take(limit)
                .collect()
        });
        Ok(rescued)
    }

    async fn prune(&self, request: PruneRequest) -> Result<usize> {
        let mut state = self.lock();
        let mut doomed: Vec<(DateTime<Utc>, JobId)> = state
            .finished
            .iter()
            .take_while(|(at, _)| *at < request.finished_before)
            .take(request.limit)
            .copied()
            .collect();
        if let Some(failed_before) = request.failed_before {
            let room = request.limit - doomed.len();
            doomed.extend(
                state
                    .failed
                    .iter()
                    .take_while(|(at, _)| *at < failed_before)
                    .take(room)
                    .copied(),
            );
        }
        for (_, id) in &doomed {
            state.remove(*id);
        }
        Ok(doomed.len())
    }

    async fn try_lead(
        &self,
        server_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let mut state = self.lock();
        let free = match &state.leader {
            None => true,
            Some((leader, expires)) => leader == server_id || *expires < now,
        };
        if free {
            state.leader = Some((server_id.to_owned(), until));
        }
        Ok(free)
    }

    async fn resign(&self, server_id: &str) -> Result<()> {
        let mut state = self.lock();
        if state
            .leader
            .as_ref()
            .is_some_and(|(leader, _)| leader == server_id)
        {
            state.leader = None;
        }
        Ok(())
    }

    async fn register_server(&self, server: &ServerInfo, now: DateTime<Utc>) -> Result<()> {
        self.lock().servers.insert(
            server.id.clone(),
            ServerRecord {
                info: server.clone(),
                heartbeat_at: now,
            },
        );
        Ok(())
    }

    async fn heartbeat(&self, server_id: &str, now: DateTime<Utc>) -> Result<()> {
        if let Some(server) = self.lock().servers.get_mut(server_id) {
            server.heartbeat_at = now;
        }
        Ok(())
    }

    async fn unregister_server(&self, server_id: &str) -> Result<()> {
        self.lock().servers.remove(server_id);
        Ok(())
    }

    async fn remove_dead_servers(&self, before: DateTime<Utc>) -> Result<usize> {
        let mut state = self.lock();
        let count = state.servers.len();
        state
            .servers
            .retain(|_, server| server.heartbeat_at >= before);
        Ok(count - state.servers.len())
    }

    async fn servers(&self) -> Result<Vec<ServerRecord>> {
        Ok(self.lock().servers.values().cloned().collect())
    }

    async fn upsert_recurring(&self, mut job: RecurringJob) -> Result<()> {
        let mut state = self.lock();
        if let Some(existing) = state.recurring.get(&job.id) {
            job.created_at = existing.created_at;
        }
        state.recurring.insert(job.id.clone(), job);
        Ok(())
    }

    async fn recurring(&self, id: &str) -> Result<Option<RecurringJob>> {
        let state = self.lock();
        Ok(state
            .recurring
            .get(id)
            .cloned()
            .map(|job| with_last_state(&state, job)))
    }

    async fn list_recurring(&self) -> Result<Vec<RecurringJob>> {
        let state = self.lock();
        Ok(state
            .recurring
            .values()
            .cloned()
            .map(|job| with_last_state(&state, job))
            .collect())
    }

    async fn remove_recurring(&self, id: &str) -> Result<bool> {
        Ok(self.lock().recurring.remove(id).is_some())
    }

    async fn set_recurring_paused(&self, id: &str, paused: bool) -> Result<bool> {
        Ok(match self.lock().recurring.get_mut(id) {
            Some(job) => {
                job.paused = paused;
                true
            }
            None => false,
        })
    }

    async fn due_recurring(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<RecurringJob>> {
        let state = self.lock();
        Ok(state
            .recurring
            .values()
            .filter(|job| !job.paused && job.next_run.is_some_and(|next| next <= now))
            .take(limit)
            .cloned()
            .map(|job| with_last_state(&state, job))
            .collect())
    }

    async fn claim_recurring(&self, claim: RecurringClaim) -> Result<Option<Option<JobId>>> {
        let created = {
            let mut state = self.lock();
            match state.recurring.get(&claim.id) {
                Some(job) if job.next_run == claim.expected_next => {}
                _ => return Ok(None),
            }
            let created = claim.job.map(|job| state.insert(job, claim.now));
            if let Some(job) = state.recurring.get_mut(&claim.id) {
                job.next_run = claim.next_run;
                job.last_error = claim.note;
                if created.is_some() {
                    job.last_run = Some(claim.now);
                    job.last_job_id = created;
                }
            }
            created
        };
        if created.is_some() {
            self.wake();
        }
        Ok(Some(created))
    }

    async fn counts(&self) -> Result<StateCounts> {
        let state = self.lock();
        let mut counts = StateCounts::default();
        for job in state.jobs.values() {
            *counts.by_state.entry(job.state).or_default() += 1;
            if job.is_retry() {
                counts.retries += 1;
            }
        }
        for (queue, ids) in &state.queues {
            if !ids.is_empty() {
                counts
                    .enqueued_by_queue
                    .insert(queue.to_string(), ids.len() as u64);
            }
        }
        counts.recurring = state.recurring.len() as u64;
        counts.servers = state.servers.len() as u64;
        Ok(counts)
    }

    async fn list_jobs(&self, query: JobQuery) -> Result<JobPage> {
        let state = self.lock();
        let mut matching: Vec<&StoredJob> = state
            .jobs
            .values()
            .filter(|job| job.matches(&query))
            .collect();
        matching.sort_by(|a, b| {
            if query.by_run_time() {
                a.run_at.cmp(&b.run_at).then(a.id.cmp(&b.id))
            } else {
                b.state_at.cmp(&a.state_at).then(b.id.cmp(&a.id))
            }
        });
        let limit = if query.limit == 0 { 20 } else { query.limit };
        Ok(JobPage {
            total: matching.len() as u64,
            jobs: matching
                .into_iter()
                .skip(query.offset)
                .take(limit)
                .map(|job| job.to_record(&state.jobs, false))
                .collect(),
        })
    }

    async fn statistics(
        &self,
        granularity: Granularity,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StatPoint>> {
        let state = self.lock();
        let step = match granularity {
            Granularity::Hour => TimeDelta::hours(1),
            Granularity::Day => TimeDelta::days(1),
        };
        let mut points = Vec::new();
        let mut at = from.duration_trunc(step).unwrap_or(from);
        while at < to {
            let end = at + step;
            let counts = state.stats.between(at, end);
            points.push(StatPoint {
                at,
                succeeded: counts.succeeded,
                failed: counts.failed,
            });
            at = end;
        }
        Ok(points)
    }
}
