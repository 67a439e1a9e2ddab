//! The registry of running servers.

use chrono::{DateTime, Utc};
use jobs::storage::{ServerInfo, ServerRecord};
use jobs::Result;
use tokio_postgres::Row;

use super::{big, ts};
use crate::database::{Database, Template};
use crate::error::{describe, PostgresError};
use crate::row::column;

pub(crate) const REGISTER_SERVER: Template = Template::text(
    "register server",
    "
INSERT INTO __SCHEMA__.servers (id, queues, workers, started_at, heartbeat_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE
SET queues = excluded.queues, workers = excluded.workers, started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at",
);

/// Records a server's heartbeat and renews the queue shares it holds (those not yet lapsed),
/// each by its lease: a share lasts while its server lives, as its jobs' leases do.
pub(crate) const HEARTBEAT: Template = Template::text(
    "heartbeat",
    "
WITH renewed AS (
    UPDATE __SCHEMA__.queue_shares
    SET until = $2 + lease_ms * interval '1 millisecond'
    WHERE server_id = $1 AND until > $2
)
UPDATE __SCHEMA__.servers SET heartbeat_at = $2 WHERE id = $1",
);

pub(crate) const UNREGISTER_SERVER: Template = Template::text(
    "unregister server",
    "DELETE FROM __SCHEMA__.servers WHERE id = $1",
);

/// Removes the servers whose last heartbeat is before `$1`, and the queue shares that lapsed
/// before it (no fetch counts them any more; they would only pile up).
pub(crate) const REMOVE_DEAD_SERVERS: Template = Template::text(
    "remove dead servers",
    "
WITH lapsed AS (
    DELETE FROM __SCHEMA__.queue_shares WHERE until < $1
)
DELETE FROM __SCHEMA__.servers WHERE heartbeat_at < $1",
);

pub(crate) const SERVERS: Template = Template::text(
    "servers",
    "
SELECT id, queues, workers, started_at, heartbeat_at FROM __SCHEMA__.servers ORDER BY id",
);

/// [`Storage::register_server`](jobs::Storage::register_server) on PostgreSQL.
pub(crate) async fn register_server(
    storage: &Database,
    server: &ServerInfo,
    now: DateTime<Utc>,
) -> Result<()> {
    storage
        .execute(
            "register server",
            &storage.statement(&REGISTER_SERVER),
            &[
                &server.id,
                &server.queues,
                &big(server.workers),
                &ts(server.started_at),
                &ts(now),
            ],
        )
        .await?;
    Ok(())
}

/// [`Storage::heartbeat`](jobs::Storage::heartbeat) on PostgreSQL.
pub(crate) async fn heartbeat(
    storage: &Database,
    server_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    storage
        .execute(
            "heartbeat",
            &storage.statement(&HEARTBEAT),
            &[&server_id, &ts(now)],
        )
        .await?;
    Ok(())
}

/// [`Storage::unregister_server`](jobs::Storage::unregister_server) on PostgreSQL.
pub(crate) async fn unregister_server(storage: &Database, server_id: &str) -> Result<()> {
    // A stopped server's jobs are done or handed back; its shares end now rather than when
    // they lapse.
    super::shares::release_all(storage, server_id, Utc::now()).await?;
    storage
        .execute(
            "unregister server",
            &storage.statement(&UNREGISTER_SERVER),
            &[&server_id],
        )
        .await?;
    Ok(())
}

/// [`Storage::remove_dead_servers`](jobs::Storage::remove_dead_servers) on PostgreSQL.
pub(crate) async fn remove_dead_servers(
    storage: &Database,
    before: DateTime<Utc>,
) -> Result<usize> {
    let removed = storage
        .execute(
            "remove dead servers",
            &storage.statement(&REMOVE_DEAD_SERVERS),
            &[&ts(before)],
        )
        .await?;
    Ok(usize::try_from(removed).unwrap_or(usize::MAX))
}

/// [`Storage::servers`](jobs::Storage::servers) on PostgreSQL.
pub(crate) async fn servers(storage: &Database) -> Result<Vec<ServerRecord>> {
    let rows = storage
        .query("servers", &storage.statement(&SERVERS), &[])
        .await?;
    Ok(rows.iter().map(server).collect::<Result<Vec<_>, _>>()?)
}

/// A server from the columns of `SERVERS`.
pub(crate) fn server(row: &Row) -> Result<ServerRecord, PostgresError> {
    let id: String = row
        .try_get("id")
        .map_err(|error| PostgresError::decode("a server row, column `id`", describe(&error)))?;
    let what = || format!("server `{id}`");
    let what: &dyn Fn() -> String = &what;
    let workers: i64 = column(row, "workers", what)?;
    let workers = usize::try_from(workers).map_err(|_| {
        PostgresError::decode(
            format!("{}, column `workers`", what()),
            format!("negative worker count {workers}"),
        )
    })?;
    let queues = column(row, "queues", what)?;
    let started_at = column(row, "started_at", what)?;
    let heartbeat_at = column(row, "heartbeat_at", what)?;
    Ok(ServerRecord {
        info: ServerInfo {
            id,
            queues,
            workers,
            started_at,
        },
        heartbeat_at,
    })
}
