//! Versioned SQL migrations, embedded in the crate and applied under an advisory lock.
//!
//! Each migration is `migrations/NNNN_name.up.sql` with its `.down.sql`; `__SCHEMA__` in them
//! is replaced by the quoted schema name. `<schema>.jobs_migrations(version, name, applied_at)`
//! records what ran. A run takes `pg_advisory_xact_lock` on a key derived from the schema and
//! applies everything in one transaction, so processes starting together migrate once and a
//! failed migration leaves nothing behind.

use tokio_postgres::Client;

use crate::error::{describe, PostgresError};
use crate::options::quote_identifier;

/// One embedded migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its version: migrations run in increasing order.
    pub version: u32,
    /// Its name.
    pub name: &'static str,
    /// The SQL that applies it.
    pub up: &'static str,
    /// The SQL that reverts it.
    pub down: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal, $file:literal) => {
        Migration {
            version: $version,
            name: $name,
            up: include_str!(concat!("../migrations/", $file, ".up.sql")),
            down: include_str!(concat!("../migrations/", $file, ".down.sql")),
        }
    };
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "jobs", "0001_jobs"),
    migration!(2, "recurring", "0002_recurring"),
    migration!(3, "servers", "0003_servers"),
    migration!(4, "stats", "0004_stats"),
    migration!(5, "attempts", "0005_attempts"),
    migration!(6, "row_entries", "0006_row_entries"),
    migration!(7, "state_index", "0007_state_index"),
    migration!(8, "entries", "0008_entries"),
    migration!(9, "priority", "0009_priority"),
    migration!(10, "flow", "0010_flow"),
    migration!(11, "flow_speed", "0011_flow_speed"),
    migration!(12, "queue_shares", "0012_queue_shares"),
];

/// The newest schema version this crate knows.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |migration| migration.version)
}

const PLACEHOLDER: &str = "__SCHEMA__";

/// The advisory lock key of a schema's migrations: FNV-1a of a fixed prefix and the name, so
/// different schemas migrate in parallel and one schema never twice at once.
fn lock_key(schema: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "jobs-postgres migrate ".bytes().chain(schema.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

fn failed(operation: &'static str, source: tokio_postgres::Error) -> PostgresError {
    PostgresError::Query {
        operation,
        message: describe(&source),
        source,
    }
}

/// Opens the migration transaction: the lock, the schema and the bookkeeping table. Returns
/// the versions already applied.
async fn begin(client: &Client, schema: &str) -> Result<Vec<u32>, PostgresError> {
    let quoted = quote_identifier(schema);
    client
        .query("SELECT pg_advisory_xact_lock($1)", &[&lock_key(schema)])
        .await
        .map_err(|e| failed("migrate (advisory lock)", e))?;
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {quoted};
             CREATE TABLE IF NOT EXISTS {quoted}.jobs_migrations (
                 version    integer     PRIMARY KEY,
                 name       text        NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );"
        ))
        .await
        .map_err(|e| failed("migrate (schema)", e))?;
    let rows = client
        .query(
            &format!("SELECT version FROM {quoted}.jobs_migrations ORDER BY version"),
            &[],
        )
        .await
        .map_err(|e| failed("migrate (applied versions)", e))?;
    rows.iter()
        .map(|row| {
            let version: i32 = row
                .try_get(0)
                .map_err(|e| PostgresError::decode("jobs_migrations", describe(&e)))?;
            u32::try_from(version)
                .map_err(|_| PostgresError::decode("jobs_migrations", "a negative version"))
        })
        .collect()
}

/// Applies every migration not applied yet. Returns the versions it applied.
pub(crate) async fn up(client: &mut Client, schema: &str) -> Result<Vec<u32>, PostgresError> {
    apply(client, schema, Direction::Up).await
}

/// Reverts every applied migration newer than `version`, newest first. Returns the versions
/// it reverted.
pub(crate) async fn down_to(
    client: &mut Client,
    schema: &str,
    version: u32,
) -> Result<Vec<u32>, PostgresError> {
    apply(client, schema, Direction::DownTo(version)).await
}

/// Which way a run goes, and the names its steps fail under.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Up,
    DownTo(u32),
}

impl Direction {
    /// The operation names of its begin, bookkeeping and commit steps.
    fn steps(self) -> [&'static str; 3] {
        match self {
            Direction::Up => [
                "migrate (begin)",
                "migrate (record version)",
                "migrate (commit)",
            ],
            Direction::DownTo(_) => [
                "migrate down (begin)",
                "migrate down (record version)",
                "migrate down (commit)",
            ],
        }
    }
}

