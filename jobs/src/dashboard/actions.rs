//! POST actions: requeue, enqueue now and delete jobs; trigger, pause, resume and remove
//! recurring jobs.
//! Each takes the ticked ids (`ids`, repeated), the CSRF token and the page to go back to, and
//! answers 303 See Other to that page with a flash message.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::context::{RequestCtx, Shared};
use super::csrf;
use super::error::PageError;
use super::flash::{Action, Flash, FLASH_COOKIE};
use crate::job::JobId;

/// The most items one action may touch (a page shows at most 100).
const MAX_IDS: usize = 1000;

/// A parsed action form.
struct ActionForm {
    ids: Vec<String>,
    back: String,
}

/// Parses the form and checks its CSRF token against the request's cookie.
fn read_form(shared: &Shared, ctx: &RequestCtx, body: &[u8]) -> Result<ActionForm, PageError> {
    let mut ids = Vec::new();
    let mut back = None;
    let mut token = None;
    for (key, value) in form_urlencoded::parse(body) {
        match &*key {
            "ids" => ids.push(value.into_owned()),
            "back" => back = Some(value.into_owned()),
            csrf::FIELD => token = Some(value.into_owned()),
            _ => {}
        }
    }
    let valid =
        ctx.nonce_from_cookie && token.is_some_and(|token| shared.csrf.verify(&ctx.nonce, &token));
    if !valid {
        return Err(PageError::Forbidden(
            "The form's security token is missing or does not match: reload the page and try \
             again.",
        ));
    }
    if ids.len() > MAX_IDS {
        return Err(PageError::BadRequest(format!(
            "at most {MAX_IDS} items per action"
        )));
    }
    Ok(ActionForm {
        ids,
        back: safe_back(back.as_deref()),
    })
}

/// The page to return to: a path inside the dashboard, never another site.
fn safe_back(back: Option<&str>) -> String {
    match back {
        Some(back)
            if back.starts_with('/')
                && !back.starts_with("//")
                && !back.contains('\\')
                && back.len() <= 2000
                && HeaderValue::from_str(back).is_ok() =>
        {
            back.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn redirect(ctx: &RequestCtx, back: &str, flash: Flash) -> Response {
    let location = if back == "/" {
        ctx.home()
    } else {
        ctx.url(back)
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, value);
    }
    let cookie = ctx.cookie(FLASH_COOKIE, &flash.to_cookie_value(), Some(60));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        headers.append(header::SET_COOKIE, value);
    }
    response
}

/// `POST /actions/jobs/{requeue|enqueue|delete}`.
pub(crate) async fn jobs(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<RequestCtx>,
    Path(action): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let Some(action @ (Action::Requeue | Action::Enqueue | Action::Delete)) =
        Action::parse(&action)
    else {
        return Err(PageError::NotFound(format!("no job action `{action}`")));
    };
    let form = read_form(&shared, &ctx, &body)?;
    let ids = form
        .ids
        .iter()
        .map(|id| id.trim().parse::<JobId>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| PageError::BadRequest("job ids are numbers".to_owned()))?;
    let mut flash = Flash::new(action);
    for id in ids {
        let outcome = match action {
            Action::Requeue | Action::Enqueue => shared.client.requeue(id).await,
            _ => shared.client.delete(id).await,
        };
        match outcome {
            Ok(_) => flash.done += 1,
            Err(error) => {
                tracing::warn!(job = %id, action = action.as_str(), %error, "dashboard action failed");
                flash.failed += 1;
            }
        }
    }
    Ok(redirect(&ctx, &form.back, flash))
}

/// `POST /actions/recurring/{trigger|pause|resume|remove}`.
pub(crate) async fn recurring(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<RequestCtx>,
    Path(action): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let Some(action @ (Action::Trigger | Action::Pause | Action::Resume | Action::Remove)) =
        Action::parse(&action)
    else {
        return Err(PageError::NotFound(format!(
            "no recurring job action `{action}`"
        )));
    };
    let form = read_form(&shared, &ctx, &body)?;
    let mut flash = Flash::new(action);
    for id in &form.ids {
        let client = &shared.client;
        let outcome = match action {
            Action::Trigger => client.trigger_recurring(id).await.map(drop),
            Action::Pause => client.pause_recurring(id).await,
            Action::Resume => client.resume_recurring(id).await,
            _ => client.remove_recurring(id).await.and_then(|removed| {
                if removed {
                    Ok(())
                } else {
                    Err(crate::Error::RecurringNotFound(id.clone()))
                }
            }),
        };
        match outcome {
            Ok(()) => flash.done += 1,
            Err(error) => {
                tracing::warn!(recurring = %id, action = action.as_str(), %error, "dashboard action failed");
                flash.failed += 1;
            }
        }
    }
    Ok(redirect(&ctx, &form.back, flash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_stays_inside_the_dashboard() {
        assert_eq!(
            safe_back(Some("/jobs/failed?page=2")),
            "/jobs/failed?page=2"
        );
        for bad in [
            None,
            Some("//evil.example/"),
            Some("https://evil.example/"),
            Some("/\\evil"),
            Some("x"),
        ] {
            assert_eq!(safe_back(bad), "/", "{bad:?}");
        }
    }
}
