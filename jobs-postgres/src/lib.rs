//! PostgreSQL storage for [`jobs`]: jobs survive restarts and are shared by every process that
//! connects to the same schema.
//!
//! ```no_run
//! use jobs::prelude::*;
//! use jobs_postgres::PostgresStorage;
//!
//! /// Sends the welcome mail.
//! #[job]
//! async fn send_welcome(user_id: i64) -> anyhow::Result<()> {
//!     println!("welcome, user {user_id}");
//!     Ok(())
//! }
//!
//! # #[tokio::main] async fn main() -> anyhow::Result<()> {
//! let storage = PostgresStorage::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
//! storage.migrate().await?; // idempotent, safe from many processes at once
//!
//! let client = Client::new(storage.clone());
//! SendWelcome::new(7).enqueue(&client).await?;
//!
//! Server::builder(storage)
//!     .workers(10)
//!     .build()?
//!     .run_until(async { tokio::signal::ctrl_c().await.ok(); })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Transactional enqueue: the job exists only if your transaction commits.
//!
//! ```no_run
//! # use jobs::prelude::*;
//! # #[job] async fn send_welcome(user_id: i64) {}
//! # async fn example(storage: jobs_postgres::PostgresStorage) -> anyhow::Result<()> {
//! let mut connection = storage.pool().get().await?;
//! let tx = connection.transaction().await?;
//! let row = tx.query_one("INSERT INTO users (name) VALUES ($1) RETURNING id", &[&"ada"]).await?;
//! let user_id: i64 = row.get(0);
//! storage.enqueue_tx(&tx, &SendWelcome::new(user_id)).await?;
//! tx.commit().await?; // the user and the job, or neither
//! # Ok(()) }
//! ```
//!
//! # How it works
//!
//! - **Schema.** Everything lives in one schema (`jobs` by default, see [`PostgresOptions`]),
//!   created by [`PostgresStorage::migrate`] from the embedded, versioned migrations
//!   (`migrations/NNNN_name.up.sql`), recorded in `<schema>.jobs_migrations` and applied in one
//!   transaction under `pg_advisory_xact_lock`.
//!
//!   | table | holds |
//!   | --- | --- |
//!   | `jobs` | one narrow row per job: state, queue position, lease, parent, result, error |
//!   | `job_history` | the job's history entries, append-only, read only by the job's page; three kinds of entry live on the job row instead (a plain enqueue's first entry, the running attempt, a worker's success), so a job that is enqueued and succeeds writes one row (the data model: `docs/storage.md` in the repository) |
//!   | `recurring_jobs` | CRON definitions; a firing is a compare-and-set on `next_run` |
//!   | `servers`, `leader` | running servers with heartbeats; the maintenance leader's lease |
//!   | `stats` | succeeded / failed counts per hour, sharded per connection |
//!
//! - **Fetch** is one statement: for each served queue in priority order, the head of the queue
//!   from the partial index `(queue, position) WHERE state = 'enqueued'`, locked with
//!   `FOR NO KEY UPDATE SKIP LOCKED` (concurrent fetchers never wait for or share a row), then
//!   updated to Processing with the server's lease, returned. Finished jobs are not in that
//!   index, so the fetch costs the same with ten or ten million of them in the table.
//! - **Completion** is batched: one statement applies N outcomes (from arrays, `unnest`), only
//!   where the job is still Processing under the completing server; the continuations of
//!   jobs that finished are released in the same transaction.
//! - **Wake-ups.** Every statement that makes jobs available sends one `NOTIFY` (not one per
//!   job), and plain enqueues at most one per 5 ms (`PostgresOptions::notify_throttle`; one
//!   trailing NOTIFY covers the skipped ones; this process's own servers are woken in memory at
//!   once). Each storage keeps one dedicated `LISTEN` connection (re-established when lost) that
//!   wakes [`Storage::wait_for_work`](jobs::Storage::wait_for_work); servers also poll.
//! - **Bloat.** Every state change leaves dead row versions; the elected server vacuums the
//!   jobs table (`VACUUM (SKIP_LOCKED)`) when it holds over 50,000 dead rows, since autovacuum
//!   visits a database only once a minute by default.
//! - **Leases.** A fetched job is leased to its server until `lease_until`, renewed by the
//!   server's heartbeat. The elected maintenance server puts jobs whose lease lapsed back at
//!   their original place in their queue: delivery is at least once.
//! - **Statements** are prepared once per pooled connection (deadpool's statement cache). The
//!   connections `connect` opens run with [`SESSION_OPTIONS`] (JIT, sequential scans, hash and
//!   merge joins off), so a plan cached while the table was small keeps probing indexes once it
//!   has grown; give a pool of your own the same before [`PostgresStorage::from_pool`].
//!
//! # Features
//!
//! | feature | what |
//! | --- | --- |
//! | `test-util` | `testing::TestSchema`: a throwaway migrated schema per test (unstable) |

#![cfg_attr(docsrs, feature(doc_cfg))]

// The storage and its constructors; every operation lives in `sql/`, one module per operation
// or small family (its SQL, parameters and row mapping together).
mod sql;
mod storage;
// Decoding of a job row and its history, shared by the operations that read jobs back.
mod row;
// The queue shares this process's servers hold under their queues' limits.
mod shares;
// What the operations run on: the pool, the schema's statements, where a statement runs.
mod database;
// Time bounds of the connections.
mod connection;
mod error;
mod migrate;
mod notify;
mod options;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;

pub use error::PostgresError;
pub use migrate::{latest_version, Migration, MIGRATIONS};
pub use options::{
    validate_identifier, PostgresOptions, DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_SCHEMA,
    SESSION_OPTIONS,
};
pub use storage::PostgresStorage;

/// The driver and pool this crate is built on, re-exported so their versions match.
pub use deadpool_postgres;
/// The driver this crate is built on, re-exported so `Transaction` types match.
pub use tokio_postgres;
