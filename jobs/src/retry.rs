//! When a failed job is tried again: [`RetryPolicy`], Hangfire's formula by default.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::job::JobError;
use crate::registry::Registry;

/// Decides how many retries a failed job gets and how long each waits.
///
/// A server has one (default [`HangfireBackoff`]); `Server::builder(..).job_retry_policy(name, p)`
/// replaces it for one job. `#[job(retries = N)]` overrides the count and
/// `#[job(retry_delays = [..])]` the delays of a job, over whichever of the two it gets.
///
/// A policy that panics fails the job it was asked about (state Failed, the reason says the
/// policy panicked; the attempt's error is kept) instead of retrying it, and the worker goes on.
pub trait RetryPolicy: Debug + Send + Sync + 'static {
    /// Retries after the first attempt.
    fn retries(&self) -> u32;
    /// The delay before retry number `retry` (1 for the first retry), after `error`.
    fn delay(&self, retry: u32, error: &JobError) -> Duration;
}

/// Hangfire's schedule: 10 retries, retry `n` waits `(n-1)^4 + 15 + rand(0..30) * n` seconds
/// (15–44 s for the first, about 1.9 h for the tenth; 4.3–4.7 h in all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HangfireBackoff {
    /// Retries after the first attempt (default 10).
    pub retries: u32,
}

impl Default for HangfireBackoff {
    fn default() -> Self {
        HangfireBackoff { retries: 10 }
    }
}

impl HangfireBackoff {
    /// The delay before retry `retry` with the random part `jitter` (0..30).
    pub fn delay_with(retry: u32, jitter: u32) -> Duration {
        let n = u64::from(retry.max(1));
        let seconds = (n - 1).saturating_pow(4) + 15 + u64::from(jitter) * n;
        Duration::from_secs(seconds)
    }
}

impl RetryPolicy for HangfireBackoff {
    fn retries(&self) -> u32 {
        self.retries
    }

    fn delay(&self, retry: u32, _error: &JobError) -> Duration {
        HangfireBackoff::delay_with(retry, rand::rng().random_range(0..30))
    }
}

/// Fixed delays in seconds: retry `n` waits the `n`-th, the last one repeats (Hangfire's
/// `DelaysInSeconds`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedDelays {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Delays in seconds; empty means no wait.
    pub delays: Vec<u64>,
}

impl RetryPolicy for FixedDelays {
    fn retries(&self) -> u32 {
        self.retries
    }

    fn delay(&self, retry: u32, _error: &JobError) -> Duration {
        Duration::from_secs(fixed_delay(&self.delays, retry))
    }
}

fn fixed_delay(delays: &[u64], retry: u32) -> u64 {
    let index = (retry.max(1) as usize - 1).min(delays.len().saturating_sub(1));
    delays.get(index).copied().unwrap_or(0)
}

/// A job's own `#[job(retries = N, retry_delays = [..])]` over the policy it would get
/// otherwise.
#[derive(Debug)]
struct WithJobOptions {
    base: Arc<dyn RetryPolicy>,
    retries: Option<u32>,
    delays: &'static [u64],
}

impl RetryPolicy for WithJobOptions {
    fn retries(&self) -> u32 {
        self.retries.unwrap_or_else(|| self.base.retries())
    }

    fn delay(&self, retry: u32, error: &JobError) -> Duration {
        if self.delays.is_empty() {
            self.base.delay(retry, error)
        } else {
            Duration::from_secs(fixed_delay(self.delays, retry))
        }
    }
}

/// The retry policy of every job a server runs, composed once when it is built: the job's
/// `job_retry_policy` or the server's, under the job's own attribute options.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicies {
    default: Arc<dyn RetryPolicy>,
    by_job: HashMap<String, Arc<dyn RetryPolicy>>,
}

impl RetryPolicies {
    pub(crate) fn new(
        default: Arc<dyn RetryPolicy>,
        mut by_job: HashMap<String, Arc<dyn RetryPolicy>>,
        registry: &Registry,
    ) -> Self {
        for entry in registry.entries() {
            let options = &entry.options;
            if options.retries.is_none() && options.retry_delays.is_empty() {
                continue;
            }
            let base = by_job.get(entry.name).unwrap_or(&default).clone();
            let composed = WithJobOptions {
                base,
                retries: options.retries,
                delays: options.retry_delays,
            };
            by_job.insert(entry.name.to_owned(), Arc::new(composed));
        }
        RetryPolicies { default, by_job }
    }

