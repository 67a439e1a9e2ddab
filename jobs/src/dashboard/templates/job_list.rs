//! A list of jobs (by state, in a queue, retries, search): the search form, the table with
//! its checkboxes and action buttons, and the pager.
//!
//! Every list has the same frame; what differs is held as data in [`JobList`]: the columns
//! after Id and Job, and a [`Cell`] per column and row.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::layout::{JobsNav, Section, View};
use super::parts::{
    action_bar, error_block, form_fields, job_link, pager, state_badge, time, Button,
};
use crate::dashboard::context::RequestCtx;
use crate::dashboard::format::{continue_on_words, duration_ms, truncate};
use crate::dashboard::query::{Filters, Paging};
use crate::job::{JobError, JobId, JobState};
use crate::storage::{ContinueOn, JobRecord};

/// What a list page shows.
#[derive(Debug)]
pub(crate) struct JobList {
    /// The sidebar entry the list belongs to.
    pub(crate) nav: JobsNav,
    /// The heading and title.
    pub(crate) title: String,
    /// The list's path inside the dashboard (for the search form and the pager).
    pub(crate) path: String,
    /// What comes under the heading.
    pub(crate) intro: Intro,
    /// Whether the search form offers a state.
    pub(crate) with_state_filter: bool,
    /// The request's filters.
    pub(crate) filters: Filters,
    /// The page shown.
    pub(crate) paging: Paging,
    /// The time the page is rendered at.
    pub(crate) now: DateTime<Utc>,
    /// The jobs and what is shown of them.
    pub(crate) table: Table,
}

/// What comes under a list's heading.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Intro {
    /// Nothing.
    None,
    /// A link back to all queues.
    AllQueues,
    /// A note on what the list holds.
    Note(&'static str),
}

/// A list's table: its own columns, its rows, its buttons and what it says when empty.
#[derive(Debug)]
pub(crate) struct Table {
    /// The columns after Id and Job.
    pub(crate) columns: &'static [Column],
    /// One row per job.
    pub(crate) rows: Vec<Row>,
    /// The actions on ticked rows.
    pub(crate) buttons: &'static [Button],
    /// What the list says when it has no job and no filter is set.
    pub(crate) empty: &'static str,
}

/// A column of a list.
#[derive(Debug)]
pub(crate) struct Column {
    /// Its heading.
    pub(crate) title: &'static str,
    /// The class of its cells ("time", "num", "error" or none).
    pub(crate) class: &'static str,
}

impl Column {
    /// A column headed `title` whose cells have class `class`.
    pub(crate) const fn new(title: &'static str, class: &'static str) -> Column {
        Column { title, class }
    }
}

/// A job in a list: id, name, arguments, then a cell per column.
#[derive(Debug)]
pub(crate) struct Row {
    /// The job's id.
    pub(crate) id: JobId,
    /// The job's name.
    pub(crate) name: String,
    /// The job's arguments (shown shortened).
    pub(crate) args: String,
    /// A cell per column of the list.
    pub(crate) cells: Vec<Cell>,
}

impl Row {
    /// The row of `job`, with `cells`.
    pub(crate) fn new(job: &JobRecord, cells: Vec<Cell>) -> Row {
        Row {
            id: job.id,
            name: job.name.clone(),
            args: job.args.clone(),
            cells,
        }
    }
}

/// What a cell shows.
#[derive(Debug)]
pub(crate) enum Cell {
    /// Nothing.
    Empty,
    /// Text as it is (a queue, a reason).
    Text(String),
    /// A number.
    Count(u64),
    /// A time, relative to now.
    Time(DateTime<Utc>),
    /// A duration, in milliseconds.
    Duration(u64),
    /// A state's badge.
    State(JobState),
    /// A job's result, shortened.
    Result(serde_json::Value),
    /// An error.
    Error(JobError),
    /// The server running a job, and why it may have died.
    Server {
        /// The server's id.
        id: String,
        /// Set when the server looks dead.
        warning: Option<String>,
    },
    /// A continuation's parent: its id and, while it exists, its name and state.
    Parent {
        /// The parent's id.
        id: JobId,
        /// The parent's name and state, unless it was removed.
        found: Option<(String, JobState)>,
    },
    /// When a continuation runs.
    ContinueOn(ContinueOn),
}

impl Cell {
    /// A time, or nothing.
    pub(crate) fn time(at: Option<DateTime<Utc>>) -> Cell {
        at.map_or(Cell::Empty, Cell::Time)
    }

