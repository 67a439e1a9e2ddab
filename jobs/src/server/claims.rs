//! Backpressure, as one idea: a server holds at most `workers + fetch_buffer` jobs claimed from
//! the storage and not yet finished. Each such job holds one claim: the producer takes claims
//! before it fetches (as many as are free, so a fetch asks for at most that many jobs), the job
//! carries its claim through its worker, and the completer gives it back once the job's outcome
//! is taken for storing; while more outcomes wait to be stored than the completer has room for,
//! it keeps their claims, and through them slows the fetching instead of piling up outcomes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One or more claims, held together (one permit of several units: taken and given back in one
/// step each, split off one per fetched job).
pub(crate) type Claim = OwnedSemaphorePermit;

/// The claims of one server.
#[derive(Debug, Clone)]
pub(crate) struct Claims {
    semaphore: Arc<Semaphore>,
    capacity: usize,
}

impl Claims {
    /// `capacity` claims, all free.
    pub(crate) fn new(capacity: usize) -> Self {
        Claims {
            semaphore: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    /// How many claims there are in all.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Waits for one free claim, then takes every claim free at that moment with it.
    pub(crate) async fn take(&self) -> Option<Claim> {
        let mut claims = self.semaphore.clone().acquire_owned().await.ok()?;
        self.take_free(&mut claims);
        Some(claims)
    }

    /// Waits up to `within` until `claims` hold at least `wanted`, then takes what is free.
    pub(crate) async fn wait_for(&self, claims: &mut Claim, wanted: usize, within: Duration) {
        let missing = wanted.saturating_sub(claims.num_permits());
        if missing == 0 {
            return;
        }
        let more = self
            .semaphore
            .clone()
            .acquire_many_owned(u32::try_from(missing).unwrap_or(u32::MAX));
        match tokio::time::timeout(within, more).await {
            Ok(Ok(more)) => claims.merge(more),
            // Waited long enough (a timed-out wait gives back what it had): take what is free.
            _ => self.take_free(claims),
        }
    }

    /// Adds every claim free right now to `claims`.
    fn take_free(&self, claims: &mut Claim) {
        let free = u32::try_from(self.semaphore.available_permits()).unwrap_or(u32::MAX);
        if free > 0 {
            if let Ok(more) = self.semaphore.clone().try_acquire_many_owned(free) {
                claims.merge(more);
            }
        }
    }
}

/// Adds `claim` (if any) to the claims in `into`.
pub(crate) fn merge(into: &mut Option<Claim>, claim: Option<Claim>) {
    match (into.as_mut(), claim) {
        (Some(claims), Some(claim)) => claims.merge(claim),
        (None, claim) => *into = claim,
        (Some(_), None) => {}
    }
}

/// Gives back up to `free` of the claims `held`.
pub(crate) fn give_back(held: &mut Option<Claim>, free: usize) {
    if let Some(claims) = held {
        drop(claims.split(free.min(claims.num_permits())));
        if claims.num_permits() == 0 {
            *held = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn claims_are_taken_together_and_given_back_in_parts() {
        let claims = Claims::new(4);
        let mut taken = claims.take().await.expect("a claim");
        assert_eq!(taken.num_permits(), 4, "every free claim comes along");
        let one = taken.split(1);
        let mut held = None;
        merge(&mut held, one);
        merge(&mut held, Some(taken));
        give_back(&mut held, 3);
        assert_eq!(held.as_ref().map(Claim::num_permits), Some(1));
        let mut again = claims.take().await.expect("given back");
        assert_eq!(again.num_permits(), 3);
        claims
            .wait_for(&mut again, 4, Duration::from_millis(1))
            .await;
        assert_eq!(again.num_permits(), 3, "the held one is not free");
        give_back(&mut held, 1);
        assert!(held.is_none());
        claims.wait_for(&mut again, 4, Duration::from_secs(1)).await;
        assert_eq!(again.num_permits(), 4);
    }
}
