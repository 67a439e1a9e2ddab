//! [`MemoryStorage`]: the embedded storage, and the reference semantics of the [`Storage`] trait.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
// Keys are sequential ids and the application's queue names: no hash flooding to defend
// against. SipHash was a tenth of the instructions per processed job (callgrind); ids hashed
// as themselves keep consecutive jobs in consecutive buckets, where FxHash scattered them
// over the table and each fetch paid a cache miss (process: 65 % of the fetch's own time).
use nohash_hasher::{IntMap, IntSet};
use rustc_hash::FxHashMap as HashMap;
use tokio::sync::Notify;

use super::types::*;
use super::Storage;
use crate::error::{Error, Result};
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

struct StoredJob {
    /// The record, less what is kept below: its name, queue and arguments are empty, its
    /// `server_id` is `None` and its `history` empty (see [`StoredJob::record`]).
    record: JobRecord,
    /// Shared with the fetched copies of the job, so fetching copies no text.
    name: Arc<str>,
    queue: Arc<str>,
    args: Arc<str>,
    /// The server holding the lease while Processing.
    server: Option<Arc<str>>,
    history: Vec<Entry>,
    position: u64,
    enqueued_at: DateTime<Utc>,
    lease_until: Option<DateTime<Utc>>,
    parent_result: Option<serde_json::Value>,
}

/// A history entry as kept: a Processing entry and a worker's success share the server's id
/// instead of copying it per job.
#[allow(
    clippy::large_enum_variant,
    reason = "most entries are full ones, kept in place: boxing them would allocate per entry"
)]
enum Entry {
    Full(HistoryEntry),
    Processing {
        at: DateTime<Utc>,
        server: Arc<str>,
        attempt: u32,
    },
    /// A worker's success: its data's server is the shared id; the rest is here.
    Succeeded {
        at: DateTime<Utc>,
        server: Arc<str>,
        data: SuccessData,
    },
}

/// The data of a compact Succeeded entry other than its server.
struct SuccessData {
    attempt: Option<u32>,
    duration_ms: Option<u64>,
    latency_ms: Option<u64>,
    result: Option<serde_json::Value>,
}

impl Entry {
    fn reason(&self) -> Option<&str> {
        match self {
            Entry::Full(entry) => entry.reason.as_deref(),
            Entry::Processing { .. } | Entry::Succeeded { .. } => None,
        }
    }

    fn to_history(&self) -> HistoryEntry {
        match self {
            Entry::Full(entry) => entry.clone(),
            Entry::Processing {
                at,
                server,
                attempt,
            } => HistoryEntry {
                state: JobState::Processing,
                at: *at,
                reason: None,
                data: StateData {
                    server: Some(server.to_string()),
                    attempt: Some(*attempt),
                    ..StateData::default()
                },
            },
            Entry::Succeeded { at, server, data } => HistoryEntry {
                state: JobState::Succeeded,
                at: *at,
                reason: None,
                data: StateData {
                    server: Some(server.to_string()),
                    attempt: data.attempt,
                    duration_ms: data.duration_ms,
                    latency_ms: data.latency_ms,
                    result: data.result.clone(),
                    ..StateData::default()
                },
            },
        }
    }
}

impl StoredJob {
    /// The job as read, with `children` limited to those that exist and the history if asked.
    fn record(&self, jobs: &IntMap<JobId, StoredJob>, history: bool) -> JobRecord {
        JobRecord {
            name: self.name.to_string(),
            queue: self.queue.to_string(),
            args: self.args.to_string(),
            server_id: self.server.as_deref().map(str::to_owned),
            children: self
                .record
                .children
                .iter()
                .copied()
                .filter(|child| jobs.contains_key(child))
                .collect(),
            history: if history {
                self.history.iter().map(Entry::to_history).collect()
            } else {
                Vec::new()
            },
            ..self.record.clone()
        }
    }
}