    /// Text, or nothing.
    pub(crate) fn text(text: Option<String>) -> Cell {
        text.map_or(Cell::Empty, Cell::Text)
    }

    fn render(&self, ctx: &RequestCtx, now: DateTime<Utc>) -> Markup {
        match self {
            Cell::Empty => html! {},
            Cell::Text(text) => html! { (text) },
            Cell::Count(count) => html! { (count) },
            Cell::Time(at) => time(now, *at),
            Cell::Duration(ms) => html! { (duration_ms(*ms)) },
            Cell::State(state) => state_badge(*state),
            Cell::Result(result) => html! { code { (truncate(&result.to_string(), 60)) } },
            Cell::Error(error) => error_block(error),
            Cell::Server { id, warning } => html! {
                span.server { (id) }
                @if let Some(warning) = warning {
                    " " span.warning title=(warning) { "possibly aborted" }
                }
            },
            Cell::Parent { id, found } => html! {
                (job_link(ctx, *id)) " "
                @if let Some((name, state)) = found {
                    (name) " " (state_badge(*state))
                }
            },
            Cell::ContinueOn(on) => html! { (continue_on_words(*on)) },
        }
    }
}

impl View for JobList {
    fn title(&self) -> String {
        self.title.clone()
    }

    fn section(&self) -> Section {
        Section::Jobs(self.nav)
    }

    fn content(&self, ctx: &RequestCtx) -> Markup {
        let JobList {
            path,
            filters,
            paging,
            table,
            ..
        } = self;
        let selectable = ctx.can_act && !table.buttons.is_empty();
        html! {
            h1 { (self.title) }
            @match self.intro {
                Intro::None => {}
                Intro::AllQueues => { p { a href=(ctx.url("/jobs/enqueued")) { "‹ All queues" } } }
                Intro::Note(note) => { p.muted { (note) } }
            }
            form.search method="get" action=(ctx.url(path)) role="search" {
                label { "Job name " input type="search" name="name" value=[filters.name.as_deref()] placeholder="contains…"; }
                label { "Arguments " input type="search" name="args" value=[filters.args.as_deref()] placeholder="contains…"; }
                label { "Unique key " input type="search" name="key" value=[filters.key.as_deref()] placeholder="contains…"; }
                @if self.with_state_filter {
                    label { "State "
                        select name="state" {
                            option value="" { "any" }
                            @for state in JobState::ALL {
                                option value=(state.as_str()) selected[filters.state == Some(state)] { (state) }
                            }
                        }
                    }
                }
                @if paging.size != 20 { input type="hidden" name="size" value=(paging.size); }
                button.button type="submit" { "Search" }
                @if filters.is_active() {
                    a.clear href=(ctx.url(path)) { "Clear" }
                }
            }
            @if table.rows.is_empty() {
                p.empty { (if filters.is_active() { "No job matches." } else { table.empty }) }
                @if paging.page > 1 { (pager(paging, |page, size| filters.link(ctx, path, page, size))) }
            } @else {
                form.list method="post" action=(ctx.url(table.buttons.first().map_or("/", |b| b.path))) {
                    (form_fields(ctx))
                    (action_bar(ctx, table.buttons))
                    div.table-scroll { table.jobs {
                        thead {
                            tr {
                                @if selectable {
                                    th.check { input type="checkbox" data-select-all aria-label="Select all"; }
                                }
                                th { "Id" }
                                th { "Job" }
                                @for column in table.columns { th.(column.class) { (column.title) } }
                            }
                        }
                        tbody {
                            @for row in &table.rows {
                                tr {
                                    @if selectable {
                                        td.check { input type="checkbox" name="ids" value=(row.id) aria-label=(format!("Select job {}", row.id)); }
                                    }
                                    td.id { (job_link(ctx, row.id)) }
                                    td.job {
                                        a.name href=(ctx.url(&format!("/job/{}", row.id))) { (row.name) }
                                        code.args title=(truncate(&row.args, 1000)) { (truncate(&row.args, 80)) }
                                    }
                                    @for (column, cell) in table.columns.iter().zip(&row.cells) {
                                        td.(column.class) { (cell.render(ctx, self.now)) }
                                    }
                                }
                            }
                        }
                    } }
                }
                (pager(paging, |page, size| filters.link(ctx, path, page, size)))
            }
        }
    }
}
