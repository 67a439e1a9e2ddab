//! Test helpers (feature `test-util`, unstable): [`TestSchema`], a fresh migrated schema per
//! test in a shared database.
//!
//! The database is `JOBS_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). If it cannot be reached, tests fail with
//! instructions: they never skip silently.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use crate::error::describe;
use crate::options::quote_identifier;
use crate::{PostgresOptions, PostgresStorage};

/// The environment variable naming the test database.
pub const DATABASE_URL_VAR: &str = "JOBS_TEST_DATABASE_URL";

/// The test database when [`DATABASE_URL_VAR`] is not set.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Test schemas are named `jobs_test_<pid>_<n>`.
pub const SCHEMA_PREFIX: &str = "jobs_test_";

/// Schemas of crashed runs older than this are dropped by the next run.
const STALE_AFTER: Duration = Duration::from_secs(60 * 60);

/// How the comment on a test schema starts; the creation time (Unix seconds) follows.
const COMMENT_PREFIX: &str = "jobs test schema created at ";

static NEXT: AtomicU32 = AtomicU32::new(0);
static CLEANED: AtomicBool = AtomicBool::new(false);

/// The test database URL: `JOBS_TEST_DATABASE_URL`, or the local default.
pub fn database_url() -> String {
    std::env::var(DATABASE_URL_VAR).unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// Connects to the test database outside any pool, or panics with how to start one.
pub async fn admin_client(url: &str) -> tokio_postgres::Client {
    let connected =
        tokio::time::timeout(Duration::from_secs(10), tokio_postgres::connect(url, NoTls)).await;
    let (client, connection) = match connected {
        Ok(Ok(pair)) => pair,
        Ok(Err(error)) => unreachable_database(url, &describe(&error)),
        Err(_) => unreachable_database(url, "no answer within 10 s"),
    };
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(error = %describe(&error), "test admin connection ended");
        }
    });
    client
}

fn unreachable_database(url: &str, error: &str) -> ! {
    panic!(
        "cannot reach the test database at {url}: {error}\n\
         start the local PostgreSQL with:\n    \
         pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
         or point {DATABASE_URL_VAR} at a database the tests may create schemas in"
    )
}

/// A fresh schema `jobs_test_<pid>_<n>`, migrated, with a [`PostgresStorage`] on it (a pool of
/// 4 connections, its own notify channel). [`teardown`](TestSchema::teardown) drops it; if a
/// test panics first, dropping the value drops the schema, and schemas of crashed runs are
/// dropped by the first `TestSchema` of a later run once they are an hour old.
///
/// ```no_run
/// # #[tokio::main] async fn main() {
/// use jobs_postgres::testing::TestSchema;
///
/// let schema = TestSchema::new().await;
/// let client = jobs::Client::new(schema.storage().clone());
/// # let _ = client;
/// schema.teardown().await;
/// # }
/// ```
#[derive(Debug)]
pub struct TestSchema {
    storage: Option<PostgresStorage>,
    schema: String,
    url: String,
}

impl TestSchema {
    /// A fresh migrated schema with the default options.
    pub async fn new() -> TestSchema {
        TestSchema::with_options(PostgresOptions::new().pool_size(4)).await
    }

    /// A fresh migrated schema; `options` gives everything but the schema name (and the
    /// notify channel, unless set).
    pub async fn with_options(options: PostgresOptions) -> TestSchema {
        let schema = TestSchema::create_empty().await;
        let options = options.schema(schema.schema.clone());
        let storage = match PostgresStorage::connect_with(&schema.url, options).await {
            Ok(storage) => storage,
            Err(error) => unreachable_database(&schema.url, &error.to_string()),
        };
        if let Err(error) = storage.migrate().await {
            panic!("migrating test schema {}: {error}", schema.schema);
        }
        let mut schema = schema;
        schema.storage = Some(storage);
        schema
    }

    /// A fresh empty schema (not migrated), and no storage: for migration tests, which build
    /// their own with [`options`](TestSchema::options).
    pub async fn empty() -> TestSchema {
        TestSchema::create_empty().await
    }

    async fn create_empty() -> TestSchema {
        let url = database_url();
        let client = admin_client(&url).await;
        if !CLEANED.swap(true, Ordering::SeqCst) {
            drop_stale_schemas(&client).await;
        }
        let pid = std::process::id();
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        loop {
            let n = NEXT.fetch_add(1, Ordering::SeqCst);
            let schema = format!("{SCHEMA_PREFIX}{pid}_{n}");
            let quoted = quote_identifier(&schema);
            // One implicit transaction: a schema never exists without its creation time.
            let sql = format!(
                "CREATE SCHEMA {quoted}; COMMENT ON SCHEMA {quoted} IS '{COMMENT_PREFIX}{created}';"
            );
            match client.batch_execute(&sql).await {
                Ok(()) => {
                    return TestSchema {
                        storage: None,
                        schema,
                        url,
                    }
                }
                // Left by an earlier process with the same pid: take the next number.
                Err(error) if error.code() == Some(&SqlState::DUPLICATE_SCHEMA) => {}
                Err(error) => panic!("creating test schema {schema}: {}", describe(&error)),
            }
        }
    }

