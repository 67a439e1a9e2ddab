//! The recurring jobs page.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::Extension;

use super::load::counts;
use crate::dashboard::context::{RequestCtx, Shared};
use crate::dashboard::error::PageResult;
use crate::dashboard::query::Params;
use crate::dashboard::templates::layout::page;
use crate::dashboard::templates::recurring::Recurring;
use crate::storage::RecurringJob;

/// Whether `q` is part of the recurring job's id or job name, ignoring case.
fn matches(job: &RecurringJob, q: &str) -> bool {
    let q = q.to_lowercase();
    job.id.to_lowercase().contains(&q) || job.job_name.to_lowercase().contains(&q)
}

/// `GET /recurring`.
pub(crate) async fn recurring(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<RequestCtx>,
    Query(params): Query<Params>,
) -> PageResult {
    let counts = counts(&shared).await?;
    let now = shared.client.now();
    let all = shared.client.storage().list_recurring().await?;
    let (filters, mut paging) = params.split(0);
    let matching: Vec<RecurringJob> = match &filters.q {
        Some(q) => all.into_iter().filter(|job| matches(job, q)).collect(),
        None => all,
    };
    paging.total = matching.len() as u64;
    let jobs = matching
        .into_iter()
        .skip(paging.offset())
        .take(paging.size)
        .collect();
    let view = Recurring {
        now,
        filters,
        paging,
        jobs,
    };
    Ok(page(&shared, &ctx, &counts, &view))
}
