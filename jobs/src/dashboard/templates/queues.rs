//! The queues page: each queue's jobs per state, the servers that serve it, its limits and
//! whether it is paused, with pause, resume and a form to set its limits.

use maud::{html, Markup};

use super::layout::{JobsNav, Section, View};
use super::parts::form_fields;
use crate::dashboard::context::RequestCtx;
use crate::dashboard::format::enc;
use crate::flow::QueueLimits;
use crate::job::JobState;

/// The states counted per queue, in the order of their columns: those a queue's jobs wait or
/// run in, and Failed (what needs a look); the final states grow without bound and are left
/// out.
pub(crate) const COUNTED: [JobState; 5] = [
    JobState::Enqueued,
    JobState::Scheduled,
    JobState::Awaiting,
    JobState::Processing,
    JobState::Failed,
];

/// What the queues page shows.
#[derive(Debug)]
pub(crate) struct Queues {
    /// Every known queue (with jobs, settings or a server, or named by a job), by name.
    pub(crate) queues: Vec<QueueRow>,
}

/// One queue.
#[derive(Debug)]
pub(crate) struct QueueRow {
    /// Its name.
    pub(crate) name: String,
    /// Its jobs in each state of [`COUNTED`], in that order.
    pub(crate) counts: [u64; COUNTED.len()],
    /// How many servers serve it.
    pub(crate) servers: usize,
    /// Whether it is paused.
    pub(crate) paused: bool,
    /// Its limits.
    pub(crate) limits: QueueLimits,
}

impl View for Queues {
    fn title(&self) -> String {
        "Queues".to_owned()
    }

    fn section(&self) -> Section {
        Section::Jobs(JobsNav::State(JobState::Enqueued))
    }

    fn content(&self, ctx: &RequestCtx) -> Markup {
        html! {
            h1 { "Queues" }
            p.muted {
                "A paused queue starts none of its jobs until it is resumed. Limits hold across \
                 every server: at most so many of the queue's jobs running at once, at most so \
                 many started per period (a rate like 50/1s or 100/1m)."
            }
            @if self.queues.is_empty() {
                p.empty { "No queue has jobs, and no server is running." }
            } @else {
                div.table-scroll { table.jobs.queues {
                    thead {
                        tr {
                            th { "Queue" }
                            @for state in COUNTED { th.num { (state) } }
                            th { "Served by" }
                            th.num { "Concurrency" }
                            th { "Rate" }
                            th { "Status" }
                            @if ctx.can_act { th { "Actions" } }
                        }
                    }
                    tbody {
                        @for row in &self.queues {
                            (queue_row(ctx, row))
                        }
                    }
                } }
            }
        }
    }
}

/// A queue's row, with its forms when the user may act.
fn queue_row(ctx: &RequestCtx, row: &QueueRow) -> Markup {
    let QueueRow {
        name,
        counts,
        servers,
        paused,
        limits,
    } = row;
    let none = html! { span.muted { "none" } };
    let (toggle_path, toggle_label) = if *paused {
        ("/actions/queues/resume", "Resume")
    } else {
        ("/actions/queues/pause", "Pause")
    };
    html! {
        tr data-queue=(name) {
            td { a href=(ctx.url(&format!("/jobs/enqueued/{}", enc(name)))) { (name) } }
            @for count in counts { td.num { (count) } }
            td {
                @if *servers == 0 {
                    span.warning { "no server serves this queue: its jobs wait" }
                } @else {
                    (servers) (if *servers == 1 { " server" } else { " servers" })
                }
            }
            td.num.concurrency { @if let Some(limit) = limits.concurrency { (limit) } @else { (none) } }
            td.rate { @if let Some(rate) = limits.rate { (rate) } @else { (none) } }
            td.status {
                @if *paused { span.badge.paused { "Paused" } } @else { span.badge.active { "Active" } }
            }
            @if ctx.can_act {
                td { div.queue-actions {
                    form.inline method="post" action=(ctx.url(toggle_path)) {
                        (form_fields(ctx))
                        input type="hidden" name="queue" value=(name);
                        button.button.toggle type="submit" { (toggle_label) }
                    }
                    form.limits method="post" action=(ctx.url("/actions/queues/limits")) {
                        (form_fields(ctx))
                        input type="hidden" name="queue" value=(name);
                        label {
                            "Concurrency"
                            input type="number" name="concurrency" min="1" step="1"
                                value=[limits.concurrency] placeholder="none";
                        }
                        label {
                            "Rate"
                            input type="text" name="rate" value=[limits.rate.map(|rate| rate.to_string())]
                                placeholder="e.g. 50/1s" spellcheck="false" autocomplete="off";
                        }
                        button.button type="submit" { "Set limits" }
                    }
                } }
            }
        }
    }
}
