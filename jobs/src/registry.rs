//! The registry of job types: one [`JobEntry`] per `#[job]`, collected with `inventory`.

use std::collections::BTreeMap;
use std::fmt;

use futures::future::BoxFuture;

use crate::__private::Invocation;
use crate::container::{Container, ServiceKey};
use crate::error::{Error, Result};
use crate::flow::JobLimits;
use crate::job::{JobOptions, RunResult};

/// How to run one job type. `#[job]` submits one per job; the server looks them up by name.
pub struct JobEntry {
    /// The stored name.
    pub name: &'static str,
    /// Former names that still run this job.
    pub aliases: &'static [&'static str],
    /// The queue it is enqueued to.
    pub queue: &'static str,
    /// Retries, delays, timeout.
    pub options: JobOptions,
    /// The services the job resolves from the container (the instance for instance jobs and
    /// every `#[inject]` parameter).
    pub services: &'static [fn() -> ServiceKey],
    /// Runs the job: deserialize the arguments, resolve services, call the function.
    pub run: fn(Invocation) -> BoxFuture<'static, RunResult>,
    /// `file!()` of the registration.
    pub file: &'static str,
    /// `line!()` of the registration.
    pub line: u32,
}

impl JobEntry {
    /// `file:line` of the registration, for messages.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

impl fmt::Debug for JobEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobEntry")
            .field("name", &self.name)
            .field("aliases", &self.aliases)
            .field("queue", &self.queue)
            .field("options", &self.options)
            .field("location", &self.location())
            .finish_non_exhaustive()
    }
}

inventory::collect!(JobEntry);

/// Every job registered in this process, by name and alias.
#[derive(Debug, Clone)]
pub struct Registry {
    by_name: BTreeMap<&'static str, &'static JobEntry>,
}

impl Registry {
    /// The queues the registered jobs are enqueued to by default.
    pub fn queues(&self) -> Vec<String> {
        let mut queues: Vec<String> = self
            .by_name
            .values()
            .map(|entry| entry.queue.to_owned())
            .collect();
        queues.sort();
        queues.dedup();
        queues
    }

    /// The stored limits of the registered jobs: one per job (by its name, not its
    /// aliases), with or without limits.
    pub fn job_limits(&self) -> Vec<JobLimits> {
        let mut limits: Vec<JobLimits> = self
            .by_name
            .iter()
            .filter(|(name, entry)| **name == entry.name)
            .map(|(_, entry)| JobLimits {
                name: entry.name.to_owned(),
                concurrency: entry.options.concurrency,
                rate: entry.options.rate,
            })
            .collect();
        limits.sort_by(|a, b| a.name.cmp(&b.name));
        limits
    }

    /// The queues of the registered jobs that have a mutex or kind limits: a server serving
    /// one fetches from it with flow control.
    pub fn gated_queues(&self) -> Vec<String> {
        let mut queues: Vec<String> = self
            .by_name
            .values()
            .filter(|entry| {
                entry.options.mutex
                    || entry.options.concurrency.is_some()
                    || entry.options.rate.is_some()
            })
            .map(|entry| entry.queue.to_owned())
            .collect();
        queues.sort();
        queues.dedup();
        queues
    }

    /// Collects every `#[job]` of the process. Two entries with one name (or alias) are an error
    /// naming both source locations.
    pub fn collect() -> Result<Registry> {
        Registry::from_entries(inventory::iter::<JobEntry>)
    }

    /// Builds a registry from the given entries (the same checks as [`Registry::collect`]).
    pub fn from_entries(entries: impl IntoIterator<Item = &'static JobEntry>) -> Result<Registry> {
        let mut entries: Vec<&'static JobEntry> = entries.into_iter().collect();
        // inventory's order is unspecified; sort so duplicate errors are deterministic.
        entries.sort_by_key(|entry| (entry.name, entry.file, entry.line));
        let mut by_name: BTreeMap<&'static str, &'static JobEntry> = BTreeMap::new();
        for entry in entries {
            for name in std::iter::once(&entry.name).chain(entry.aliases) {
                if let Some(first) = by_name.insert(name, entry) {
                    return Err(Error::DuplicateJob {
                        name: (*name).to_owned(),
                        first: first.location(),
                        second: entry.location(),
                    });
                }
            }
        }
        Ok(Registry { by_name })
    }

    /// The entry registered under `name` (its name or an alias).
    pub fn get(&self, name: &str) -> Option<&'static JobEntry> {
        self.by_name.get(name).copied()
    }

    /// Every distinct entry, sorted by name.
    pub fn entries(&self) -> impl Iterator<Item = &'static JobEntry> + '_ {
        self.by_name
            .iter()
            .filter(|(name, entry)| **name == entry.name)
            .map(|(_, entry)| *entry)
    }

    /// One line per job of `queues` whose services `container` cannot provide.
    pub(crate) fn unresolved(&self, container: &dyn Container, queues: &[String]) -> Vec<String> {
        self.entries()
            .filter(|entry| queues.iter().any(|queue| queue == entry.queue))
            .filter_map(|entry| {
                let missing: Vec<&str> = entry
                    .services
                    .iter()
                    .map(|key| key())
                    .filter(|key| !container.provides(key))
                    .map(|key| key.type_name)
                    .collect();
                (!missing.is_empty()).then(|| {
                    format!(
                        "job `{}` ({}) needs {}",
                        entry.name,
                        entry.location(),
                        missing.join(", ")
                    )
                })
            })
            .collect()
    }
}