    /// The policy of the job registered as `name`.
    pub(crate) fn of(&self, name: &str) -> &dyn RetryPolicy {
        self.by_job.get(name).unwrap_or(&self.default).as_ref()
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryDecision {
    /// Retry number `retry` of `of`, after `delay`.
    Retry {
        retry: u32,
        of: u32,
        delay: Duration,
    },
    /// No retries left (`of` were allowed).
    Exhausted { of: u32 },
}

/// Decides the retry after failed attempt `attempt` (1-based) by the job's policy.
pub(crate) fn decide(policy: &dyn RetryPolicy, attempt: u32, error: &JobError) -> RetryDecision {
    let of = policy.retries();
    let retry = attempt;
    if retry > of {
        return RetryDecision::Exhausted { of };
    }
    let delay = policy.delay(retry, error);
    RetryDecision::Retry { retry, of, delay }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hangfire_formula_bounds() {
        let policy = HangfireBackoff::default();
        let error = JobError::new("e", "boom");
        for (retry, low, high) in [
            (1, 15, 44),
            (2, 16, 74),
            (3, 31, 118),
            (5, 271, 416),
            (10, 6576, 6866),
        ] {
            assert_eq!(HangfireBackoff::delay_with(retry, 0).as_secs(), low);
            assert_eq!(HangfireBackoff::delay_with(retry, 29).as_secs(), high);
            for _ in 0..200 {
                let delay = policy.delay(retry, &error).as_secs();
                assert!((low..=high).contains(&delay), "retry {retry}: {delay}s");
            }
        }
    }

    fn never_runs(
        _: crate::__private::Invocation,
    ) -> futures::future::BoxFuture<'static, crate::job::RunResult> {
        Box::pin(async { Ok(None) })
    }

    const fn entry(
        name: &'static str,
        options: crate::job::JobOptions,
    ) -> crate::registry::JobEntry {
        crate::registry::JobEntry {
            name,
            aliases: &[],
            queue: "default",
            options,
            services: &[],
            run: never_runs,
            file: file!(),
            line: line!(),
        }
    }

    static OWN_COUNT: crate::registry::JobEntry = entry(
        "own_count",
        crate::job::JobOptions {
            retries: Some(2),
            ..crate::job::JobOptions::DEFAULT
        },
    );
    static OWN_DELAYS: crate::registry::JobEntry = entry(
        "own_delays",
        crate::job::JobOptions {
            retry_delays: &[7],
            ..crate::job::JobOptions::DEFAULT
        },
    );
    static PLAIN: crate::registry::JobEntry = entry("plain", crate::job::JobOptions::DEFAULT);

    /// Each job's policy is composed once: its `job_retry_policy` or the server's, under its
    /// own attribute options; a job with neither gets the server's as it is.
    #[test]
    fn each_job_gets_one_composed_policy() {
        let registry = Registry::from_entries([&OWN_COUNT, &OWN_DELAYS, &PLAIN]).expect("registry");
        let server: Arc<dyn RetryPolicy> = Arc::new(FixedDelays {
            retries: 5,
            delays: vec![60],
        });
        let per_job: Arc<dyn RetryPolicy> = Arc::new(FixedDelays {
            retries: 9,
            delays: vec![1],
        });
        let policies = RetryPolicies::new(
            server,
            HashMap::from([("own_count".to_owned(), per_job)]),
            &registry,
        );
        let error = JobError::new("e", "boom");
        let of = |name: &str| {
            let policy = policies.of(name);
            (policy.retries(), policy.delay(1, &error).as_secs())
        };
        assert_eq!(
            of("own_count"),
            (2, 1),
            "its count over its job_retry_policy"
        );
        assert_eq!(
            of("own_delays"),
            (5, 7),
            "its delays over the server's policy"
        );
        assert_eq!(of("plain"), (5, 60));
        assert_eq!(of("not_registered"), (5, 60));
    }

    #[test]
    fn job_options_override_policy() {
        let policy = WithJobOptions {
            base: Arc::new(HangfireBackoff::default()),
            retries: Some(3),
            delays: &[1, 5],
        };
        let error = JobError::new("e", "boom");
        let delays: Vec<_> = (1..=4)
            .map(|attempt| decide(&policy, attempt, &error))
            .collect();
        assert_eq!(
            delays,
            vec![
                RetryDecision::Retry {
                    retry: 1,
                    of: 3,
                    delay: Duration::from_secs(1)
                },
                RetryDecision::Retry {
                    retry: 2,
                    of: 3,
                    delay: Duration::from_secs(5)
                },
                RetryDecision::Retry {
                    retry: 3,
                    of: 3,
                    delay: Duration::from_secs(5)
                },
                RetryDecision::Exhausted { of: 3 },
            ]
        );
        assert_eq!(
            decide(&HangfireBackoff::default(), 11, &error),
            RetryDecision::Exhausted { of: 10 }
        );
    }
}