#[derive(Default)]
struct State {
    next_id: i64,
    next_position: u64,
    jobs: IntMap<JobId, StoredJob>,
    /// Enqueued jobs per queue, by position.
    queues: HashMap<String, BTreeMap<u64, JobId>>,
    scheduled: BTreeSet<(At, JobId)>,
    processing: IntSet<JobId>,
    /// Succeeded and Deleted, by the time they finished.
    finished: ByTime,
    failed: BTreeSet<(At, JobId)>,
    recurring: BTreeMap<String, RecurringJob>,
    servers: BTreeMap<String, ServerRecord>,
    leader: Option<(String, DateTime<Utc>)>,
    /// (succeeded, failed) per hour.
    stats: BTreeMap<DateTime<Utc>, (u64, u64)>,
}

/// Where an Enqueued job goes in its queue.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Placement {
    Tail,
    /// Its original place (shutdown requeue, lease rescue): ahead of jobs enqueued after it.
    Original,
}

/// One state change to apply.
struct Change {
    state: JobState,
    at: DateTime<Utc>,
    reason: Option<String>,
    data: StateData,
    /// For Processing, the server that claimed the job; for a worker's success, the server
    /// that ran it (see [`succeeded`]). The history entry shares it.
    server: Option<Arc<str>>,
}

impl Change {
    fn new(state: JobState, at: DateTime<Utc>, reason: impl Into<Option<String>>) -> Self {
        Change {
            state,
            at,
            reason: reason.into(),
            data: StateData::default(),
            server: None,
        }
    }

    fn with_data(mut self, data: StateData) -> Self {
        self.data = data;
        self
    }
}

fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at)
}

/// The (succeeded, failed) counters of the hour of `at`. Outcomes mostly arrive in time order:
/// the latest hour is tried before the time is truncated.
fn hour_counts(
    stats: &mut BTreeMap<DateTime<Utc>, (u64, u64)>,
    at: DateTime<Utc>,
) -> &mut (u64, u64) {
    let hour = match stats.last_key_value() {
        Some((hour, _)) if (0..3600).contains(&(at.timestamp() - hour.timestamp())) => *hour,
        _ => hour_of(at),
    };
    stats.entry(hour).or_default()
}

/// A time as the key of a sorted set: seconds and nanoseconds, ordered as the time is: two
/// integer comparisons, where comparing `DateTime`s (time zone and all) costs many times more
/// on every insert of a finished job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct At(i64, u32);

impl From<DateTime<Utc>> for At {
    fn from(at: DateTime<Utc>) -> Self {
        At(at.timestamp(), at.timestamp_subsec_nanos())
    }
}

/// Jobs by the time they reached their state, oldest first, in a sorted deque. Finished jobs
/// arrive in about time order, so an insert lands at or near the back, where a sorted set's
/// insert cost ~800 instructions per finished job (callgrind). Removing one from the middle (a
/// finished job requeued or deleted by hand) shifts the shorter side; pruning pops the front.
#[derive(Debug, Default)]
struct ByTime(std::collections::VecDeque<(At, JobId)>);

impl ByTime {
    fn insert(&mut self, key: (At, JobId)) {
        let at = match self.0.back() {
            Some(last) if *last > key => self.0.partition_point(|entry| *entry < key),
            _ => self.0.len(),
        };
        self.0.insert(at, key);
    }

    fn remove(&mut self, key: (At, JobId)) {
        if let Ok(at) = self.0.binary_search(&key) {
            self.0.remove(at);
        }
    }

    fn iter(&self) -> impl Iterator<Item = &(At, JobId)> {
        self.0.iter()
    }
}

impl State {
    fn job_mut(&mut self, id: JobId) -> Result<&mut StoredJob> {
        self.jobs.get_mut(&id).ok_or(Error::JobNotFound(id))
    }

    /// Removes the job from the index of its current state.
    fn unindex(&mut self, id: JobId) {
        let Some(job) = self.jobs.get(&id) else {
            return;
        };
        let record = &job.record;
        match record.state {
            JobState::Enqueued => {
                if let Some(queue) = self.queues.get_mut(&*job.queue) {
                    queue.remove(&job.position);
                }
            }
            JobState::Scheduled => {
                if let Some(run_at) = record.run_at {
                    self.scheduled.remove(&(At::from(run_at), id));
                }
            }
            JobState::Processing => {
                self.processing.remove(&id);
            }
            JobState::Succeeded | JobState::Deleted => {
                self.finished.remove((At::from(record.state_at), id));
            }
            JobState::Failed => {
                self.failed.remove(&(At::from(record.state_at), id));
            }
            JobState::Awaiting => {}
        }
    }