    /// The storage on this schema.
    ///
    /// # Panics
    ///
    /// On a schema made with [`TestSchema::empty`].
    pub fn storage(&self) -> &PostgresStorage {
        match &self.storage {
            Some(storage) => storage,
            None => panic!("TestSchema::empty() has no storage; build one with its options()"),
        }
    }

    /// The schema's name.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Options pointing at this schema (with a pool of 4).
    pub fn options(&self) -> PostgresOptions {
        PostgresOptions::new()
            .schema(self.schema.clone())
            .pool_size(4)
    }

    /// The `application_name` of this schema's storage connections (to find them in
    /// `pg_stat_activity`).
    pub fn application_name(&self) -> String {
        self.options().application_name_or_default()
    }

    /// Closes the storage's pool and drops the schema with everything in it.
    pub async fn teardown(mut self) {
        if let Some(storage) = self.storage.take() {
            storage.pool().close();
        }
        let client = admin_client(&self.url).await;
        drop_schema(&client, &self.schema).await;
        self.schema.clear();
    }
}

impl Drop for TestSchema {
    /// A test that panicked before `teardown`: drop the schema from a helper thread with its
    /// own runtime (a lock timeout keeps it from waiting on a connection of the dying test).
    fn drop(&mut self) {
        if self.schema.is_empty() {
            return;
        }
        if let Some(storage) = self.storage.take() {
            storage.pool().close();
        }
        let schema = std::mem::take(&mut self.schema);
        let url = self.url.clone();
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(Ok((client, connection))) = tokio::time::timeout(
                    Duration::from_secs(5),
                    tokio_postgres::connect(&url, NoTls),
                )
                .await
                {
                    tokio::spawn(connection);
                    drop_schema(&client, &schema).await;
                }
            });
        });
        let _ = dropper.join();
    }
}

async fn drop_schema(client: &tokio_postgres::Client, schema: &str) {
    let sql = format!(
        "SET lock_timeout = '5s'; DROP SCHEMA IF EXISTS {} CASCADE;",
        quote_identifier(schema)
    );
    if let Err(error) = client.batch_execute(&sql).await {
        tracing::warn!(schema, error = %describe(&error), "could not drop test schema; a later run will");
    }
}

/// Drops `jobs_test_%` schemas created more than an hour ago (or without a creation time):
/// what crashed runs left behind.
async fn drop_stale_schemas(client: &tokio_postgres::Client) {
    let rows = match client
        .query(
            "SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace \
             WHERE starts_with(nspname, $1)",
            &[&SCHEMA_PREFIX],
        )
        .await
    {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(error = %describe(&error), "could not list stale test schemas");
            return;
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let stale: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            let name: String = row.try_get(0).ok()?;
            let comment: Option<String> = row.try_get(1).ok()?;
            let created = comment
                .as_deref()
                .and_then(|comment| comment.strip_prefix(COMMENT_PREFIX))
                .and_then(|seconds| seconds.parse::<u64>().ok());
            let old =
                created.is_none_or(|created| now.saturating_sub(created) > STALE_AFTER.as_secs());
            old.then_some(name)
        })
        .collect();
    for schema in stale {
        tracing::info!(schema, "dropping a stale test schema");
        drop_schema(client, &schema).await;
    }
}

/// The plan of the fetch statement for `queues` and `limit`, as `EXPLAIN (ANALYZE, BUFFERS)`
/// prints it. It runs in a transaction that is rolled back: nothing is claimed.
pub async fn explain_fetch(storage: &PostgresStorage, queues: &[&str], limit: usize) -> String {
    let mut client = match storage.pool().get().await {
        Ok(client) => client,
        Err(error) => panic!("explain fetch: {error}"),
    };
    let tx = match client.transaction().await {
        Ok(tx) => tx,
        Err(error) => panic!("explain fetch: {}", describe(&error)),
    };
    let sql = format!("EXPLAIN (ANALYZE, BUFFERS) {}", storage.fetch_sql());
    let queues: Vec<&str> = queues.to_vec();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let now = chrono::Utc::now();
    let rows = match tx
        .query(&sql, &[&queues, &limit, &"explain", &now, &now])
        .await
    {
        Ok(rows) => rows,
        Err(error) => panic!("explain fetch: {}", describe(&error)),
    };
    let plan: Vec<String> = rows.iter().filter_map(|row| row.try_get(0).ok()).collect();
    let _ = tx.rollback().await;
    plan.join("\n")
}

impl jobs::testing::conformance::Fixture for TestSchema {
    fn storage(&self) -> Arc<dyn jobs::Storage> {
        Arc::new(TestSchema::storage(self).clone())
    }

    async fn teardown(self) {
        TestSchema::teardown(self).await;
    }
}
