//! Flow control: the options of one enqueue ([`EnqueueOptions`]), unique jobs
//! ([`Uniqueness`]), and the limits that decide whether a job may start now ([`QueueLimits`],
//! [`Rate`], [`JobLimits`], mutexes), with [`Admission`], the one model of those decisions
//! that [`MemoryStorage`](crate::MemoryStorage) applies and PostgreSQL mirrors in SQL.
//!
//! Decisions, documented where users meet them:
//! - limits are counted from the jobs themselves: the running count of a queue, a job kind or
//!   a mutex key is its number of Processing jobs, so a crashed holder's slot comes back when
//!   its lease lapses and the job is rescued;
//! - a rate counts the jobs started in fixed windows of its period, aligned to the Unix epoch
//!   (Sidekiq Enterprise's window limiter): at most `count` starts per window;
//! - a job that cannot start is left Enqueued at its place, and the fetch takes the next
//!   eligible job behind it; the first time it is passed over for a given reason, its history
//!   records an Enqueued entry saying why it waits.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::job::JobId;

/// How one enqueue differs from the job's `#[job(...)]` defaults: its queue, its priority, when
/// it runs, its unique key.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> jobs::Result<()> {
/// use std::time::Duration;
/// use jobs::prelude::*;
/// use jobs::EnqueueOptions;
///
/// #[job(unique)]
/// async fn send_digest(user_id: i64) {}
///
/// let client = Client::new(MemoryStorage::new());
/// let opts = EnqueueOptions::new()
///     .queue("critical")
///     .priority(0)
///     .delay(Duration::from_secs(30))
///     .unique_key("digest:7");
/// let first = SendDigest::new(7).enqueue_with(&client, opts.clone()).await?;
/// let again = SendDigest::new(7).enqueue_with(&client, opts).await?;
/// assert!(!first.duplicate);
/// assert!(again.duplicate);
/// assert_eq!(again.id, first.id);
/// assert_eq!(client.job(first.id).await?.state, JobState::Scheduled);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnqueueOptions {
    pub(crate) queue: Option<String>,
    pub(crate) priority: Option<u8>,
    pub(crate) when: Option<When>,
    pub(crate) unique_key: Option<String>,
}

/// When an enqueued job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    Delay(Duration),
    At(DateTime<Utc>),
}

impl EnqueueOptions {
    /// The job's defaults: its queue and priority, at once, unique only if the job says so.
    pub fn new() -> Self {
        EnqueueOptions::default()
    }

    /// Enqueues to `queue` instead of the job's (checked by the rule of
    /// [`validate_queue`](crate::validate_queue) when enqueued).
    #[must_use]
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Its place within its queue: lower first (0 highest), FIFO among equals.
    #[must_use]
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Runs it after `delay` (Scheduled until then).
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.when = Some(When::Delay(delay));
        self
    }

    /// Runs it at `at` (Scheduled until then).
    #[must_use]
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.when = Some(When::At(at));
        self
    }

    /// Makes the job unique by `key` instead of by its name and arguments: no job is created
    /// while another with this key is Enqueued, Scheduled, Awaiting or Processing (or, for a
    /// job with `unique_for`, was created within that period). The key is at most
    /// [`MAX_UNIQUE_KEY_BYTES`] bytes. A job without `#[job(unique)]` becomes unique with it.
    #[must_use]
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }
}

/// What an enqueue did: the job's id, and whether it was a duplicate of a unique job (the id
/// is then the existing job's, and nothing was created).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Enqueued {
    /// The created job, or the existing one for a duplicate.
    pub id: JobId,
    /// True when a job with the same unique key existed and nothing was created.
    pub duplicate: bool,
}

impl Enqueued {
    /// A job that was created.
    pub fn created(id: JobId) -> Self {
        Enqueued {
            id,
            duplicate: false,
        }
    }
}

/// How a job type is unique (`#[job(unique)]`, `#[job(unique_for = "10m")]`).
///
/// One job at most holds a key among the non-final states (Enqueued, Scheduled, Awaiting,
/// Processing). A job that comes back to one of them while another job holds its key (requeued
/// by hand, or re-armed with a requeued parent) comes back without its key: it runs, it is
/// not refused, and its history entry says which job holds the key
/// ([`Uniqueness::released_note`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Unique {
    /// With `unique_for`: a job with the same key created within this period is a duplicate,
    /// whatever its state. Without: only a job in a non-final state is.
    pub window: Option<Duration>,
}

/// The longest unique key, in bytes. A key given with [`EnqueueOptions::unique_key`] past it
/// is refused; a key made from a job's name and arguments past it is shortened to the name
/// and a SHA-256 digest of the arguments.
pub const MAX_UNIQUE_KEY_BYTES: usize = 512;

