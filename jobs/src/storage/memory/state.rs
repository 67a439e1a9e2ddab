//! The storage's data under its lock, and the state changes of jobs: creation, fetch,
//! completion, and the one [`State::transition`] they all go through.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use nohash_hasher::{IntMap, IntSet};
use rustc_hash::FxHashMap;

use super::by_time::ByTime;
use super::history;
use super::job::{Lease, StoredJob};
use super::stats::Stats;
use crate::error::{Error, Result};
use crate::flow::{Admission, Uniqueness};
use crate::job::{JobId, JobState};
use crate::storage::types::*;

/// Everything the storage holds. Each job is in `jobs`, and in the index of its state (none
/// for Awaiting); [`State::transition`] is the only place that moves it from one to another.
#[derive(Default)]
pub(super) struct State {
    /// The last id given out.
    last_id: i64,
    /// The position the next job enqueued at the tail of its queue takes.
    next_position: u64,
    /// Every job. Ids are sequential numbers: hashed as themselves, not digested.
    pub(super) jobs: IntMap<JobId, StoredJob>,
    /// Enqueued jobs per queue, by priority then position: the first is the next to fetch.
    /// Gated jobs (a mutex or kind limits) are in `gated` instead, so a fetch without flow
    /// control reads only this.
    pub(super) queues: FxHashMap<Arc<str>, BTreeMap<(u8, u64), JobId>>,
    /// Enqueued gated jobs per queue, ordered as `queues`.
    pub(super) gated: FxHashMap<Arc<str>, BTreeMap<(u8, u64), JobId>>,
    /// Jobs by unique key (pruned ones removed).
    pub(super) unique: FxHashMap<String, Vec<JobId>>,
    /// Stored queue settings and job kind limits, with their rate windows.
    pub(super) flow: super::flow::Flow,
    /// Scheduled jobs, by run time (for promotion).
    pub(super) scheduled: BTreeSet<(DateTime<Utc>, JobId)>,
    /// Processing jobs (for rescue).
    pub(super) processing: IntSet<JobId>,
    /// Succeeded and Deleted jobs, by the time they finished (for pruning).
    pub(super) finished: ByTime,
    /// Failed jobs, by the time they failed (for pruning).
    pub(super) failed: BTreeSet<(DateTime<Utc>, JobId)>,
    pub(super) recurring: BTreeMap<String, RecurringJob>,
    pub(super) servers: BTreeMap<String, ServerRecord>,
    /// The server holding the maintenance lead, and until when.
    pub(super) leader: Option<(String, DateTime<Utc>)>,
    pub(super) stats: Stats,
}

/// Where a job entering Enqueued goes in its queue.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Placement {
    /// Behind every job in its queue.
    Tail,
    /// At the position it had when it was last enqueued (a shutdown's requeue, a retry due at
    /// once, a lapsed lease): an interrupted job does not lose its turn.
    Original,
}

impl State {
    /// The job `id`, which must exist.
    pub(super) fn job(&self, id: JobId) -> Result<&StoredJob> {
        self.jobs.get(&id).ok_or(Error::JobNotFound(id))
    }

    /// Moves a job to the state of `entry`, which joins its history, then applies what that
    /// decides for its continuations, and what theirs decide in turn (a deleted parent
    /// deletes its whole chain).
    pub(super) fn transition(&mut self, id: JobId, entry: HistoryEntry, placement: Placement) {
        let mut pending = VecDeque::from(self.apply(id, entry, placement));
        while let Some((child, entry)) = pending.pop_front() {
            pending.extend(self.apply(child, entry, Placement::Tail));
        }
    }

    /// One change of [`transition`](Self::transition); returns the changes it decides for
    /// the job's continuations.
    fn apply(
        &mut self,
        id: JobId,
        entry: HistoryEntry,
        placement: Placement,
    ) -> Vec<(JobId, HistoryEntry)> {
        self.unindex(id);
        let Some(job) = self.jobs.get_mut(&id) else {
            return Vec::new();
        };
        let state = entry.state;
        job.state = state;
        job.state_at = entry.at;
        job.run_at = (state == JobState::Scheduled).then(|| entry.data.run_at.unwrap_or(entry.at));
        if state != JobState::Processing {
            // A fetch leases the job once it is Processing; any other state ends the lease.
            job.lease = None;
        }
        if state == JobState::Enqueued {
            if placement == Placement::Tail {
                job.position = self.next_position;
                self.next_position += 1;
            }
            job.enqueued_at = entry.at;
        }
        if state == JobState::Succeeded {
            job.result.clone_from(&entry.data.result);
        }
        if let Some(error) = &entry.data.error {
            job.error = Some(error.clone());
        }
        job.waiting = None;
        job.history.push(entry);
        self.index(id);
        self.decide_continuations(id)
    }