    /// Moves a job to a new state: indexes, history, statistics, and the continuations it
    /// releases (cascading deletes down the chain).
    fn transition(&mut self, id: JobId, change: Change, placement: Placement) {
        // The released continuations, in order; allocated only when there are some.
        let mut released = std::collections::VecDeque::new();
        self.apply(id, change, placement, &mut released);
        while let Some((id, change, placement)) = released.pop_front() {
            self.apply(id, change, placement, &mut released);
        }
    }

    /// One state change of [`transition`](Self::transition); the continuations it releases
    /// go to `released`. The change is moved once, into the history (a change is ~300 bytes:
    /// each extra move was a copy per transition).
    fn apply(
        &mut self,
        id: JobId,
        change: Change,
        placement: Placement,
        released: &mut std::collections::VecDeque<(JobId, Change, Placement)>,
    ) {
        self.unindex(id);
        let position = self.next_position;
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let record = &mut job.record;
        let state = change.state;
        let at = change.at;
        record.state = state;
        record.state_at = at;
        if state != JobState::Scheduled {
            record.run_at = None;
        }
        if state != JobState::Processing {
            job.server = None;
            job.lease_until = None;
        }
        match state {
            JobState::Enqueued => {
                if placement == Placement::Tail {
                    job.position = position;
                    self.next_position += 1;
                }
                job.enqueued_at = at;
                match self.queues.get_mut(&*job.queue) {
                    Some(queue) => queue.insert(job.position, id),
                    None => self
                        .queues
                        .entry(job.queue.to_string())
                        .or_default()
                        .insert(job.position, id),
                };
            }
            JobState::Scheduled => {
                let run_at = change.data.run_at.unwrap_or(at);
                record.run_at = Some(run_at);
                self.scheduled.insert((At::from(run_at), id));
            }
            JobState::Processing => {
                self.processing.insert(id);
                job.server.clone_from(&change.server);
            }
            JobState::Succeeded | JobState::Deleted => {
                self.finished.insert((At::from(at), id));
            }
            JobState::Failed => {
                self.failed.insert((At::from(at), id));
            }
            JobState::Awaiting => {}
        }
        if state == JobState::Succeeded {
            record.result.clone_from(&change.data.result);
            hour_counts(&mut self.stats, at).0 += 1;
        }
        if let Some(error) = &change.data.error {
            record.error = Some(error.clone());
        }
        let finished = matches!(
            state,
            JobState::Succeeded | JobState::Failed | JobState::Deleted
        );
        // Only a finished job with continuations needs its result after this.
        let children = if finished && !record.children.is_empty() {
            Some((record.children.clone(), record.result.clone()))
        } else {
            None
        };
        job.history.push(match change.server {
            Some(server) if state == JobState::Processing => Entry::Processing {
                at,
                server,
                attempt: change.data.attempt.unwrap_or(record.retry_count + 1),
            },
            Some(server) if state == JobState::Succeeded => Entry::Succeeded {
                at,
                server,
                data: SuccessData {
                    attempt: change.data.attempt,
                    duration_ms: change.data.duration_ms,
                    latency_ms: change.data.latency_ms,
                    result: change.data.result,
                },
            },
            _ => Entry::Full(HistoryEntry {
                state,
                at,
                reason: change.reason,
                data: change.data,
            }),
        });
        if let Some((children, parent_result)) = children {
            for child in children {
                if let Some(next) = self.release(child, id, state, &parent_result, at) {
                    released.push_back(next);
                }
            }
        }
    }

