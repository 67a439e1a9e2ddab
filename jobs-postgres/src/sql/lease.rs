//! Renewing the leases of running jobs.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use jobs::{JobId, Result};

use super::ts;
use crate::database::{Database, Template};
use crate::row;

/// Extends the leases `$1` still holds; returns the ids it holds.
pub(crate) const KEEP_ALIVE: Template = Template::text(
    "keep alive",
    "
WITH held AS (
    SELECT id FROM __SCHEMA__.jobs
    WHERE id = ANY($2::bigint[]) AND state = 'processing' AND server_id = $1
    ORDER BY id
    FOR NO KEY UPDATE
)
UPDATE __SCHEMA__.jobs AS job SET lease_until = $3
FROM held WHERE job.id = held.id
RETURNING job.id",
);

/// [`Storage::keep_alive`](jobs::Storage::keep_alive) on PostgreSQL.
pub(crate) async fn keep_alive(
    storage: &Database,
    server_id: &str,
    ids: &[JobId],
    lease_until: DateTime<Utc>,
) -> Result<Vec<JobId>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let raw: Vec<i64> = ids.iter().map(|id| id.0).collect();
    let rows = storage
        .query(
            "keep alive",
            &storage.statement(&KEEP_ALIVE),
            &[&server_id, &raw, &ts(lease_until)],
        )
        .await?;
    let mut held = HashSet::new();
    for row in &rows {
        held.insert(row::column::<i64>(row, "id", &|| {
            "a leased job".to_owned()
        })?);
    }
    Ok(ids
        .iter()
        .copied()
        .filter(|id| !held.contains(&id.0))
        .collect())
}
