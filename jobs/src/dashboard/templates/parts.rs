//! Pieces pages are built of: badges, times, links to jobs, error blocks, action buttons and
//! forms, and the pager.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use crate::dashboard::context::RequestCtx;
use crate::dashboard::csrf;
use crate::dashboard::format::{absolute, relative};
use crate::dashboard::query::Paging;
use crate::job::{JobError, JobId, JobState};

/// A state's badge.
pub(crate) fn state_badge(state: JobState) -> Markup {
    html! { span.badge.{"state-" (state.as_str())} { (state) } }
}

/// A time: relative, with the absolute time as tooltip.
pub(crate) fn time(now: DateTime<Utc>, at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) title=(absolute(at)) { (relative(now, at)) } }
}

/// A time: absolute, then relative.
pub(crate) fn time_full(now: DateTime<Utc>, at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) { (absolute(at)) }
        " " span.muted { "(" (relative(now, at)) ")" }
    }
}

/// `#42`, linking to the job's page.
pub(crate) fn job_link(ctx: &RequestCtx, id: JobId) -> Markup {
    html! { a href=(ctx.url(&format!("/job/{id}"))) { "#" (id) } }
}

/// An error: its type, message and (folded) details.
pub(crate) fn error_block(error: &JobError) -> Markup {
    html! {
        div.error-block {
            div { strong.error-type { (error.type_name) } }
            div.error-message { (error.message) }
            @if let Some(details) = &error.details {
                details { summary { "Details" } pre.error-details { (details) } }
            }
        }
    }
}

/// The hidden fields every action form carries.
pub(crate) fn form_fields(ctx: &RequestCtx) -> Markup {
    html! {
        @if ctx.can_act {
            input type="hidden" name=(csrf::FIELD) value=(ctx.csrf_token);
            input type="hidden" name="back" value=(ctx.here);
        }
    }
}

/// One action button of a bulk form (`formaction` picks the action).
#[derive(Debug)]
pub(crate) struct Button {
    pub(crate) label: &'static str,
    pub(crate) path: &'static str,
    pub(crate) danger: bool,
    pub(crate) confirm: Option<&'static str>,
}

/// Requeue jobs.
pub(crate) const REQUEUE: Button = Button {
    label: "Requeue",
    path: "/actions/jobs/requeue",
    danger: false,
    confirm: None,
};
/// Requeue scheduled or awaiting jobs, under the name users expect there.
pub(crate) const ENQUEUE_NOW: Button = Button {
    label: "Enqueue now",
    path: "/actions/jobs/enqueue",
    danger: false,
    confirm: None,
};
/// Delete jobs.
pub(crate) const DELETE: Button = Button {
    label: "Delete",
    path: "/actions/jobs/delete",
    danger: true,
    confirm: Some("Delete the selected jobs?"),
};
/// Delete, on one job's page.
pub(crate) const DELETE_JOB: Button = Button {
    confirm: Some("Delete this job?"),
    ..DELETE
};

/// The buttons above a list, acting on its ticked rows.
pub(crate) fn action_bar(ctx: &RequestCtx, buttons: &[Button]) -> Markup {
    html! {
        @if ctx.can_act && !buttons.is_empty() {
            div.actions {
                @for button in buttons {
                    button.button.danger[button.danger] type="submit"
                        formaction=(ctx.url(button.path))
                        data-confirm=[button.confirm]
                        data-needs-selection { (button.label) }
                }
                span.muted { "on the selected rows" }
            }
        }
    }
}

/// One action on one item, as its own little form.
pub(crate) fn single_action(ctx: &RequestCtx, button: &Button, id: &str) -> Markup {
    html! {
        form.inline method="post" action=(ctx.url(button.path)) {
            (form_fields(ctx))
            input type="hidden" name="ids" value=(id);
            button.button.danger[button.danger] type="submit" data-confirm=[button.confirm] { (button.label) }
        }
    }
}

/// The pager under a list: page links and page sizes. `link(page, size)` builds a URL.
pub(crate) fn pager(paging: &Paging, link: impl Fn(usize, usize) -> String) -> Markup {
    let pages = paging.pages();
    let current = paging.page;
    let mut shown: Vec<usize> = [1, current.saturating_sub(2), current.saturating_sub(1)]
        .into_iter()
        .chain([current, current + 1, current + 2, pages])
        .filter(|page| (1..=pages).contains(page))
        .collect();
    shown.sort_unstable();
    shown.dedup();
    html! {
        nav.pager aria-label="Pages" {
            span.total { (paging.total) " total" }
            @if pages > 1 {
                @if current > 1 {
                    a.page href=(link(current - 1, paging.size)) rel="prev" { "‹ Prev" }
                }
                @for (i, page) in shown.iter().enumerate() {
                    @if i > 0 && shown[i - 1] + 1 != *page { span.gap { "…" } }
                    @if *page == current {
                        span.page.current aria-current="page" { (page) }
                    } @else {
                        a.page href=(link(*page, paging.size)) { (page) }
                    }
                }
                @if current < pages {
                    a.page href=(link(current + 1, paging.size)) rel="next" { "Next ›" }
                }
            }
            span.sizes {
                "Per page: "
                @for size in Paging::SIZES {
                    @if size == paging.size {
                        span.page.current { (size) }
                    } @else {
                        a.page href=(link(1, size)) { (size) }
                    }
                }
            }
        }
    }
}
