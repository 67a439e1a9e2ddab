//! The queue shares this process's servers hold (migration 0012, `sql/shares.rs`): room
//! reserved under their queues' limits, which a server spends fetch by fetch without asking
//! the database, and when it must reserve again.
//!
//! A share covers a server's whole capacity (workers and buffer), so what the server runs
//! needs no counting here: it can never hold more than its capacity. Only a rate's starts are
//! counted, against those reserved for the current window.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use jobs::Rate;

/// How long a server whose queues had no room for a share fetches by the limited fetch before
/// it asks again (the interval at which servers read the queues' settings).
pub(crate) const DENIED_FOR: TimeDelta = TimeDelta::seconds(1);

/// A queue's rate starts reserved for one window: `rate.count` of them, in the window
/// numbered `window` of `rate.period`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tokens {
    pub(crate) queue: String,
    pub(crate) rate: Rate,
    pub(crate) window: i64,
}

/// What a server last learned about its shares.
#[derive(Debug, Clone)]
enum Standing {
    /// It holds a share of each of `queues`, reserved for `capacity`.
    Held {
        queues: Vec<String>,
        capacity: usize,
        renew_at: DateTime<Utc>,
        tokens: Vec<Tokens>,
    },
    /// One of `queues` had no room for `capacity` (or was paused).
    Denied {
        queues: Vec<String>,
        capacity: usize,
        until: DateTime<Utc>,
    },
}

/// How a server's next fetch goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Under its shares, at most this many jobs (the rate starts left).
    Shared(usize),
    /// By the limited fetch: its queues had no room for a share a moment ago.
    Limited,
    /// Reserve shares first: none held, or they are due for renewal, for other queues or
    /// capacity, or out of rate starts.
    Reserve,
}

/// Every server's standing, by server id.
#[derive(Debug, Default)]
pub(crate) struct Shares {
    servers: Mutex<HashMap<String, Standing>>,
    /// Whether any server holds shares (so the plain path asks no lock).
    any: AtomicBool,
}

fn same(held: &[String], queues: &[&str]) -> bool {
    held.len() == queues.len() && held.iter().zip(queues).all(|(a, b)| a == b)
}

impl Shares {
    fn servers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Standing>> {
        self.servers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How `server`'s fetch from `queues` (in order, each once) at `now` goes.
    pub(crate) fn plan(
        &self,
        server: &str,
        queues: &[&str],
        capacity: usize,
        now: DateTime<Utc>,
    ) -> Plan {
        match self.servers().get(server) {
            Some(Standing::Held {
                queues: held,
                capacity: reserved,
                renew_at,
                tokens,
            }) if same(held, queues) && *reserved == capacity && now < *renew_at => {
                let mut left = usize::MAX;
                for tokens in tokens {
                    if tokens.rate.window(now) != tokens.window || tokens.rate.count == 0 {
                        return Plan::Reserve;
                    }
                    left = left.min(usize::try_from(tokens.rate.count).unwrap_or(usize::MAX));
                }
                Plan::Shared(left)
            }
            Some(Standing::Denied {
                queues: denied,
                capacity: asked,
                until,
            }) if same(denied, queues) && *asked == capacity && now < *until => Plan::Limited,
            _ => Plan::Reserve,
        }
    }

    /// `server` reserved shares of `queues` at `now`, lasting until `until`; it renews them
    /// halfway.
    pub(crate) fn held(
        &self,
        server: &str,
        queues: &[&str],
        capacity: usize,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        tokens: Vec<Tokens>,
    ) {
        let renew_at = now.checked_add_signed((until - now) / 2).unwrap_or(now);
        self.servers().insert(
            server.to_owned(),
            Standing::Held {
                queues: queues.iter().map(|&queue| queue.to_owned()).collect(),
                capacity,
                renew_at,
                tokens,
            },
        );
        self.any.store(true, Ordering::Relaxed);
    }

    /// `server`'s queues had no room for a share at `now` (the database ended the shares it
    /// held of them).
    pub(crate) fn denied(
        &self,
        server: &str,
        queues: &[&str],
        capacity: usize,
        now: DateTime<Utc>,
    ) {
        let until = now.checked_add_signed(DENIED_FOR).unwrap_or(now);
        self.servers().insert(
            server.to_owned(),
            Standing::Denied {
                queues: queues.iter().map(|&queue| queue.to_owned()).collect(),
                capacity,
                until,
            },
        );
    }

    /// `server` started these jobs (their queues) under its shares.
    pub(crate) fn spent<'a>(&self, server: &str, queues: impl IntoIterator<Item = &'a str>) {
        let mut servers = self.servers();
        let Some(Standing::Held { tokens, .. }) = servers.get_mut(server) else {
            return;
        };
        if tokens.is_empty() {
            return;
        }
        for queue in queues {
            if let Some(tokens) = tokens.iter_mut().find(|tokens| tokens.queue == queue) {
                tokens.rate.count = tokens.rate.count.saturating_sub(1);
            }
        }
    }

