//! The embedded stylesheet and script.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// `GET /assets/dashboard.css`.
pub(crate) async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../assets/dashboard.css"),
    )
}

/// `GET /assets/dashboard.js`.
pub(crate) async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../assets/dashboard.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