/// The unique key of one new job and the period it covers, as storages receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uniqueness {
    /// The key: the one given, or `name:arguments` (see [`Uniqueness::of_job`]).
    pub key: String,
    /// See [`Unique::window`].
    pub window: Option<Duration>,
}

impl Uniqueness {
    /// The key of a job with no explicit key: its name, a colon and its JSON arguments, or the
    /// name and `sha256:` with the arguments' digest when that would pass
    /// [`MAX_UNIQUE_KEY_BYTES`].
    pub fn of_job(name: &str, args: &str, window: Option<Duration>) -> Uniqueness {
        let key = if name.len() + 1 + args.len() <= MAX_UNIQUE_KEY_BYTES {
            format!("{name}:{args}")
        } else {
            let digest = Sha256::digest(args.as_bytes());
            let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
            format!("{name}:sha256:{hex}")
        };
        Uniqueness { key, window }
    }

    /// An explicit key, refused when empty or longer than [`MAX_UNIQUE_KEY_BYTES`].
    pub fn explicit(key: String, window: Option<Duration>) -> Result<Uniqueness> {
        if key.is_empty() {
            return Err(Error::InvalidUniqueKey(
                "a unique key must not be empty".into(),
            ));
        }
        if key.len() > MAX_UNIQUE_KEY_BYTES {
            return Err(Error::InvalidUniqueKey(format!(
                "a unique key is at most {MAX_UNIQUE_KEY_BYTES} bytes; this one has {}",
                key.len()
            )));
        }
        Ok(Uniqueness { key, window })
    }

    /// What a job's history entry adds (after `; `) when the job comes back to a non-final
    /// state without its unique `key`, because job `holder` holds it (see [`Unique`]).
    pub fn released_note(key: &str, holder: JobId) -> String {
        format!("its unique key `{key}` is held by job {holder}, so it runs without it")
    }

    /// Whether an existing job with this key, created at `created_at` and now in a state for
    /// which `active` says whether it is non-final, makes a new one a duplicate at `now`.
    pub fn blocks(&self, active: bool, created_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        active
            || self
                .window
                .is_some_and(|window| crate::clock::add(created_at, window) > now)
    }
}

/// A rate limit: at most `count` jobs started per `period`.
///
/// Starts are counted in fixed windows of `period` aligned to the Unix epoch (as Sidekiq
/// Enterprise's window limiter does): each window admits `count` starts, so across a window
/// boundary up to twice `count` can start within one `period`. A partner API that counts a
/// sliding window is kept under its limit by giving half of it here.
///
/// Parsed from `"count/period"`, the period in [`humantime`] units: `"100/1m"`, `"5/1s"`,
/// `"1000/1h"`.
///
/// ```
/// use std::time::Duration;
/// use jobs::Rate;
///
/// let rate: Rate = "100/1m".parse().unwrap();
/// assert_eq!(rate, Rate::new(100, Duration::from_secs(60)).unwrap());
/// assert_eq!(
///     "100/0s".parse::<Rate>().unwrap_err().to_string(),
///     "invalid rate `100/0s`: the period must be at least 1ms"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rate {
    /// Jobs admitted per window.
    pub count: u32,
    /// The window's length (at least a millisecond, whole milliseconds).
    pub period: Duration,
}

impl Rate {
    /// A rate of `count` starts per `period`; refused when `count` is zero or `period` is
    /// shorter than a millisecond.
    pub fn new(count: u32, period: Duration) -> Result<Rate> {
        Rate::check(count, period)
            .map_err(|why| Error::InvalidLimit(format!("invalid rate: {why}")))
    }

    /// A rate built by `#[job(rate = "...")]`, whose text the macro checked.
    #[doc(hidden)]
    pub const fn checked(count: u32, period_ms: u64) -> Rate {
        Rate {
            count,
            period: Duration::from_millis(period_ms),
        }
    }

    fn check(count: u32, period: Duration) -> std::result::Result<Rate, String> {
        if count == 0 {
            return Err("the count must be at least 1".into());
        }
        if period < Duration::from_millis(1) {
            return Err("the period must be at least 1ms".into());
        }
        Ok(Rate {
            count,
            period: Duration::from_millis(u64::try_from(period.as_millis()).unwrap_or(u64::MAX)),
        })
    }

    /// The period in whole milliseconds.
    pub fn period_ms(&self) -> i64 {
        i64::try_from(self.period.as_millis()).unwrap_or(i64::MAX)
    }

    /// The number of the window `at` falls in.
    pub fn window(&self, at: DateTime<Utc>) -> i64 {
        at.timestamp_millis().div_euclid(self.period_ms().max(1))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.count,
            humantime::format_duration(self.period)
        )
    }
}

