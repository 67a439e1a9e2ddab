//! One job: its page, its state (for the page's live reload) and its whole arguments.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::health::ServerHealth;
use super::load::{counts, full_records};
use crate::dashboard::context::{RequestCtx, Shared};
use crate::dashboard::error::{PageError, PageResult};
use crate::dashboard::templates::job::JobPage;
use crate::dashboard::templates::layout::page;
use crate::job::{JobId, JobState};

fn parse_id(id: &str) -> Result<JobId, PageError> {
    id.parse()
        .map_err(|_| PageError::NotFound(format!("there is no job `{id}`")))
}

/// `GET /job/{id}/state.json`: the job's state, for the live reload of its page.
pub(crate) async fn job_state_json(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    let record = shared
        .client
        .storage()
        .job(id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("there is no job {id}")))?;
    Ok(Json(serde_json::json!({ "id": id, "state": record.state.as_str() })).into_response())
}

/// `GET /job/{id}/arguments.json`: the job's arguments, whole, as stored.
pub(crate) async fn job_arguments_json(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    let record = shared
        .client
        .storage()
        .job(id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("there is no job {id}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], record.args).into_response())
}

/// `GET /job/{id}`.
pub(crate) async fn job(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<RequestCtx>,
    Path(id): Path<String>,
) -> PageResult {
    let id = parse_id(&id)?;
    let storage = shared.client.storage();
    let counts = counts(&shared).await?;
    let Some(job) = storage.job(id).await? else {
        return Err(PageError::NotFound(format!(
            "There is no job {id}: it never existed, or it finished and was removed."
        )));
    };
    let now = shared.client.now();
    let parent = match job.parent {
        Some(parent) => storage.job(parent).await?,
        None => None,
    };
    let children = full_records(&shared, job.children.iter().copied().take(100).collect()).await?;
    let server_warning = match (&job.server_id, job.state) {
        (Some(server), JobState::Processing) => {
            let servers = storage.servers().await?;
            ServerHealth::new(now, &servers).warning(server)
        }
        _ => None,
    };
    let view = JobPage {
        now,
        job,
        parent,
        children,
        server_warning,
    };
    Ok(page(&shared, &ctx, &counts, &view))
}
