//! The servers page.

use std::sync::Arc;

use axum::extract::State;
use axum::Extension;

use super::health::is_stale;
use super::load::counts;
use crate::dashboard::context::{RequestCtx, Shared};
use crate::dashboard::error::PageResult;
use crate::dashboard::templates::layout::page;
use crate::dashboard::templates::servers::{ServerRow, Servers};

/// `GET /servers`.
pub(crate) async fn servers(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<RequestCtx>,
) -> PageResult {
    let counts = counts(&shared).await?;
    let now = shared.client.now();
    let mut servers = shared.client.storage().servers().await?;
    servers.sort_by(|a, b| a.info.id.cmp(&b.info.id));
    let view = Servers {
        now,
        servers: servers
            .into_iter()
            .map(|server| ServerRow {
                stale: is_stale(now, server.heartbeat_at),
                server,
            })
            .collect(),
    };
    Ok(page(&shared, &ctx, &counts, &view))
}