    /// Adds the job to the index of its state.
    fn index(&mut self, id: JobId) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        match job.state {
            JobState::Enqueued => {
                let index = if job.gated() {
                    &mut self.gated
                } else {
                    &mut self.queues
                };
                let queue = index.entry(job.queue.clone()).or_default();
                queue.insert((job.priority, job.position), id);
            }
            JobState::Scheduled => {
                self.scheduled
                    .insert((job.run_at.unwrap_or(job.state_at), id));
            }
            JobState::Processing => {
                self.processing.insert(id);
            }
            JobState::Succeeded | JobState::Deleted => {
                self.finished.insert((job.state_at, id));
            }
            JobState::Failed => {
                self.failed.insert((job.state_at, id));
            }
            JobState::Awaiting => {}
        }
    }

    /// Forgets a job (pruning). Its parent's `children` keeps its id: reads leave out the
    /// children that no longer exist.
    pub(super) fn remove(&mut self, id: JobId) {
        self.unindex(id);
        if let Some(job) = self.jobs.remove(&id) {
            if let Some(key) = job.unique_key {
                if let Some(ids) = self.unique.get_mut(&key) {
                    ids.retain(|other| *other != id);
                    if ids.is_empty() {
                        self.unique.remove(&key);
                    }
                }
            }
        }
    }

    /// Takes job `id`'s unique key away when another job holds it in a non-final state, before
    /// `id` comes back to one (see [`Unique`](crate::Unique)); the note its history entry adds.
    pub(super) fn release_held_key(&mut self, id: JobId) -> Option<String> {
        let key = self.jobs.get(&id)?.unique_key.clone()?;
        let holder =
            self.unique.get(&key)?.iter().copied().find(|other| {
                *other != id && self.jobs.get(other).is_some_and(StoredJob::active)
            })?;
        if let Some(ids) = self.unique.get_mut(&key) {
            ids.retain(|other| *other != id);
        }
        if let Some(job) = self.jobs.get_mut(&id) {
            job.unique_key = None;
        }
        Some(Uniqueness::released_note(&key, holder))
    }

    /// The job that makes `new` a duplicate at `now`, if any (see
    /// [`Uniqueness::blocks`](crate::Uniqueness::blocks)).
    pub(super) fn duplicate_of(&self, new: &NewJob, now: DateTime<Utc>) -> Option<JobId> {
        let unique = new.unique.as_ref()?;
        self.unique.get(&unique.key)?.iter().copied().find(|id| {
            self.jobs
                .get(id)
                .is_some_and(|job| unique.blocks(job.active(), job.created_at, now))
        })
    }

    /// Removes the job from the index of its state.
    fn unindex(&mut self, id: JobId) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        match job.state {
            JobState::Enqueued => {
                let index = if job.gated() {
                    &mut self.gated
                } else {
                    &mut self.queues
                };
                if let Some(queue) = index.get_mut(&job.queue) {
                    queue.remove(&(job.priority, job.position));
                }
            }
            JobState::Scheduled => {
                self.scheduled
                    .remove(&(job.run_at.unwrap_or(job.state_at), id));
            }
            JobState::Processing => {
                self.processing.remove(&id);
            }
            JobState::Succeeded | JobState::Deleted => {
                self.finished.remove((job.state_at, id));
            }
            JobState::Failed => {
                self.failed.remove(&(job.state_at, id));
            }
            JobState::Awaiting => {}
        }
    }

    /// What the state `parent` is now in decides for its Awaiting continuations.
    fn decide_continuations(&mut self, parent: JobId) -> Vec<(JobId, HistoryEntry)> {
        let Some(job) = self.jobs.get(&parent) else {
            return Vec::new();
        };
        if job.children.is_empty() {
            return Vec::new();
        }
        let children = job.children.clone();
        let (state, at, result) = (job.state, job.state_at, job.result.clone());
        children
            .into_iter()
            .filter_map(|child| self.decide(child, parent, state, &result, at))
            .collect()
    }

    /// The change `parent` reaching `parent_state` makes to `child`, if it is Awaiting and
    /// the state decides it (see [`continuation_decision`]). A released child keeps the
    /// result of a parent that succeeded, for its worker.
    fn decide(
        &mut self,
        child: JobId,
        parent: JobId,
        parent_state: JobState,
        parent_result: &Option<serde_json::Value>,
        at: DateTime<Utc>,
    ) -> Option<(JobId, HistoryEntry)> {
        let job = self.jobs.get_mut(&child)?;
        if job.state != JobState::Awaiting {
            return None;
        }
        let on = job.continue_on.unwrap_or_default();
        let entry = if continuation_decision(on, parent_state)? {
            if parent_state == JobState::Succeeded {
                job.parent_result.clone_from(parent_result);
            }
            history::released(&job.queue, parent, parent_state, at)
        } else {
            history::not_met(parent, parent_state, at)
        };
        Some((child, entry))
    }

    /// A requeued parent puts back to Awaiting the continuations its outcome had deleted,
    /// down the chain.
    pub(super) fn rearm(&mut self, parent: JobId, at: DateTime<Utc>) {
        let mut parents = vec![parent];
        while let Some(parent) = parents.pop() {
            let children = match self.jobs.get(&parent) {
                Some(job) => job.children.clone(),
                None => continue,
            };
            for child in children {
                let deleted_by_parent = self.jobs.get(&child).is_some_and(|job| {
                    job.state == JobState::Deleted
                        && job
                            .history
                            .last()
                            .and_then(|entry| entry.reason.as_deref())
                            .is_some_and(|reason| reason.starts_with(CONTINUATION_NOT_MET))
                });
                if deleted_by_parent {
                    let mut entry = history::rearmed(parent, at);
                    if let Some(note) = self.release_held_key(child) {
                        entry.reason = entry.reason.map(|reason| format!("{reason}; {note}"));
                    }
                    self.transition(child, entry, Placement::Tail);
                    parents.push(child);
                }
            }
        }
    }

    /// Stores a new job in its first state. A continuation whose parent has already finished
    /// is decided at once.
    pub(super) fn insert(&mut self, new: NewJob, now: DateTime<Utc>) -> JobId {
        self.last_id += 1;
        let id = JobId(self.last_id);
        let first = history::created(&new, now);
        let (parent, continue_on) = match new.initial {
            InitialState::Awaiting { parent, on } => (Some(parent), Some(on)),
            InitialState::Enqueued | InitialState::Scheduled { .. } => (None, None),
        };
        if let Some(unique) = &new.unique {
            self.unique.entry(unique.key.clone()).or_default().push(id);
        }
        let job = StoredJob {
            unique_key: new.unique.map(|unique| unique.key),
            mutex: new.mutex.map(Arc::from),
            limited: new.limited,
            waiting: None,
            id,
            name: new.name.into(),
            queue: new.queue.into(),
            args: new.args.into(),
            priority: new.priority,
            // In no index until the transition below puts it in its first state.
            state: JobState::Awaiting,
            created_at: now,
            state_at: now,
            run_at: None,
            retry_count: 0,
            parent,
            continue_on,
            children: Vec::new(),
            recurring_id: new.recurring.map(|origin| origin.id),
            result: None,
            error: None,
            // Room for the usual history: Enqueued, Processing, Succeeded.
            history: Vec::with_capacity(3),
            lease: None,
            position: 0,
            enqueued_at: now,
            parent_result: None,
        };
        self.jobs.insert(id, job);
        self.transition(id, first, Placement::Tail);
        if let Some(parent) = parent {
            if let Some(parent_job) = self.jobs.get_mut(&parent) {
                parent_job.children.push(id);
                let (state, result) = (parent_job.state, parent_job.result.clone());
                if let Some((child, entry)) = self.decide(id, parent, state, &result, now) {
                    self.transition(child, entry, Placement::Tail);
                }
            }
        }
        id
    }

    /// Claims up to `request.limit` Enqueued jobs, queue by queue in the request's order, each
    /// from the head of its queue, and leases them to the requesting server. With
    /// `request.flow`, [`fetch_flow`](Self::fetch_flow) decides instead.
    pub(super) fn fetch(&mut self, request: &FetchRequest<'_>) -> Vec<FetchedJob> {
        if request.flow {
            return self.fetch_flow(request);
        }
        let mut fetched = Vec::with_capacity(request.limit.min(self.jobs.len()));
        // One copy of the server's id, shared by the leases of the jobs fetched.
        let server: Arc<str> = Arc::from(request.server_id);
        for queue in request.queues {
            while fetched.len() < request.limit {
                let Some(&id) = self
                    .queues
                    .get(queue.as_str())
                    .and_then(|queue| queue.values().next())
                else {
                    break;
                };
                let Some(job) = self.claim(id, &server, request) else {
                    break;
                };
                fetched.push(job);
            }
        }
        fetched
    }

    /// A flow-controlled fetch: the jobs of each served queue (plain and gated, in their
    /// order) that [`Admission`] lets start, skipping paused queues and passing over the
    /// jobs that must wait (each reason recorded once in the job's history).
    fn fetch_flow(&mut self, request: &FetchRequest<'_>) -> Vec<FetchedJob> {
        let server: Arc<str> = Arc::from(request.server_id);
        let mut admission = self.admission(request);
        let mut fetched: Vec<FetchedJob> = Vec::new();
        let mut waits: Vec<(JobId, String)> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for queue in request.queues {
            if seen.contains(&queue.as_str()) || self.flow.paused(queue) {
                continue;
            }
            seen.push(queue);
            // The candidates in fetch order: the queue's plain and gated jobs merged, up to
            // the scan bound of a fetch.
            let mut candidates: Vec<((u8, u64), JobId)> = self
                .queues
                .get(queue.as_str())
                .into_iter()
                .chain(self.gated.get(queue.as_str()))
                .flat_map(|index| index.iter().take(crate::flow::scan_bound(request.limit)))
                .map(|(key, id)| (*key, *id))
                .collect();
            candidates.sort_unstable();
            candidates.truncate(crate::flow::scan_bound(request.limit));
            for (_, id) in candidates {
                if fetched.len() >= request.limit {
                    break;
                }
                let Some(job) = self.jobs.get(&id) else {
                    continue;
                };
                match admission.admit(queue, &job.name, job.mutex.as_deref()) {
                    Ok(()) => {
                        self.flow.started(queue, &job.name, request.now);
                        if let Some(job) = self.claim(id, &server, request) {
                            fetched.push(job);
                        }
                    }
                    Err(None) => break,
                    Err(Some(reason)) => waits.push((id, reason.to_string())),
                }
            }
        }
        for (id, reason) in waits {
            self.note_waiting(id, reason, request.now);
        }
        fetched
    }

    /// The budgets of a flow-controlled fetch at this moment: what each served queue and
    /// each job kind with limits may still start, and the mutex keys Processing jobs hold.
    fn admission(&self, request: &FetchRequest<'_>) -> Admission {
        let mut running_queue: FxHashMap<&str, u64> = FxHashMap::default();
        let mut running_kind: FxHashMap<&str, u64> = FxHashMap::default();
        let mut admission = Admission::default();
        for id in &self.processing {
            if let Some(job) = self.jobs.get(id) {
                *running_queue.entry(&job.queue).or_default() += 1;
                *running_kind.entry(&job.name).or_default() += 1;
                if let Some(key) = &job.mutex {
                    admission.hold(key);
                }
            }
        }
        for queue in request.queues {
            let running = running_queue.get(queue.as_str()).copied().unwrap_or(0);
            admission.queue(queue, self.flow.queue_left(queue, running, request.now));
        }
        self.flow.kinds(&mut admission, &running_kind, request.now);
        admission
    }

    /// Records once in a passed-over job's history why it waits.
    fn note_waiting(&mut self, id: JobId, reason: String, at: DateTime<Utc>) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if job.waiting.as_deref() == Some(reason.as_str()) {
            return;
        }
        job.history.push(history::waiting(&job.queue, &reason, at));
        job.waiting = Some(reason);
    }

    /// Moves one Enqueued job to Processing under `server`'s lease, returning it as fetched.
    fn claim(
        &mut self,
        id: JobId,
        server: &Arc<str>,
        request: &FetchRequest<'_>,
    ) -> Option<FetchedJob> {
        let job = self.jobs.get(&id)?;
        let fetched = FetchedJob {
            id,
            name: job.name.clone(),
            queue: job.queue.clone(),
            args: job.args.clone(),
            retry_count: job.retry_count,
            created_at: job.created_at,
            enqueued_at: job.enqueued_at,
            parent: job.parent,
            parent_result: job.parent_result.clone(),
        };
        let entry = history::started(server, job.retry_count + 1, request.now);
        self.transition(id, entry, Placement::Original);
        if let Some(job) = self.jobs.get_mut(&id) {
            job.lease = Some(Lease {
                server: server.clone(),
                until: request.lease_until,
            });
        }
        Some(fetched)
    }

    /// Applies the outcome of an attempt, if `completion.server_id` still holds the job's
    /// lease (a lease that lapsed and went to another server makes the completion stale).
    /// Returns the state the job moved to.
    pub(super) fn complete(&mut self, completion: &Completion) -> Option<JobState> {
        let job = self.jobs.get_mut(&completion.id)?;
        if job.state != JobState::Processing || job.server() != Some(&*completion.server_id) {
            return None;
        }
        let outcome = &completion.outcome;
        if outcome.failed_attempt() {
            job.retry_count += 1;
        }
        self.stats.count(outcome, completion.at);
        let entry = history::completed(completion);
        let state = entry.state;
        // A shutdown's requeue, or a retry due at once, goes back to its place in its queue.
        self.transition(completion.id, entry, Placement::Original);
        Some(state)
    }
}