/// Runs, in one transaction under the schema's lock, every migration `direction` calls for
/// (up: those not applied, oldest first; down: the applied ones newer than its version,
/// newest first), recording each in `jobs_migrations`. Returns their versions.
async fn apply(
    client: &mut Client,
    schema: &str,
    direction: Direction,
) -> Result<Vec<u32>, PostgresError> {
    let [begun, record, commit] = direction.steps();
    let quoted = quote_identifier(schema);
    let transaction = client.transaction().await.map_err(|e| failed(begun, e))?;
    let applied = begin(transaction.client(), schema).await?;
    if let Some(unknown) = applied.iter().find(|v| **v > latest_version()) {
        tracing::warn!(
            schema,
            version = unknown,
            "the schema has a migration this version of jobs-postgres does not know"
        );
    }
    let due: Vec<&Migration> = match direction {
        Direction::Up => MIGRATIONS
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .collect(),
        Direction::DownTo(to) => MIGRATIONS
            .iter()
            .rev()
            .filter(|m| m.version > to && applied.contains(&m.version))
            .collect(),
    };
    let mut ran = Vec::new();
    for migration in due {
        let version = i32::try_from(migration.version).unwrap_or(i32::MAX);
        let sql = match direction {
            Direction::Up => migration.up,
            Direction::DownTo(_) => migration.down,
        };
        run(&transaction, migration, sql, &quoted).await?;
        let recorded = match direction {
            Direction::Up => {
                let insert =
                    format!("INSERT INTO {quoted}.jobs_migrations (version, name) VALUES ($1, $2)");
                transaction
                    .execute(&insert, &[&version, &migration.name])
                    .await
            }
            Direction::DownTo(_) => {
                let delete = format!("DELETE FROM {quoted}.jobs_migrations WHERE version = $1");
                transaction.execute(&delete, &[&version]).await
            }
        };
        recorded.map_err(|e| failed(record, e))?;
        tracing::info!(
            schema,
            version = migration.version,
            name = migration.name,
            up = matches!(direction, Direction::Up),
            "ran migration"
        );
        ran.push(migration.version);
    }
    transaction.commit().await.map_err(|e| failed(commit, e))?;
    Ok(ran)
}

/// Runs one direction (`sql`: its `up` or `down`) of `migration` in `schema` (quoted).
async fn run(
    transaction: &tokio_postgres::Transaction<'_>,
    migration: &Migration,
    sql: &str,
    quoted_schema: &str,
) -> Result<(), PostgresError> {
    transaction
        .batch_execute(&sql.replace(PLACEHOLDER, quoted_schema))
        .await
        .map_err(|source| PostgresError::Migration {
            version: migration.version,
            name: migration.name,
            message: describe(&source),
            source,
        })
}

/// The versions applied to `schema` (empty if it was never migrated).
pub(crate) async fn applied(client: &Client, schema: &str) -> Result<Vec<u32>, PostgresError> {
    let exists = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{}.jobs_migrations", quote_identifier(schema))],
        )
        .await
        .map_err(|e| failed("migration status", e))?;
    let exists: bool = exists
        .try_get(0)
        .map_err(|e| PostgresError::decode("migration status", describe(&e)))?;
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            &format!(
                "SELECT version FROM {}.jobs_migrations ORDER BY version",
                quote_identifier(schema)
            ),
            &[],
        )
        .await
        .map_err(|e| failed("migration status", e))?;
    rows.iter()
        .map(|row| {
            let version: i32 = row
                .try_get(0)
                .map_err(|e| PostgresError::decode("jobs_migrations", describe(&e)))?;
            u32::try_from(version)
                .map_err(|_| PostgresError::decode("jobs_migrations", "a negative version"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ordered_and_templated() {
        let versions: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
        let mut sorted = versions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(versions, sorted, "versions strictly increase");
        for migration in MIGRATIONS {
            assert!(migration.up.contains(PLACEHOLDER), "{}", migration.name);
            assert!(migration.down.contains(PLACEHOLDER), "{}", migration.name);
        }
    }

    #[test]
    fn lock_keys_differ_per_schema() {
        assert_ne!(lock_key("a"), lock_key("b"));
        assert_eq!(lock_key("a"), lock_key("a"));
    }
}
