//! Storage reads several pages share.

use std::collections::HashMap;

use crate::dashboard::context::Shared;
use crate::dashboard::error::PageError;
use crate::job::JobId;
use crate::storage::{JobRecord, StateCounts};

/// The counts the navigation shows on every page.
pub(super) async fn counts(shared: &Shared) -> Result<StateCounts, PageError> {
    Ok(shared.client.storage().counts().await?)
}

/// The full records (with history) of `jobs`, by id, in one storage read; jobs gone meanwhile
/// are left out.
pub(super) async fn full_records(
    shared: &Shared,
    ids: Vec<JobId>,
) -> Result<HashMap<JobId, JobRecord>, PageError> {
    let records = shared.client.storage().jobs(&ids).await?;
    Ok(records
        .into_iter()
        .map(|record| (record.id, record))
        .collect())
}
