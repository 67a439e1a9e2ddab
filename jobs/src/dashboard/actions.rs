//! POST actions: requeue, enqueue now and delete jobs; trigger, pause, resume and remove
//! recurring jobs; pause, resume and set the limits of a queue.
//! Each takes the CSRF token, the page to go back to and what it acts on (the ticked ids,
//! `ids`, repeated; or one `queue`), and answers 303 See Other to that page with a flash
//! message.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::context::{RequestCtx, Shared};
use super::csrf;
use super::error::PageError;
use super::flash::{Action, Flash, Note, Tally, FLASH_COOKIE, MAX_NOTE_BYTES};
use super::format::{first_bytes, truncate};
use crate::flow::{QueueLimits, Rate};
use crate::job::JobId;
use crate::Error;

/// The most items one action may touch (a page shows at most 100).
const MAX_IDS: usize = 1000;

/// A parsed action form.
struct ActionForm {
    ids: Vec<String>,
    back: String,
    /// The other fields, in order.
    fields: Vec<(String, String)>,
}

impl ActionForm {
    /// The first value of field `name`, if the form has it.
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Parses the form and checks its CSRF token against the request's cookie.
fn read_form(shared: &Shared, ctx: &RequestCtx, body: &[u8]) -> Result<ActionForm, PageError> {
    let mut ids = Vec::new();
    let mut back = None;
    let mut token = None;
    let mut fields = Vec::new();
    for (key, value) in form_urlencoded::parse(body) {
        match &*key {
            "ids" => ids.push(value.into_owned()),
            "back" => back = Some(value.into_owned()),
            csrf::FIELD => token = Some(value.into_owned()),
            _ => fields.push((key.into_owned(), value.into_owned())),
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
        fields,
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

fn redirect(shared: &Shared, ctx: &RequestCtx, back: &str, flash: Flash) -> Response {
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
    let cookie = ctx.cookie(FLASH_COOKIE, &flash.to_cookie_value(&shared.csrf), Some(60));
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
    let mut tally = Tally::new(action);
    for id in ids {
        let outcome = match action {
            Action::Requeue | Action::Enqueue => shared.client.requeue(id).await,
            _ => shared.client.delete(id).await,
        };
        match outcome {
            Ok(_) => tally.done += 1,
            Err(error) => {
                tracing::warn!(job = %id, action = action.as_str(), %error, "dashboard action failed");
                tally.failed += 1;
            }
        }
    }
    Ok(redirect(&shared, &ctx, &form.back, Flash::Tally(tally)))
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
    let mut tally = Tally::new(action);
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
                    Err(Error::RecurringNotFound(id.clone()))
                }
            }),
        };
        match outcome {
            Ok(()) => tally.done += 1,
            Err(error) => {
                tracing::warn!(recurring = %id, action = action.as_str(), %error, "dashboard action failed");
                tally.failed += 1;
            }
        }
    }
    Ok(redirect(&shared, &ctx, &form.back, Flash::Tally(tally)))
}

/// An action on one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueueAction {
    Pause,
    Resume,
    Limits,
}

impl QueueAction {
    /// The action named `text` in the URL, if any.
    fn parse(text: &str) -> Option<QueueAction> {
        match text {
            "pause" => Some(QueueAction::Pause),
            "resume" => Some(QueueAction::Resume),
            "limits" => Some(QueueAction::Limits),
            _ => None,
        }
    }

    /// What it does to a queue, for "Could not … queue `x`".
    fn verb(self) -> &'static str {
        match self {
            QueueAction::Pause => "pause",
            QueueAction::Resume => "resume",
            QueueAction::Limits => "set the limits of",
        }
    }
}

/// The longest limit field read. A concurrency or a rate is a few characters; a longer one is
/// refused before parsing, so its error message (which repeats it) stays short.
const MAX_LIMIT_TEXT: usize = 64;