    /// What happens to `child` when its parent reaches `parent_state`.
    fn release(
        &mut self,
        child: JobId,
        parent: JobId,
        parent_state: JobState,
        parent_result: &Option<serde_json::Value>,
        at: DateTime<Utc>,
    ) -> Option<(JobId, Change, Placement)> {
        let job = self.jobs.get_mut(&child)?;
        if job.record.state != JobState::Awaiting {
            return None;
        }
        let on = job.record.continue_on.unwrap_or_default();
        match continuation_decision(on, parent_state)? {
            true => {
                if parent_state == JobState::Succeeded {
                    job.parent_result.clone_from(parent_result);
                }
                let reason = ContinuationReason::released(parent, parent_state);
                let data = StateData {
                    queue: Some(job.queue.to_string()),
                    parent: Some(parent),
                    ..StateData::default()
                };
                Some((
                    child,
                    Change::new(JobState::Enqueued, at, reason).with_data(data),
                    Placement::Tail,
                ))
            }
            false => {
                let reason = ContinuationReason::not_met(parent, parent_state);
                Some((
                    child,
                    Change::new(JobState::Deleted, at, reason),
                    Placement::Tail,
                ))
            }
        }
    }

    /// A requeued parent puts back to Awaiting the continuations its deletion had deleted,
    /// down the chain.
    fn rearm(&mut self, parent: JobId, at: DateTime<Utc>) {
        let mut stack = vec![parent];
        while let Some(parent) = stack.pop() {
            let children = match self.jobs.get(&parent) {
                Some(job) => job.record.children.clone(),
                None => continue,
            };
            for child in children {
                let deleted_by_parent = self.jobs.get(&child).is_some_and(|job| {
                    job.record.state == JobState::Deleted
                        && job.history.last().is_some_and(|entry| {
                            entry
                                .reason()
                                .is_some_and(|reason| reason.starts_with(CONTINUATION_NOT_MET))
                        })
                });
                if deleted_by_parent {
                    let data = StateData {
                        parent: Some(parent),
                        ..StateData::default()
                    };
                    let reason = ContinuationReason::rearmed(parent);
                    self.transition(
                        child,
                        Change::new(JobState::Awaiting, at, reason).with_data(data),
                        Placement::Tail,
                    );
                    stack.push(child);
                }
            }
        }
    }

    fn insert(&mut self, new: NewJob, now: DateTime<Utc>) -> JobId {
        self.next_id += 1;
        let id = JobId(self.next_id);
        let (continue_on, parent) = match new.initial {
            InitialState::Awaiting { parent, on } => (Some(on), Some(parent)),
            _ => (None, None),
        };
        let (state, reason, data) = new.first_entry();
        let first = Change::new(state, now, reason).with_data(data);
        let record = JobRecord {
            id,
            name: String::new(),
            queue: String::new(),
            args: String::new(),
            state: JobState::Awaiting,
            created_at: now,
            state_at: now,
            run_at: None,
            retry_count: 0,
            server_id: None,
            parent,
            continue_on,
            children: Vec::new(),
            recurring_id: new.recurring.as_ref().map(|origin| origin.id.clone()),
            result: None,
            error: None,
            history: Vec::new(),
        };
        self.jobs.insert(
            id,
            StoredJob {
                record,
                name: new.name.into(),
                queue: new.queue.into(),
                args: new.args.into(),
                server: None,
                // Enqueued, Processing, Succeeded.
                history: Vec::with_capacity(3),
                position: 0,
                enqueued_at: now,
                lease_until: None,
                parent_result: None,
            },
        );
        self.transition(id, first, Placement::Tail);
        if let Some(parent) = parent {
            if let Some(parent_job) = self.jobs.get_mut(&parent) {
                parent_job.record.children.push(id);
                let parent_state = parent_job.record.state;
                let parent_result = parent_job.record.result.clone();
                if let Some((child, change, placement)) =
                    self.release(id, parent, parent_state, &parent_result, now)
                {
                    self.transition(child, change, placement);
                }
            }
        }
        id
    }

