//! [`PageError`]: what can go wrong answering a request, and the plain page that says so.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// What can go wrong answering a request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] crate::Error),
    /// Nothing here.
    #[error("{0}")]
    NotFound(String),
    /// The request makes no sense.
    #[error("{0}")]
    BadRequest(String),
    /// Not allowed (a bad CSRF token).
    #[error("{0}")]
    Forbidden(&'static str),
}

/// What a page handler answers.
pub(crate) type PageResult = Result<Markup, PageError>;

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title) = match &self {
            PageError::Storage(error) => {
                tracing::error!(%error, "dashboard: storage error");
                (StatusCode::INTERNAL_SERVER_ERROR, "Storage error")
            }
            PageError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
            PageError::BadRequest(_) => (StatusCode::BAD_REQUEST, "Bad request"),
            PageError::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden"),
        };
        // A page of its own, without the layout: the counts the layout shows may be what
        // failed to load.
        let page = html! {
            (DOCTYPE)
            html lang="en" {
                head { meta charset="utf-8"; title { (title) } }
                body {
                    h1 { (title) }
                    p { (self.to_string()) }
                }
            }
        };
        (status, page).into_response()
    }
}
