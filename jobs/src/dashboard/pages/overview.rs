//! The overview and the counts its live refresh polls.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DurationRound, TimeDelta};

use super::load::counts;
use crate::dashboard::context::{RequestCtx, Shared};
use crate::dashboard::error::{PageError, PageResult};
use crate::dashboard::templates::layout::page;
use crate::dashboard::templates::overview::Overview;
use crate::job::JobState;
use crate::storage::Granularity;

/// `GET /`.
pub(crate) async fn overview(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<RequestCtx>,
) -> PageResult {
    let storage = shared.client.storage();
    let counts = counts(&shared).await?;
    let now = shared.client.now();
    let hour = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
    let day = now.duration_trunc(TimeDelta::days(1)).unwrap_or(now);
    let hourly = storage
        .statistics(
            Granularity::Hour,
            hour - TimeDelta::hours(23),
            hour + TimeDelta::hours(1),
        )
        .await?;
    let daily = storage
        .statistics(
            Granularity::Day,
            day - TimeDelta::days(6),
            day + TimeDelta::days(1),
        )
        .await?;
    let view = Overview {
        counts: counts.clone(),
        hourly,
        daily,
    };
    Ok(page(&shared, &ctx, &counts, &view))
}

/// `GET /stats.json`: counts for the live refresh, and today's succeeded and failed totals
/// (the realtime graph plots their increase between polls).
pub(crate) async fn stats_json(State(shared): State<Arc<Shared>>) -> Result<Response, PageError> {
    let counts = counts(&shared).await?;
    let now = shared.client.now();
    let day = now.duration_trunc(TimeDelta::days(1)).unwrap_or(now);
    let today = shared
        .client
        .storage()
        .statistics(Granularity::Day, day, day + TimeDelta::days(1))
        .await?;
    let mut by_key = serde_json::Map::new();
    for state in JobState::ALL {
        by_key.insert(state.as_str().to_owned(), counts.get(state).into());
    }
    by_key.insert("retries".to_owned(), counts.retries.into());
    by_key.insert("recurring".to_owned(), counts.recurring.into());
    by_key.insert("servers".to_owned(), counts.servers.into());
    let body = serde_json::json!({
        "at": now.to_rfc3339(),
        "counts": by_key,
        "today": {
            "succeeded": today.iter().map(|p| p.succeeded).sum::<u64>(),
            "failed": today.iter().map(|p| p.failed).sum::<u64>(),
        },
    });
    Ok(Json(body).into_response())
}