/// `POST /actions/queues/{pause|resume|limits}`: pauses or resumes the queue `queue`, or sets
/// its limits from `concurrency` (a whole number, empty for none) and `rate` (`count/period`
/// like `50/1s`, empty for none). Nothing is stored unless every field is valid and the queue
/// is known; the flash message says what was done or, in the library's words, why not.
pub(crate) async fn queues(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<RequestCtx>,
    Path(action): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let Some(action) = QueueAction::parse(&action) else {
        return Err(PageError::NotFound(format!("no queue action `{action}`")));
    };
    let form = read_form(&shared, &ctx, &body)?;
    let queue = form.field("queue").unwrap_or_default();
    let client = &shared.client;
    let outcome = match action {
        QueueAction::Pause => client.pause_queue(queue).await.map(|()| {
            format!("Paused queue `{queue}`: none of its jobs starts until it is resumed.")
        }),
        QueueAction::Resume => client
            .resume_queue(queue)
            .await
            .map(|()| format!("Resumed queue `{queue}`.")),
        QueueAction::Limits => match read_limits(&form) {
            Ok(limits) => client
                .set_queue_limits(queue, limits)
                .await
                .map(|()| limits_set(queue, limits)),
            Err(error) => Err(error),
        },
    };
    let note = match outcome {
        Ok(text) => Note::done(text),
        Err(error) => {
            tracing::warn!(queue = %truncate(queue, 100), action = action.verb(), %error, "dashboard action failed");
            Note::failed(failure(action, queue, &error))
        }
    };
    Ok(redirect(&shared, &ctx, &form.back, Flash::Note(note)))
}

/// The limits a form asks for. A field left empty removes that limit; a concurrency that is no
/// whole number is refused here, and everything else ([`QueueLimits::validate`], [`Rate`]'s
/// parser) is left to the library, so the dashboard says what the API would.
fn read_limits(form: &ActionForm) -> crate::Result<QueueLimits> {
    let field = |name| {
        form.field(name)
            .map(str::trim)
            .filter(|text| !text.is_empty())
    };
    let too_long = |what: &str| {
        Error::InvalidLimit(format!(
            "invalid {what}: at most {MAX_LIMIT_TEXT} characters"
        ))
    };
    let concurrency = field("concurrency")
        .map(|text| {
            if text.len() > MAX_LIMIT_TEXT {
                return Err(too_long("concurrency limit"));
            }
            text.parse::<u32>().map_err(|_| {
                Error::InvalidLimit(format!(
                    "invalid concurrency limit `{text}`: a whole number of at least 1, or \
                     nothing for no limit"
                ))
            })
        })
        .transpose()?;
    let rate = field("rate")
        .map(|text| {
            if text.len() > MAX_LIMIT_TEXT {
                return Err(too_long("rate"));
            }
            text.parse::<Rate>()
        })
        .transpose()?;
    Ok(QueueLimits { concurrency, rate })
}

/// What setting `limits` on `queue` did, in words.
fn limits_set(queue: &str, limits: QueueLimits) -> String {
    let mut set = Vec::new();
    if let Some(limit) = limits.concurrency {
        set.push(format!("at most {limit} running at once"));
    }
    if let Some(rate) = limits.rate {
        set.push(format!("at most {rate} started"));
    }
    if set.is_empty() {
        format!("Removed the limits of queue `{queue}`.")
    } else {
        format!("Set the limits of queue `{queue}`: {}.", set.join(", "))
    }
}

/// Why an action on `queue` failed, in words. Refusals of the request (an unknown queue, a
/// bad name or limit) are the library's message; a storage failure is logged, not shown, as
/// it may hold details of the database.
fn failure(action: QueueAction, queue: &str, error: &Error) -> String {
    let queue = truncate(queue, 100);
    let text = match error {
        Error::UnknownQueue(_) | Error::InvalidQueue(_) | Error::InvalidLimit(_) => {
            format!("Could not {} queue `{queue}`: {error}.", action.verb())
        }
        _ => format!(
            "Could not {} queue `{queue}`: the storage failed; see the log.",
            action.verb()
        ),
    };
    // Cut here, with an ellipsis, rather than by the cookie's silent cut.
    if text.len() > MAX_NOTE_BYTES {
        format!("{}…", first_bytes(&text, MAX_NOTE_BYTES - '…'.len_utf8()))
    } else {
        text
    }
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
