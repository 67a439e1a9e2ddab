//! Typed, reliable background jobs for Rust, in the spirit of .NET's Hangfire.
//!
//! Put `#[job]` on an ordinary function, call the generated `.enqueue()` or `.schedule()`, and
//! a [`Server`]'s pool of async workers runs it from a [`Storage`]: [`MemoryStorage`] embedded,
//! or PostgreSQL with `jobs-postgres`. Failed jobs are retried (Hangfire's schedule by default),
//! continuations run after their parent, services are injected from a [`Container`].
//!
//! ```
//! use std::time::Duration;
//! use jobs::prelude::*;
//!
//! /// Says hello.
//! #[job]
//! async fn hello(name: String) -> anyhow::Result<String> {
//!     Ok(format!("hello, {name}"))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> anyhow::Result<()> {
//! let storage = MemoryStorage::new();
//! let client = Client::new(storage.clone());
//! let id = Hello::new("world".into()).enqueue(&client).await?;
//!
//! let server = Server::builder(storage).build()?.start().await?;
//! let record = jobs::testing::wait_for_state(&client, id, JobState::Succeeded, Duration::from_secs(5)).await?;
//! assert_eq!(record.result, Some(serde_json::json!("hello, world")));
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! # Job lifecycle
//!
//! | from | to | when |
//! | --- | --- | --- |
//! | (new) | Enqueued / Scheduled / Awaiting | `enqueue` / `schedule` / `continue_after` |
//! | Scheduled | Enqueued | its time came (within `maintenance_interval`, 1 s) |
//! | Awaiting | Enqueued or Deleted | its parent finished (see [`ContinueOn`]) |
//! | Enqueued | Processing | a worker fetched it (leased to its server) |
//! | Processing | Succeeded | the function returned `Ok` (the result is stored) |
//! | Processing | Scheduled | it failed and has retries left ("Retry attempt n of N: ...") |
//! | Processing | Failed / Deleted | it failed with no retries left (`on_exhausted`) |
//! | Processing | Enqueued | its server shut down, or died and its lease lapsed |
//! | any | Deleted / Enqueued | `client.delete(id)` / `client.requeue(id)` |
//!
//! Every transition is in the job's history ([`JobRecord::history`]) with its time, reason and
//! data (server, attempt, duration, latency, result, error). Delivery is at least once.
//!
//! # Features
//!
//! | feature | default | what |
//! | --- | --- | --- |
//! | `macros` | yes | the `#[job]` attribute |
//! | `dashboard` | no | `jobs::dashboard`: the web dashboard, an axum router |
//! | `test-util` | no | [`testing`]: the storage conformance suite and wait helpers |

#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod container;
mod context;
mod cron;
mod error;
mod flow;
mod job;
mod queue;
mod recurring;
mod registry;
mod retry;
mod server;

pub mod clock;
#[cfg(feature = "dashboard")]
pub mod dashboard;
pub mod storage;
#[cfg(feature = "test-util")]
pub mod testing;

pub use client::Client;
pub use container::{AnyService, Container, ServiceKey, Services};
pub use context::JobContext;
pub use cron::Cron;
pub use error::{Error, Result};
pub use flow::{
    Admission, EnqueueOptions, Enqueued, JobLimits, QueueInfo, QueueLimits, QueueSettings, Rate,
    Unique, Uniqueness, WaitReason, MAX_UNIQUE_KEY_BYTES,
};
pub use job::{
    BoxError, IntoJobResult, Job, JobError, JobId, JobOptions, JobState, OnExhausted, RunResult,
    DEFAULT_PRIORITY,
};
pub use queue::validate_queue;
pub use recurring::RecurringOptions;
pub use registry::{JobEntry, Registry};
pub use retry::{FixedDelays, HangfireBackoff, RetryPolicy};
pub use server::{Server, ServerBuilder, ServerHandle};
pub use storage::{ContinueOn, JobRecord, MemoryStorage, Storage};
pub use tokio_util::sync::CancellationToken;

/// `#[job]`: turns a function (or the `&self` methods of an impl block) into a background job.
#[cfg(feature = "macros")]
#[doc(inline)]
pub use jobs_macros::job;

/// The names most programs need: `use jobs::prelude::*;`.
pub mod prelude {
    pub use crate::{
        CancellationToken, Client, ContinueOn, Cron, EnqueueOptions, Enqueued, Job, JobContext,
        JobError, JobId, JobState, MemoryStorage, QueueLimits, RecurringOptions, Server, Services,
    };
    #[cfg(feature = "macros")]
    pub use jobs_macros::job;
}

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
