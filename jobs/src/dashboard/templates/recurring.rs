//! The recurring jobs page: each recurring job's schedule, job, next and last run and status,
//! with trigger, pause, resume and remove.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::layout::{Section, View};
use super::parts::{action_bar, form_fields, job_link, pager, state_badge, time, Button};
use crate::dashboard::context::RequestCtx;
use crate::dashboard::format::{enc, truncate};
use crate::dashboard::query::{Filters, Paging};
use crate::storage::RecurringJob;

const TRIGGER: Button = Button {
    label: "Trigger now",
    path: "/actions/recurring/trigger",
    danger: false,
    confirm: None,
};
const PAUSE: Button = Button {
    label: "Pause",
    path: "/actions/recurring/pause",
    danger: false,
    confirm: None,
};
const RESUME: Button = Button {
    label: "Resume",
    path: "/actions/recurring/resume",
    danger: false,
    confirm: None,
};
const REMOVE: Button = Button {
    label: "Remove",
    path: "/actions/recurring/remove",
    danger: true,
    confirm: Some("Remove the selected recurring jobs? Jobs they already fired stay."),
};

/// What the recurring jobs page shows.
#[derive(Debug)]
pub(crate) struct Recurring {
    /// The time the page is rendered at.
    pub(crate) now: DateTime<Utc>,
    /// The search (`q`).
    pub(crate) filters: Filters,
    /// The page of the matching recurring jobs shown.
    pub(crate) paging: Paging,
    /// The recurring jobs on this page.
    pub(crate) jobs: Vec<RecurringJob>,
}

impl View for Recurring {
    fn title(&self) -> String {
        "Recurring jobs".to_owned()
    }

    fn section(&self) -> Section {
        Section::Recurring
    }

    fn content(&self, ctx: &RequestCtx) -> Markup {
        let Recurring {
            now,
            filters,
            paging,
            jobs,
        } = self;
        let now = *now;
        let buttons = [TRIGGER, PAUSE, RESUME, REMOVE];
        html! {
            h1 { "Recurring jobs" }
            form.search method="get" action=(ctx.url("/recurring")) role="search" {
                label { "Id or job name " input type="search" name="q" value=[filters.q.as_deref()] placeholder="contains…"; }
                button.button type="submit" { "Search" }
                @if filters.is_active() { a.clear href=(ctx.url("/recurring")) { "Clear" } }
            }
            @if jobs.is_empty() {
                p.empty { (if filters.is_active() { "No recurring job matches." } else { "There are no recurring jobs." }) }
            } @else {
                form.list method="post" action=(ctx.url(TRIGGER.path)) {
                    (form_fields(ctx))
                    (action_bar(ctx, &buttons))
                    div.table-scroll { table.jobs.recurring {
                        thead {
                            tr {
                                @if ctx.can_act { th.check { input type="checkbox" data-select-all aria-label="Select all"; } }
                                th { "Id" } th { "Schedule" } th { "Job" } th { "Next run" } th { "Last run" } th { "Status" } th { "Created" }
                            }
                        }
                        tbody {
                            @for job in jobs {
                                tr id=(format!("recurring-{}", enc(&job.id))) {
                                    @if ctx.can_act {
                                        td.check { input type="checkbox" name="ids" value=(job.id) aria-label=(format!("Select {}", job.id)); }
                                    }
                                    td { strong { (job.id) } }
                                    td {
                                        code { (job.cron) }
                                        div.muted { (crate::Cron::from(job.cron.as_str()).describe()) }
                                        div.muted { (job.time_zone) }
                                    }
                                    td {
                                        (job.job_name)
                                        div.muted { "queue " (job.queue) }
                                        code.args title=(truncate(&job.args, 1000)) { (truncate(&job.args, 60)) }
                                    }
                                    td.time {
                                        @if job.paused { span.muted { "paused" } }
                                        @else if let Some(at) = job.next_run { (time(now, at)) }
                                        @else { span.muted { "never" } }
                                    }
                                    td.time {
                                        @if let Some(at) = job.last_run { (time(now, at)) " " }
                                        @if let Some(id) = job.last_job_id { (job_link(ctx, id)) " " }
                                        @if let Some(state) = job.last_job_state { (state_badge(state)) }
                                        @if job.last_run.is_none() && job.last_job_id.is_none() { span.muted { "never" } }
                                    }
                                    td {
                                        @if job.paused { span.badge.paused { "Paused" } } @else { span.badge.active { "Active" } }
                                        @if let Some(error) = &job.last_error { div.warning title=(error) { (truncate(error, 80)) } }
                                    }
                                    td.time { (time(now, job.created_at)) }
                                }
                            }
                        }
                    } }
                }
                (pager(paging, |page, size| filters.link(ctx, "/recurring", page, size)))
            }
        }
    }
}
