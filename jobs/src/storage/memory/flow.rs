//! Flow control's stored part: each queue's settings and each job kind's limits, with the
//! rate window each has used. The decisions themselves are [`Admission`]'s.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;

use crate::flow::{rate_left, Admission, JobLimits, QueueLimits, QueueSettings, Rate};

/// A rate's current window and the starts counted in it.
type Window = Option<(i64, u32)>;

#[derive(Default)]
pub(crate) struct Flow {
    queues: BTreeMap<String, (QueueSettings, Window)>,
    kinds: BTreeMap<String, (JobLimits, Window)>,
}

impl Flow {
    /// Every queue's settings (the empty ones left out).
    pub(crate) fn settings(&self) -> Vec<QueueSettings> {
        self.queues
            .values()
            .map(|(settings, _)| settings.clone())
            .filter(QueueSettings::restricts)
            .collect()
    }

    /// One queue's settings (the defaults when it has none).
    pub(crate) fn queue(&self, queue: &str) -> QueueSettings {
        self.queues
            .get(queue)
            .map(|(settings, _)| settings.clone())
            .unwrap_or_else(|| QueueSettings {
                queue: queue.to_owned(),
                ..QueueSettings::default()
            })
    }

    pub(crate) fn paused(&self, queue: &str) -> bool {
        self.queues
            .get(queue)
            .is_some_and(|(settings, _)| settings.paused)
    }

    fn entry(&mut self, queue: &str) -> &mut (QueueSettings, Window) {
        self.queues.entry(queue.to_owned()).or_insert_with(|| {
            (
                QueueSettings {
                    queue: queue.to_owned(),
                    ..QueueSettings::default()
                },
                None,
            )
        })
    }

    pub(crate) fn set_paused(&mut self, queue: &str, paused: bool) {
        self.entry(queue).0.paused = paused;
    }

    /// Replaces a queue's limits; a new rate period starts counting afresh.
    pub(crate) fn set_limits(&mut self, queue: &str, limits: QueueLimits) {
        let (settings, window) = self.entry(queue);
        if settings.limits.rate.map(|rate| rate.period) != limits.rate.map(|rate| rate.period) {
            *window = None;
        }
        settings.limits = limits;
    }

    pub(crate) fn register(&mut self, limits: &[JobLimits]) {
        for kind in limits {
            if kind.concurrency.is_none() && kind.rate.is_none() {
                self.kinds.remove(&kind.name);
            } else {
                let window = self.kinds.get(&kind.name).and_then(|(_, window)| *window);
                self.kinds.insert(kind.name.clone(), (kind.clone(), window));
            }
        }
    }

    /// What `queue` may still start with `running` of its jobs Processing (`None`: no limit).
    pub(crate) fn queue_left(&self, queue: &str, running: u64, now: DateTime<Utc>) -> Option<u64> {
        let (settings, window) = self.queues.get(queue)?;
        let limits = settings.limits;
        let by_concurrency = limits
            .concurrency
            .map(|limit| u64::from(limit).saturating_sub(running));
        let by_rate = limits.rate.map(|rate| rate_left(&rate, *window, now));
        match (by_concurrency, by_rate) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Adds every job kind's budget to `admission`.
    pub(crate) fn kinds(
        &self,
        admission: &mut Admission,
        running: &FxHashMap<&str, u64>,
        now: DateTime<Utc>,
    ) {
        for (name, (limits, window)) in &self.kinds {
            let left = limits.rate.map(|rate| rate_left(&rate, *window, now));
            admission.kind(
                limits,
                running.get(name.as_str()).copied().unwrap_or(0),
                left,
            );
        }
    }

    /// Counts one start against the rate windows of its queue and kind.
    pub(crate) fn started(&mut self, queue: &str, name: &str, now: DateTime<Utc>) {
        let count = |rate: Option<Rate>, window: &mut Window| {
            if let Some(rate) = rate {
                let current = rate.window(now);
                *window = match *window {
                    Some((at, used)) if at == current => Some((at, used + 1)),
                    _ => Some((current, 1)),
                };
            }
        };
        if let Some((settings, window)) = self.queues.get_mut(queue) {
            count(settings.limits.rate, window);
        }
        if let Some((limits, window)) = self.kinds.get_mut(name) {
            count(limits.rate, window);
        }
    }
}