impl FromStr for Rate {
    type Err = Error;
    fn from_str(text: &str) -> Result<Rate> {
        let invalid = |why: &str| Error::InvalidLimit(format!("invalid rate `{text}`: {why}"));
        let (count, period) = text
            .split_once('/')
            .ok_or_else(|| invalid("expected `count/period`, like `100/1m`"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| invalid("the count must be a whole number"))?;
        let period = humantime::parse_duration(period.trim())
            .map_err(|error| invalid(&format!("the period: {error}")))?;
        Rate::check(count, period).map_err(|why| invalid(&why))
    }
}

/// The limits of one queue, shared by every server: at most `concurrency` of its jobs
/// Processing at once, at most `rate` started per window. Set with
/// [`Client::set_queue_limits`](crate::Client::set_queue_limits) or on the dashboard's Queues
/// page; an empty `QueueLimits` removes them.
///
/// A storage may count a server's jobs by the room it reserves rather than one by one
/// ([`FetchRequest::capacity`](crate::storage::FetchRequest::capacity)): PostgreSQL lets a
/// server whose queues' limits have room for all it can hold at once (workers and buffer)
/// reserve that room, and counts it as running until the server hands it back (when it stops,
/// when the settings change, or when the limit no longer has room for it). So a limit near
/// the servers' capacity may leave some of its slots unused for a moment, never more jobs
/// running than it allows; and a rate's starts reserved by a server and not used by the end of
/// their window lapse with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueLimits {
    /// At most this many Processing at once.
    pub concurrency: Option<u32>,
    /// At most this many started per window.
    pub rate: Option<Rate>,
}

impl QueueLimits {
    /// No limits.
    pub fn new() -> Self {
        QueueLimits::default()
    }

    /// At most `limit` jobs of the queue Processing at once, across every server.
    #[must_use]
    pub fn concurrency(mut self, limit: u32) -> Self {
        self.concurrency = Some(limit);
        self
    }

    /// At most `count` jobs of the queue started per `period` (see [`Rate`]). A zero count or
    /// period is refused when the limits are set.
    #[must_use]
    pub fn rate(mut self, count: u32, period: Duration) -> Self {
        self.rate = Some(Rate { count, period });
        self
    }

    /// Checks each limit: a concurrency of at least 1, a valid [`Rate`].
    pub fn validate(self) -> Result<QueueLimits> {
        if self.concurrency == Some(0) {
            return Err(Error::InvalidLimit(
                "a concurrency limit must be at least 1".into(),
            ));
        }
        let rate = self
            .rate
            .map(|rate| Rate::new(rate.count, rate.period))
            .transpose()?;
        Ok(QueueLimits { rate, ..self })
    }

    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        self.concurrency.is_none() && self.rate.is_none()
    }
}

/// "concurrency 10, rate 50/1s", or "no limits".
impl fmt::Display for QueueLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.concurrency, self.rate) {
            (None, None) => f.write_str("no limits"),
            (Some(limit), None) => write!(f, "concurrency {limit}"),
            (None, Some(rate)) => write!(f, "rate {rate}"),
            (Some(limit), Some(rate)) => write!(f, "concurrency {limit}, rate {rate}"),
        }
    }
}

/// A queue's stored flow settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSettings {
    /// The queue.
    pub queue: String,
    /// A paused queue starts no job; its jobs stay Enqueued.
    pub paused: bool,
    /// Its limits.
    pub limits: QueueLimits,
}

impl QueueSettings {
    /// Whether a fetch from this queue must go through flow control.
    pub fn restricts(&self) -> bool {
        self.paused || !self.limits.is_empty()
    }
}

/// The limits of one job kind, from `#[job(concurrency = N, rate = "...")]`. Each server
/// stores those of the jobs it registers when it starts (the last one started wins), so
/// every server applies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLimits {
    /// The job's name.
    pub name: String,
    /// At most this many of its jobs Processing at once, across every server.
    pub concurrency: Option<u32>,
    /// At most this many started per window.
    pub rate: Option<Rate>,
}

/// A queue as the dashboard's Queues page shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueInfo {
    /// Its name.
    pub queue: String,
    /// Its jobs per state (Enqueued, Scheduled, Awaiting, Processing and Failed; the final
    /// states are left out).
    pub counts: BTreeMap<crate::JobState, u64>,
    /// Its stored settings.
    pub settings: QueueSettings,
}

/// Why a job that could have started waits, in its history's words (PostgreSQL's
/// `fetch_flow` writes the same texts; the conformance cases hold both to them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitReason {
    /// Another job holds the mutex key.
    Mutex(String),
    /// The job kind is at its concurrency limit.
    JobConcurrency(String, u32),
    /// The job kind used its rate window.
    JobRate(String, Rate),
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::Mutex(key) => write!(f, "waiting: mutex `{key}` is held by another job"),
            WaitReason::JobConcurrency(name, limit) => {
                write!(
                    f,
                    "waiting: `{name}` is at its concurrency limit of {limit}"
                )
            }
            WaitReason::JobRate(name, _) => write!(f, "waiting: `{name}` reached its rate limit"),
        }
    }
}

