//! One job's page: its facts, arguments, result, error, continuations and history.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::layout::{JobsNav, Section, View};
use super::parts::{
    error_block, job_link, single_action, state_badge, time_full, DELETE_JOB, ENQUEUE_NOW, REQUEUE,
};
use crate::dashboard::context::RequestCtx;
use crate::dashboard::format::{
    absolute, continue_on_words, duration_ms, enc, first_bytes, pretty_json, size,
};
use crate::job::{JobId, JobState};
use crate::storage::{JobRecord, StateData};

/// How much of a job's arguments its page shows (64 KiB); the whole is a link away, so a
/// page stays quick to load and render however large they are.
const ARGUMENTS_SHOWN: usize = 64 * 1024;

/// What a job's page shows.
#[derive(Debug)]
pub(crate) struct JobPage {
    /// The time the page is rendered at.
    pub(crate) now: DateTime<Utc>,
    /// The job, with its history.
    pub(crate) job: JobRecord,
    /// Its parent, if it is a continuation and the parent still exists.
    pub(crate) parent: Option<JobRecord>,
    /// Its continuations that still exist (the first 100), by id.
    pub(crate) children: HashMap<JobId, JobRecord>,
    /// Why its server may have died, when it is Processing on a server that looks dead.
    pub(crate) server_warning: Option<String>,
}

impl View for JobPage {
    fn title(&self) -> String {
        format!("Job #{} {}", self.job.id, self.job.name)
    }

    fn section(&self) -> Section {
        Section::Jobs(JobsNav::State(self.job.state))
    }

    fn live_job(&self) -> Option<(JobId, JobState)> {
        Some((self.job.id, self.job.state))
    }

    fn content(&self, ctx: &RequestCtx) -> Markup {
        let JobPage {
            now,
            job,
            parent,
            children,
            server_warning,
        } = self;
        let now = *now;
        html! {
            div.job-title {
                h1 { "Job #" (job.id) " " span.job-name { (job.name) } }
                span #job-state { (state_badge(job.state)) }
            }
            @if let Some(warning) = server_warning {
                p.flash.error { "This job is Processing, but " (warning) "." }
            }
            @if ctx.can_act {
                div.actions {
                    @if job.state != JobState::Enqueued {
                        (single_action(ctx, if job.state == JobState::Scheduled || job.state == JobState::Awaiting { &ENQUEUE_NOW } else { &REQUEUE }, &job.id.to_string()))
                    }
                    @if job.state != JobState::Deleted {
                        (single_action(ctx, &DELETE_JOB, &job.id.to_string()))
                    }
                }
            }
            dl.facts {
                dt { "Queue" } dd { a href=(ctx.url(&format!("/jobs/enqueued/{}", enc(&job.queue)))) { (job.queue) } }
                dt { "Priority" } dd { (job.priority) @if job.priority == crate::DEFAULT_PRIORITY { " (default)" } }
                dt { "Created" } dd { (time_full(now, job.created_at)) }
                dt { "In this state since" } dd { (time_full(now, job.state_at)) }
                @if let Some(at) = job.run_at { dt { "Enqueue at" } dd { (time_full(now, at)) } }
                @if job.retry_count > 0 { dt { "Failed attempts" } dd { (job.retry_count) } }
                @if let Some(server) = &job.server_id { dt { "Server" } dd { (server) } }
                @if let Some(key) = &job.unique_key {
                    dt { "Unique key" }
                    dd {
                        code.key { (key) } " "
                        a.muted href=(format!("{}?key={}", ctx.url("/jobs/search"), enc(key))) { "jobs with this key" }
                    }
                }
                @if let Some(mutex) = &job.mutex { dt { "Mutex" } dd { code.key { (mutex) } } }
                @if let Some(recurring) = &job.recurring_id {
                    dt { "Fired by" } dd { a href=(format!("{}?q={}", ctx.url("/recurring"), enc(recurring))) { "recurring job " (recurring) } }
                }
                @if let Some(parent_id) = job.parent {
                    dt { "Parent" }
                    dd {
                        (job_link(ctx, parent_id)) " "
                        @if let Some(parent) = parent { (parent.name) " " (state_badge(parent.state)) " " }
                        @if let Some(on) = job.continue_on { span.muted { "runs " (continue_on_words(on)) } }
                    }
                }
            }
            h2 { "Arguments" }
            @let arguments = pretty_json(&job.args);
            @let shown = first_bytes(&arguments, ARGUMENTS_SHOWN);
            pre.json { (shown) }
            @if shown.len() < arguments.len() {
                p.muted {
                    "Only the first " (size(ARGUMENTS_SHOWN)) " of the arguments (" (size(arguments.len())) ") are shown. "
                    a href=(ctx.url(&format!("/job/{}/arguments.json", job.id))) { "The whole arguments, as JSON" }
                }
            }
            @if let Some(result) = &job.result {
                h2 { "Result" }
                pre.json { (serde_json::to_string_pretty(result).unwrap_or_default()) }
            }
            @if let Some(error) = &job.error {
                h2 { (if job.state == JobState::Failed { "Error" } else { "Last error (of an earlier attempt)" }) }
                (error_block(error))
            }
            @if !job.children.is_empty() {
                h2 { "Continuations" }
                div.table-scroll { table.jobs {
                    thead { tr { th { "Id" } th { "Job" } th { "State" } } }
                    tbody {
                        @for child in &job.children {
                            tr {
                                td { (job_link(ctx, *child)) }
                                @if let Some(record) = children.get(child) {
                                    td { (record.name) } td { (state_badge(record.state)) }
                                } @else {
                                    td.muted colspan="2" { "removed" }
                                }
                            }
                        }
                    }
                } }
            }
            h2 { "History" }
            ol.history reversed {
                @for entry in job.history.iter().rev() {
                    li.{"entry-" (entry.state.as_str())} {
                        div.entry-head {
                            (state_badge(entry.state)) " "
                            (time_full(now, entry.at))
                        }
                        @if let Some(reason) = &entry.reason { div.reason { (reason) } }
                        (state_data(ctx, now, &entry.data))
                    }
                }
            }
        }
    }
}

/// What a history entry recorded.
fn state_data(ctx: &RequestCtx, now: DateTime<Utc>, data: &StateData) -> Markup {
    html! {
        dl.data {
            @if let Some(server) = &data.server { dt { "Server" } dd { (server) } }
            @if let Some(attempt) = data.attempt { dt { "Attempt" } dd { (attempt) } }
            @if let Some(ms) = data.duration_ms { dt { "Duration" } dd { (duration_ms(ms)) } }
            @if let Some(ms) = data.latency_ms { dt { "Latency" } dd { (duration_ms(ms)) } }
            @if let Some(queue) = &data.queue { dt { "Queue" } dd { (queue) } }
            @if let Some(at) = data.run_at { dt { "Enqueue at" } dd { (time_full(now, at)) } }
            @if let Some(parent) = data.parent { dt { "Parent" } dd { (job_link(ctx, parent)) } }
            @if let Some(at) = data.occurrence { dt { "Occurrence" } dd { (absolute(at)) } }
            @if let Some(result) = &data.result {
                dt { "Result" } dd { pre.json { (serde_json::to_string_pretty(result).unwrap_or_default()) } }
            }
            @if let Some(error) = &data.error { dt { "Error" } dd { (error_block(error)) } }
        }
    }
}
