//! When a failed job is tried again: [`RetryPolicy`], Hangfire's formula by default.

use std::fmt::Debug;
use std::time::Duration;

use rand::Rng;

use crate::job::{JobError, JobOptions};

/// Decides how many retries a failed job gets and how long each waits.
///
/// A server has one (default [`HangfireBackoff`]); `Server::builder(..).job_retry_policy(name, p)`
/// replaces it for one job. `#[job(retries = N)]` overrides the count and
/// `#[job(retry_delays = [..])]` the delays of a job.
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

/// Decides the retry after failed attempt `attempt` (1-based) from the job's options and policy.
pub(crate) fn decide(
    policy: &dyn RetryPolicy,
    options: &JobOptions,
    attempt: u32,
    error: &JobError,
) -> RetryDecision {
    let of = options.retries.unwrap_or_else(|| policy.retries());
    let retry = attempt;
    if retry > of {
        return RetryDecision::Exhausted { of };
    }
    let delay = if options.retry_delays.is_empty() {
        policy.delay(retry, error)
    } else {
        Duration::from_secs(fixed_delay(options.retry_delays, retry))
    };
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

    #[test]
    fn job_options_override_policy() {
        let policy = HangfireBackoff::default();
        let error = JobError::new("e", "boom");
        let options = JobOptions {
            retries: Some(3),
            retry_delays: &[1, 5],
            ..JobOptions::DEFAULT
        };
        let delays: Vec<_> = (1..=4)
            .map(|attempt| decide(&policy, &options, attempt, &error))
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
            decide(&policy, &JobOptions::DEFAULT, 11, &error),
            RetryDecision::Exhausted { of: 10 }
        );
    }
}
