//! Any path no route takes: a redirect when only trailing slashes are in the way, else 404.

use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use crate::dashboard::context::RequestCtx;
use crate::dashboard::error::PageError;

/// Any other path. A page's path with trailing slashes (`/jobs/failed/`) redirects to the page.
pub(crate) async fn not_found(
    Extension(ctx): Extension<RequestCtx>,
    method: Method,
    uri: Uri,
) -> Response {
    let reading = method == Method::GET || method == Method::HEAD;
    match without_trailing_slash(&ctx, &uri).filter(|_| reading) {
        Some(location) => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        None => PageError::NotFound("There is no such page in the jobs dashboard.".to_owned())
            .into_response(),
    }
}

/// Where a path with trailing slashes redirects to: the same path and query without them.
/// `None` when there is nothing to trim, or when what is left would not stay in the dashboard
/// (`//host` is another site to a browser).
fn without_trailing_slash(ctx: &RequestCtx, uri: &Uri) -> Option<HeaderValue> {
    let path = uri.path();
    let trimmed = path.trim_end_matches('/');
    let stays_inside =
        trimmed.starts_with('/') && !trimmed.starts_with("//") && !trimmed.contains('\\');
    if trimmed.len() == path.len() || !stays_inside {
        return None;
    }
    let location = match uri.query() {
        Some(query) => format!("{}?{query}", ctx.url(trimmed)),
        None => ctx.url(trimmed),
    };
    HeaderValue::from_str(&location).ok()
}