    fn fetch(&mut self, request: &FetchRequest<'_>) -> Vec<FetchedJob> {
        let mut fetched = Vec::with_capacity(request.limit.min(self.jobs.len()));
        // One copy of the server's id per fetch, shared by its jobs' leases and entries.
        let server: Arc<str> = Arc::from(request.server_id);
        for queue in request.queues {
            while fetched.len() < request.limit {
                let next = self.queues.get_mut(queue).and_then(BTreeMap::pop_first);
                let Some((_, id)) = next else {
                    break;
                };
                let Some(job) = self.jobs.get(&id) else {
                    continue;
                };
                let record = &job.record;
                let data = StateData {
                    attempt: Some(record.retry_count + 1),
                    ..StateData::default()
                };
                fetched.push(FetchedJob {
                    id,
                    name: job.name.clone(),
                    queue: job.queue.clone(),
                    args: job.args.clone(),
                    retry_count: record.retry_count,
                    created_at: record.created_at,
                    enqueued_at: job.enqueued_at,
                    parent: record.parent,
                    parent_result: job.parent_result.clone(),
                });
                let mut change =
                    Change::new(JobState::Processing, request.now, None).with_data(data);
                change.server = Some(server.clone());
                self.transition(id, change, Placement::Original);
                if let Some(job) = self.jobs.get_mut(&id) {
                    job.lease_until = Some(request.lease_until);
                }
            }
        }
        fetched
    }
}