/// A flow-controlled fetch's budgets: what each queue, job kind and mutex key may still start.
/// Built from the running counts and rate windows of the moment, then asked job by job in the
/// fetch's order; each admitted job takes its share.
#[derive(Debug, Default)]
pub struct Admission {
    queues: BTreeMap<String, Option<u64>>,
    kinds: BTreeMap<String, Budget>,
    mutexes: std::collections::BTreeSet<String>,
}

/// What a job kind may still start, and which limit stops it.
#[derive(Debug, Clone)]
struct Budget {
    concurrency: Option<(u64, u32)>,
    rate: Option<(u64, Rate)>,
}

/// How many Enqueued jobs of one queue a flow-controlled fetch of `limit` looks at, at most:
/// enough to pass over jobs that must wait (a held mutex, a kind at its limit) without reading
/// a whole backlog. Every storage uses this bound (PostgreSQL passes it to `fetch_flow`).
pub fn scan_bound(limit: usize) -> usize {
    limit.saturating_mul(10).saturating_add(100)
}

/// The starts a rate still allows in the window of `now`, given the stored window and count.
pub(crate) fn rate_left(rate: &Rate, stored: Option<(i64, u32)>, now: DateTime<Utc>) -> u64 {
    let used = match stored {
        Some((window, count)) if window == rate.window(now) => u64::from(count),
        _ => 0,
    };
    u64::from(rate.count).saturating_sub(used)
}

impl Admission {
    /// Sets what a queue may start (`None`: unlimited; a paused queue is never asked).
    pub fn queue(&mut self, queue: &str, left: Option<u64>) {
        self.queues.insert(queue.to_owned(), left);
    }

    /// What the queue may still start (`None`: unlimited).
    pub fn queue_left(&self, queue: &str) -> Option<u64> {
        self.queues.get(queue).copied().flatten()
    }

    /// Sets a job kind's limits: its running count and the rate's starts left.
    pub fn kind(&mut self, limits: &JobLimits, running: u64, rate_left: Option<u64>) {
        self.kinds.insert(
            limits.name.clone(),
            Budget {
                concurrency: limits
                    .concurrency
                    .map(|limit| (u64::from(limit).saturating_sub(running), limit)),
                rate: limits.rate.zip(rate_left).map(|(rate, left)| (left, rate)),
            },
        );
    }

    /// Marks a mutex key held (a Processing job has it).
    pub fn hold(&mut self, key: &str) {
        self.mutexes.insert(key.to_owned());
    }

    /// Asks for one job of `queue` and kind `name` holding `mutex`: admitted (its share taken)
    /// or the reason it waits. `Err(None)`: its queue can start nothing more (stop scanning it).
    pub fn admit(
        &mut self,
        queue: &str,
        name: &str,
        mutex: Option<&str>,
    ) -> std::result::Result<(), Option<WaitReason>> {
        if self.queue_left(queue) == Some(0) {
            return Err(None);
        }
        if let Some(key) = mutex {
            if self.mutexes.contains(key) {
                return Err(Some(WaitReason::Mutex(key.to_owned())));
            }
        }
        if let Some(budget) = self.kinds.get(name) {
            if let Some((0, limit)) = budget.concurrency {
                return Err(Some(WaitReason::JobConcurrency(name.to_owned(), limit)));
            }
            if let Some((0, rate)) = budget.rate {
                return Err(Some(WaitReason::JobRate(name.to_owned(), rate)));
            }
        }
        if let Some(Some(left)) = self.queues.get_mut(queue) {
            *left -= 1;
        }
        if let Some(budget) = self.kinds.get_mut(name) {
            if let Some((left, _)) = &mut budget.concurrency {
                *left -= 1;
            }
            if let Some((left, _)) = &mut budget.rate {
                *left -= 1;
            }
        }
        if let Some(key) = mutex {
            self.mutexes.insert(key.to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Rate;

    /// The table both crates that parse rates are tested against (`jobs-macros` checks
    /// `#[job(rate = "...")]` with it).
    const RATES: &str = include_str!("../tests/data/rates.txt");

    #[test]
    fn rates_follow_the_shared_table() {
        let mut cases = 0;
        for line in RATES.lines().filter(|line| !line.starts_with('#')) {
            let (text, expected) = line.split_once(" => ").expect("`text => expected`");
            let parsed = text
                .parse::<Rate>()
                .map(|rate| format!("{} {}", rate.count, rate.period_ms()));
            match expected {
                "error" => assert!(parsed.is_err(), "rate {text:?} gave {parsed:?}"),
                meaning => assert_eq!(parsed.ok().as_deref(), Some(meaning), "rate {text:?}"),
            }
            cases += 1;
        }
        assert!(cases >= 20, "the table has its cases");
    }
}