    /// Forgets what `server` learned: its next fetch reserves again (after a fetch under its
    /// shares found nothing, which is also what it finds when its shares were ended).
    pub(crate) fn forget(&self, server: &str) {
        self.servers().remove(server);
    }

    /// Forgets every server's standing (a queue's settings changed, which ends its shares).
    pub(crate) fn forget_all(&self) {
        self.servers().clear();
    }

    /// Forgets `server`'s standing; whether it held shares then (the database's to end).
    pub(crate) fn take(&self, server: &str) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return false;
        }
        matches!(self.servers().remove(server), Some(Standing::Held { .. }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).expect("a time")
    }

    fn tokens(count: u32, window: i64) -> Tokens {
        Tokens {
            queue: "q".to_owned(),
            rate: Rate {
                count,
                period: Duration::from_secs(1),
            },
            window,
        }
    }

    #[test]
    fn a_server_reserves_first_then_fetches_under_its_shares_until_halfway() {
        let shares = Shares::default();
        assert_eq!(shares.plan("s", &["q"], 15, at(0)), Plan::Reserve);
        shares.held("s", &["q"], 15, at(0), at(10_000), Vec::new());
        assert_eq!(
            shares.plan("s", &["q"], 15, at(4_999)),
            Plan::Shared(usize::MAX)
        );
        assert_eq!(shares.plan("s", &["q"], 15, at(5_000)), Plan::Reserve);
        assert_eq!(shares.plan("s", &["q", "r"], 15, at(1)), Plan::Reserve);
        assert_eq!(shares.plan("s", &["q"], 20, at(1)), Plan::Reserve);
        assert_eq!(shares.plan("t", &["q"], 15, at(1)), Plan::Reserve);
    }

    #[test]
    fn rate_starts_are_spent_and_end_with_their_window() {
        let shares = Shares::default();
        shares.held("s", &["q"], 15, at(0), at(60_000), vec![tokens(2, 0)]);
        assert_eq!(shares.plan("s", &["q"], 15, at(10)), Plan::Shared(2));
        shares.spent("s", ["q"]);
        assert_eq!(shares.plan("s", &["q"], 15, at(10)), Plan::Shared(1));
        shares.spent("s", ["q", "q"]);
        assert_eq!(
            shares.plan("s", &["q"], 15, at(10)),
            Plan::Reserve,
            "none left"
        );
        shares.held("s", &["q"], 15, at(0), at(60_000), vec![tokens(2, 0)]);
        assert_eq!(
            shares.plan("s", &["q"], 15, at(1_000)),
            Plan::Reserve,
            "next window"
        );
    }

    #[test]
    fn a_denied_server_fetches_limited_for_a_while_and_a_taken_standing_is_gone() {
        let shares = Shares::default();
        shares.denied("s", &["q"], 15, at(0));
        assert_eq!(shares.plan("s", &["q"], 15, at(999)), Plan::Limited);
        assert_eq!(shares.plan("s", &["q"], 15, at(1_000)), Plan::Reserve);
        assert!(!shares.take("s"), "a denied server holds no share");
        shares.held("s", &["q"], 15, at(0), at(10_000), Vec::new());
        assert!(shares.take("s"));
        assert_eq!(shares.plan("s", &["q"], 15, at(1)), Plan::Reserve);
    }
}