/// The change for a success. The usual one (the data of a worker's success, on the server that
/// holds the lease) is kept as a compact history entry sharing the server's id; any other
/// data is kept whole.
fn succeeded(at: DateTime<Utc>, data: &StateData, holder: Arc<str>) -> Change {
    let change = Change::new(JobState::Succeeded, at, None);
    match data {
        StateData {
            server: Some(server),
            attempt,
            duration_ms,
            latency_ms,
            result,
            error: None,
            run_at: None,
            parent: None,
            queue: None,
            occurrence: None,
        } if **server == *holder => {
            let mut change = change.with_data(StateData {
                attempt: *attempt,
                duration_ms: *duration_ms,
                latency_ms: *latency_ms,
                result: result.clone(),
                ..StateData::default()
            });
            change.server = Some(holder);
            change
        }
        _ => change.with_data(data.clone()),
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

    fn wake(&self) {
        self.inner.work.notify_waiters();
        self.inner.work.notify_one();
    }
}

fn matches_query(job: &StoredJob, query: &JobQuery) -> bool {
    let record = &job.record;
    let contains = |haystack: &str, needle: &Option<String>| {
        needle
            .as_deref()
            .is_none_or(|needle| haystack.to_lowercase().contains(&needle.to_lowercase()))
    };
    query.state.is_none_or(|state| record.state == state)
        && query
            .queue
            .as_deref()
            .is_none_or(|queue| &*job.queue == queue)
        && contains(&job.name, &query.name_contains)
        && contains(&job.args, &query.args_contains)
        && (!query.retries_only || record.is_retry())
}

fn with_last_state(state: &State, mut job: RecurringJob) -> RecurringJob {
    job.last_job_state = job
        .last_job_id
        .and_then(|id| state.jobs.get(&id))
        .map(|last| last.record.state);
    job
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn enqueue(&self, jobs: Vec<NewJob>, now: DateTime<Utc>) -> Result<Vec<JobId>> {
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
                .map(|job| state.insert(job, now))
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
        let mut woke = false;
        {
            let mut state = self.lock();
            for completion in completions {
                let holder = state
                    .jobs
                    .get(&completion.id)
                    .filter(|job| job.record.state == JobState::Processing)
                    .and_then(|job| job.server.clone())
                    .filter(|server| *server == completion.server_id);
                let Some(holder) = holder else {
                    continue;
                };
                let at = completion.at;
                let outcome = &completion.outcome;
                let to = completion.state();
                let change = match outcome {
                    Outcome::Succeeded { data } => succeeded(at, data, holder),
                    _ => Change::new(to, at, outcome.reason().map(str::to_owned))
                        .with_data(outcome.data().into_owned()),
                };
                // A shutdown's requeue, or a retry due at once, goes back to the job's place
                // in its queue.
                let placement = if to == JobState::Enqueued {
                    woke = true;
                    Placement::Original
                } else {
                    Placement::Tail
                };
                if outcome.failed_attempt() {
                    if let Ok(job) = state.job_mut(completion.id) {
                        job.record.retry_count += 1;
                    }
                    hour_counts(&mut state.stats, at).1 += 1;
                }
                state.transition(completion.id, change, placement);
            }
        }
        if woke {
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
            match state.jobs.get_mut(id) {
                Some(job)
                    if job.record.state == JobState::Processing
                        && job.server.as_deref() == Some(server_id) =>
                {
                    job.lease_until = Some(lease_until);
                }
                _ => lost.push(*id),
            }
        }
        Ok(lost)
    }

    async fn delete(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        let mut state = self.lock();
        if state.job_mut(id)?.record.state == JobState::Deleted {
            return Ok(false);
        }
        state.transition(
            id,
            Change::new(JobState::Deleted, now, reason.to_owned()),
            Placement::Tail,
        );
        Ok(true)
    }

    async fn requeue(&self, id: JobId, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        {
            let mut state = self.lock();
            let job = state.job_mut(id)?;
            if job.record.state == JobState::Enqueued {
                return Ok(false);
            }
            let data = StateData {
                queue: Some(job.queue.to_string()),
                ..StateData::default()
            };
            state.transition(
                id,
                Change::new(JobState::Enqueued, now, reason.to_owned()).with_data(data),
                Placement::Tail,
            );
            state.rearm(id, now);
        }
        self.wake();
        Ok(true)
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        let state = self.lock();
        Ok(state.jobs.get(&id).map(|job| job.record(&state.jobs, true)))
    }

    async fn wait_for_work(&self, max_wait: Duration) {
        let _ = tokio::time::timeout(max_wait, self.inner.work.notified()).await;
    }

    async fn promote_scheduled(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        let promoted = {
            let mut state = self.lock();
            let due: Vec<JobId> = state
                .scheduled
                .iter()
                .take_while(|(run_at, _)| *run_at <= At::from(now))
                .take(limit)
                .map(|(_, id)| *id)
                .collect();
            for id in &due {
                let queue = state.jobs.get(id).map(|job| job.queue.to_string());
                let data = StateData {
                    queue,
                    ..StateData::default()
                };
                state.transition(
                    *id,
                    Change::new(JobState::Enqueued, now, "scheduled time reached".to_owned())
                        .with_data(data),
                    Placement::Tail,
                );
            }
            due.len()
        };
        if promoted > 0 {
            self.wake();
        }
        Ok(promoted)
    }

    async fn rescue_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<usize> {
        let rescued = {
            let mut state = self.lock();
            let expired: Vec<(JobId, String)> = state
                .processing
                .iter()
                .filter_map(|id| {
                    let job = state.jobs.get(id)?;
                    let lapsed = job.lease_until.is_none_or(|until| until < now);
                    lapsed.then(|| (*id, job.server.as_deref().unwrap_or_default().to_owned()))
                })
                .take(limit)
                .collect();
            for (id, server) in &expired {
                let reason = format!("lease expired: server {server} stopped responding");
                state.transition(
                    *id,
                    Change::new(JobState::Enqueued, now, reason),
                    Placement::Original,
                );
            }
            expired.len()
        };
        if rescued > 0 {
            self.wake();
        }
        Ok(rescued)
    }

    async fn prune(&self, request: PruneRequest) -> Result<usize> {
        let mut state = self.lock();
        let finished_before = At::from(request.finished_before);
        let mut doomed: Vec<(At, JobId)> = state
            .finished
            .iter()
            .take_while(|(at, _)| *at < finished_before)
            .take(request.limit)
            .copied()
            .collect();
        if let Some(failed_before) = request.failed_before.map(At::from) {
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
            state.unindex(*id);
            state.jobs.remove(id);
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
            *counts.by_state.entry(job.record.state).or_default() += 1;
            if job.record.is_retry() {
                counts.retries += 1;
            }
        }
        for (queue, ids) in &state.queues {
            if !ids.is_empty() {
                counts
                    .enqueued_by_queue
                    .insert(queue.clone(), ids.len() as u64);
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
            .filter(|job| matches_query(job, &query))
            .collect();
        matching.sort_by(|a, b| {
            let (a, b) = (&a.record, &b.record);
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
                .map(|job| job.record(&state.jobs, false))
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
            let (succeeded, failed) = state
                .stats
                .range(at..end)
                .fold((0, 0), |(s, f), (_, (ds, df))| (s + ds, f + df));
            points.push(StatPoint {
                at,
                succeeded,
                failed,
            });
            at = end;
        }
        Ok(points)
    }
}
