//! GET handlers: every page, the JSON endpoints and the embedded assets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use super::context::{RequestCtx, Shared};
use super::error::{PageError, PageResult};
use super::views::{
    self, absolute, action_bar, duration_ms, enc, first_bytes, form_fields, history_graph, pager,
    pretty_json, single_action, size, state_badge, time, time_full, truncate, Button, JobsNav,
    Page, Paging, Section, DELETE, DELETE_JOB, ENQUEUE_NOW, REQUEUE,
};
use crate::job::{JobError, JobId, JobState};
use crate::storage::{
    ContinueOn, Granularity, HistoryEntry, JobQuery, JobRecord, RecurringJob, ServerRecord,
    StateCounts, StateData,
};

/// A server whose last heartbeat is older than this is shown as possibly aborted.
const STALE_AFTER: TimeDelta = TimeDelta::minutes(1);

/// How much of a job's arguments its page shows (64 KiB); the whole is a link away, so a
/// page stays quick to load and render however large they are.
const ARGUMENTS_SHOWN: usize = 64 * 1024;

/// The query parameters pages understand. All optional; bad values fall back to defaults.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Params {
    page: Option<String>,
    size: Option<String>,
    name: Option<String>,
    args: Option<String>,
    state: Option<String>,
    q: Option<String>,
}

/// The list filters of a request.
#[derive(Debug, Clone, Default)]
struct Filters {
    name: Option<String>,
    args: Option<String>,
    state: Option<JobState>,
    q: Option<String>,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .map(|v| truncate(&v, 200))
}

impl Params {
    fn split(self, total: u64) -> (Filters, Paging) {
        let size = self
            .size
            .and_then(|s| s.parse().ok())
            .filter(|s| Paging::SIZES.contains(s))
            .unwrap_or(20);
        let page = self
            .page
            .and_then(|p| p.parse::<usize>().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
            .min(1_000_000);
        let filters = Filters {
            name: non_empty(self.name),
            args: non_empty(self.args),
            state: self.state.and_then(|s| s.parse().ok()),
            q: non_empty(self.q),
        };
        (filters, Paging { page, size, total })
    }
}

impl Filters {
    fn is_active(&self) -> bool {
        self.name.is_some() || self.args.is_some() || self.state.is_some() || self.q.is_some()
    }

    /// `path?…` with these filters and the page.
    fn link(&self, ctx: &RequestCtx, path: &str, page: usize, size: usize) -> String {
        let mut query = Vec::new();
        for (key, value) in [
            ("name", self.name.as_deref()),
            ("args", self.args.as_deref()),
            ("state", self.state.map(JobState::as_str)),
            ("q", self.q.as_deref()),
        ] {
            if let Some(value) = value {
                query.push(format!("{key}={}", enc(value)));
            }
        }
        if page > 1 {
            query.push(format!("page={page}"));
        }
        if size != 20 {
            query.push(format!("size={size}"));
        }
        if query.is_empty() {
            ctx.url(path)
        } else {
            format!("{}?{}", ctx.url(path), query.join("&"))
        }
    }
}

async fn counts(shared: &Shared) -> Result<StateCounts, PageError> {
    Ok(shared.client.storage().counts().await?)
}

fn job_link(ctx: &RequestCtx, id: JobId) -> Markup {
    html! { a href=(ctx.url(&format!("/job/{id}"))) { "#" (id) } }
}

fn error_block(error: &JobError) -> Markup {
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

fn continue_on_words(on: ContinueOn) -> &'static str {
    match on {
        ContinueOn::Succeeded => "when its parent succeeds",
        ContinueOn::AnyFinished => "when its parent finishes",
        ContinueOn::Failed => "when its parent fails",
    }
}

/// Servers by id, and whether each looks alive.
struct ServerHealth {
    now: DateTime<Utc>,
    heartbeats: HashMap<String, DateTime<Utc>>,
}

impl ServerHealth {
    fn new(now: DateTime<Utc>, servers: &[ServerRecord]) -> Self {
        ServerHealth {
            now,
            heartbeats: servers
                .iter()
                .map(|s| (s.info.id.clone(), s.heartbeat_at))
                .collect(),
        }
    }

    /// A warning for a job held by `server`, if that server looks dead.
    fn warning(&self, server: &str) -> Option<String> {
        match self.heartbeats.get(server) {
            None => Some(
                "its server is gone: the job will be taken again once its lease lapses".to_owned(),
            ),
            Some(at) if self.now.signed_duration_since(*at) > STALE_AFTER => Some(format!(
                "its server's last heartbeat was {}: it may have died",
                views::relative(self.now, *at)
            )),
            Some(_) => None,
        }
    }
}

// ---- overview ---------------------------------------------------------------------------------

/// `GET /`.
pub(crate) async fn overview(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<RequestCtx>,
) -> PageResult {
    let storage = shared.client.storage();
    let counts = counts(&shared).await?;
    let now = shared.client.now();
    let hour = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
    let day = now.duration_trunc(TimeDelta::days(1)).unwrap_or(now);
    let hourly = storage
        .statistics(
            Granularity::Hour,
            hour - TimeDelta::hours(23),
            hour + TimeDelta::hours(1),
        )
        .await?;
    let daily = storage
        .statistics(
            Granularity::Day,
            day - TimeDelta::days(6),
            day + TimeDelta::days(1),
        )
        .await?;
    let card = |key: &str, label: &str, count: u64, href: String| {
        html! {
            a.card.{"card-" (key)} href=(href) {
                span.card-count data-count=(key) { (count) }
                span.card-label { (label) }
            }
        }
    };
    let content = html! {
        h1 { "Overview" }
        section.cards aria-label="Jobs per state" {
            @for state in JobState::ALL {
                (card(state.as_str(), &state.to_string(), counts.get(state), ctx.url(&format!("/jobs/{}", state.as_str()))))
            }
            (card("retries", "Retries", counts.retries, ctx.url("/jobs/retries")))
            (card("recurring", "Recurring", counts.recurring, ctx.url("/recurring")))
            (card("servers", "Servers", counts.servers, ctx.url("/servers")))
        }
        section.graphs {
            figure.graph {
                figcaption {
                    strong { "Realtime" } " "
                    span.legend.succeeded { "succeeded" } " "
                    span.legend.failed { "failed attempts" } " "
                    span.legend-note { "per poll" }
                }
                canvas #realtime width="720" height="200" aria-label="Jobs succeeded and attempts failed per poll" {}
                noscript { p.muted { "The realtime graph needs JavaScript; the history below does not." } }
            }
            (history_graph("Last 24 hours", &hourly, |at| at.format("%H:00").to_string()))
            (history_graph("Last 7 days", &daily, |at| at.format("%a %d").to_string()))
        }
    };
    Ok(Page {
        ctx: &ctx,
        shared: &shared,
        counts: &counts,
        section: Section::Overview,
        title: "Overview".to_owned(),
        live_job: None,
    }
    .render(content))
}

/// `GET /stats.json`: counts for the live refresh, and today's succeeded and failed totals
/// (the realtime graph plots their increase between polls).
pub(crate) async fn stats_json(State(shared): State<Arc<Shared>>) -> Result<Response, PageError> {
    let counts = counts(&shared).await?;
    let now = shared.client.now();
    let day = now.duration_trunc(TimeDelta::days(1)).unwrap_or(now);
    let today = shared
        .client
        .storage()
        .statistics(Granularity::Day, day, day + TimeDelta::days(1))
        .await?;
    let mut by_key = serde_json::Map::new();
    for state in JobState::ALL {
        by_key.insert(state.as_str().to_owned(), counts.get(state).into());
    }
    by_key.insert("retries".to_owned(), counts.retries.into());
    by_key.insert("recurring".to_owned(), counts.recurring.into());
    by_key.insert("servers".to_owned(), counts.servers.into());
    let body = serde_json::json!({
        "at": now.to_rfc3339(),
        "counts": by_key,
        "today": {
            "succeeded": today.iter().map(|p| p.succeeded).sum::<u64>(),
            "failed": today.iter().map(|p| p.failed).sum::<u64>(),
        },
    });
    Ok(Json(body).into_response())
}

/// `GET /assets/dashboard.css`.
pub(crate) async fn css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("assets/dashboard.css"),
    )
}

/// `GET /assets/dashboard.js`.
pub(crate) async fn js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/dashboard.js"),
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

// ---- job lists --------------------------------------------------------------------------------

/// A column of a job list.
struct Column<'a> {
    title: &'static str,
    class: &'static str,
    cell: Box<dyn Fn(&JobRecord) -> Markup + 'a>,
}

fn column<'a>(
    title: &'static str,
    class: &'static str,
    cell: impl Fn(&JobRecord) -> Markup + 'a,
) -> Column<'a> {
    Column {
        title,
        class,
        cell: Box::new(cell),
    }
}

/// What a list page shows.
struct List<'a> {
    nav: JobsNav,
    title: String,
    path: String,
    intro: Option<Markup>,
    with_state_filter: bool,
    columns: Vec<Column<'a>>,
    buttons: &'a [Button],
    empty: &'static str,
}

#[allow(clippy::too_many_arguments)]
fn render_list(
    shared: &Shared,
    ctx: &RequestCtx,
    counts: &StateCounts,
    list: List<'_>,
    filters: &Filters,
    paging: &Paging,
    jobs: &[JobRecord],
) -> Markup {
    let selectable = ctx.can_act && !list.buttons.is_empty();
    let content = html! {
        h1 { (list.title) }
        @if let Some(intro) = &list.intro { (intro) }
        form.search method="get" action=(ctx.url(&list.path)) role="search" {
            label { "Job name " input type="search" name="name" value=[filters.name.as_deref()] placeholder="contains…"; }
            label { "Arguments " input type="search" name="args" value=[filters.args.as_deref()] placeholder="contains…"; }
            @if list.with_state_filter {
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
                a.clear href=(ctx.url(&list.path)) { "Clear" }
            }
        }
        @if jobs.is_empty() {
            p.empty { (if filters.is_active() { "No job matches." } else { list.empty }) }
            @if paging.page > 1 { (pager(paging, |page, size| filters.link(ctx, &list.path, page, size))) }
        } @else {
            form.list method="post" action=(ctx.url(list.buttons.first().map_or("/", |b| b.path))) {
                (form_fields(ctx))
                (action_bar(ctx, list.buttons))
                div.table-scroll { table.jobs {
                    thead {
                        tr {
                            @if selectable {
                                th.check { input type="checkbox" data-select-all aria-label="Select all"; }
                            }
                            th { "Id" }
                            th { "Job" }
                            @for column in &list.columns { th.(column.class) { (column.title) } }
                        }
                    }
                    tbody {
                        @for job in jobs {
                            tr {
                                @if selectable {
                                    td.check { input type="checkbox" name="ids" value=(job.id) aria-label=(format!("Select job {}", job.id)); }
                                }
                                td.id { (job_link(ctx, job.id)) }
                                td.job {
                                    a.name href=(ctx.url(&format!("/job/{}", job.id))) { (job.name) }
                                    code.args title=(truncate(&job.args, 1000)) { (truncate(&job.args, 80)) }
                                }
                                @for column in &list.columns { td.(column.class) { ((column.cell)(job)) } }
                            }
                        }
                    }
                } }
            }
            (pager(paging, |page, size| filters.link(ctx, &list.path, page, size)))
        }
    };
    Page {
        ctx,
        shared,
        counts,
        section: Section::Jobs(list.nav),
        title: list.title,
        live_job: None,
    }
    .render(content)
}

/// Runs `query` with the request's filters and paging.
async fn fetch_page(
    shared: &Shared,
    params: Params,
    mut query: JobQuery,
) -> Result<(Filters, Paging, Vec<JobRecord>), PageError> {
    let (filters, mut paging) = params.split(0);
    query.name_contains = filters.name.clone();
    query.args_contains = filters.args.clone();
    if query.state.is_none() {
        query.state = filters.state;
    }
    query.offset = paging.offset();
    query.limit = paging.size;
    let page = shared.client.storage().list_jobs(query).await?;
    paging.total = page.total;
    Ok((filters, paging, page.jobs))
}

/// The full records (with history) of `jobs`, by id, in one storage read; jobs gone meanwhile
/// are left out.
async fn full_records(
    shared: &Shared,
    ids: Vec<JobId>,
) -> Result<HashMap<JobId, JobRecord>, PageError> {
    let records = shared.client.storage().jobs(&ids).await?;
    Ok(records
        .into_iter()
        .map(|record| (record.id, record))
        .collect())
}

/// The data of the entry that put the job in its current state.
fn last_entry(record: Option<&JobRecord>) -> Option<&HistoryEntry> {
    record.and_then(|r| r.history.iter().rev().find(|e| e.state == r.state))
}

/// `GET /jobs/enqueued`: the queues.
pub(crate) async fn queues(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<RequestCtx>,
) -> PageResult {
    let counts = counts(&shared).await?;
    let servers = shared.client.storage().servers().await?;
    let mut served_by: BTreeMap<&str, usize> = BTreeMap::new();
    for server in &servers {
        for queue in &server.info.queues {
            *served_by.entry(queue).or_default() += 1;
        }
    }
    let names: BTreeSet<&str> = counts
        .enqueued_by_queue
        .keys()
        .map(String::as_str)
        .chain(served_by.keys().copied())
        .collect();
    let content = html! {
        h1 { "Queues" }
        @if names.is_empty() {
            p.empty { "No queue has jobs, and no server is running." }
        } @else {
            div.table-scroll { table.jobs {
                thead { tr { th { "Queue" } th.num { "Enqueued" } th { "Served by" } } }
                tbody {
                    @for name in &names {
                        @let length = counts.enqueued_by_queue.get(*name).copied().unwrap_or(0);
                        @let servers = served_by.get(name).copied().unwrap_or(0);
                        tr {
                            td { a href=(ctx.url(&format!("/jobs/enqueued/{}", enc(name)))) { (name) } }
                            td.num { (length) }
                            td {
                                @if servers == 0 {
                                    span.warning { "no server serves this queue: its jobs wait" }
                                } @else {
                                    (servers) (if servers == 1 { " server" } else { " servers" })
                                }
                            }
                        }
                    }
                }
            } }
        }
    };
    Ok(Page {
        ctx: &ctx,
        shared: &shared,
        counts: &counts,
        section: Section::Jobs(JobsNav::State(JobState::Enqueued)),
        title: "Queues".to_owned(),
        live_job: None,
    }
    .render(content))
}

/// `GET /jobs/enqueued/{queue}`.
pub(crate) async fn queue(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<RequestCtx>,
    Path(queue): Path<String>,
    Query(params): Query<Params>,
) -> PageResult {
    let counts = counts(&shared).await?;
    let query = JobQuery {
        state: Some(JobState::Enqueued),
        queue: Some(queue.clone()),
        ..JobQuery::default()
    };
    let (filters, paging, jobs) = fetch_page(&shared, params, query).await?;
    let now = shared.client.now();
    let list = List {
        nav: JobsNav::State(JobState::Enqueued),
        title: format!("Enqueued in {queue}"),
        path: format!("/jobs/enqueued/{}", enc(&queue)),
        intro: Some(html! { p { a href=(ctx.url("/jobs/enqueued")) { "‹ All queues" } } }),
        with_state_filter: false,
        columns: vec![column("Enqueued", "time", move |job| {
            time(now, job.state_at)
        })],
        buttons: &[DELETE],
        empty: "This queue is empty.",
    };
    Ok(render_list(
        &shared, &ctx, &counts, list, &filters, &paging, &jobs,
    ))
}

/// `GET /jobs/{state}` and `GET /jobs/retries`.
pub(crate) async fn by_state(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<RequestCtx>,
    Path(state): Path<String>,
    Query(params): Query<Params>,
) -> PageResult {
    let counts = counts(&shared).await?;
    let now = shared.client.now();
    if state == "retries" {
        return retries(&shared, &ctx, &counts, params, now).await;
    }
    let Ok(state) = state.parse::<JobState>() else {
        return Err(PageError::NotFound(format!("no job state `{state}`")));
    };
    let query = JobQuery {
        state: Some(state),
        ..JobQuery::default()
    };
    let (filters, paging, jobs) = fetch_page(&shared, params, query).await?;
    let since = move |job: &JobRecord| time(now, job.state_at);
    let list = |columns, buttons, empty| state_list(state, columns, buttons, empty);
    let markup = match state {
        JobState::Enqueued => render_list(
            &shared,
            &ctx,
            &counts,
            list(
                vec![
                    column("Queue", "", |job| html! { (job.queue) }),
                    column("Enqueued", "time", since),
                ],
                &[DELETE],
                "No job is enqueued.",
            ),
            &filters,
            &paging,
            &jobs,
        ),
        JobState::Scheduled => render_list(
            &shared,
            &ctx,
            &counts,
            list(
                vec![
                    column("Enqueue at", "time", move |job| match job.run_at {
                        Some(at) => time(now, at),
                        None => html! {},
                    }),
                    column("Scheduled", "time", since),
                ],
                &[ENQUEUE_NOW, DELETE],
                "No job is scheduled.",
            ),
            &filters,
            &paging,
            &jobs,
        ),
        JobState::Processing => {
            let servers = shared.client.storage().servers().await?;
            let health = ServerHealth::new(now, &servers);
            render_list(
                &shared,
                &ctx,
                &counts,
                list(
                    vec![
                        column("Server", "", move |job| match &job.server_id {
                            Some(server) => html! {
                                span.server { (server) }
                                @if let Some(warning) = health.warning(server) {
                                    " " span.warning title=(warning) { "possibly aborted" }
                                }
                            },
                            None => html! {},
                        }),
                        column("Started", "time", since),
                    ],
                    &[REQUEUE, DELETE],
                    "No job is running.",
                ),
                &filters,
                &paging,
                &jobs,
            )
        }
        JobState::Succeeded => {
            let full = full_records(&shared, jobs.iter().map(|j| j.id).collect()).await?;
            let data = |job: &JobRecord| {
                last_entry(full.get(&job.id))
                    .map(|e| e.data.clone())
                    .unwrap_or_default()
            };
            render_list(
                &shared,
                &ctx,
                &counts,
                list(
                    vec![
                        column("Duration", "num", |job| {
                            html! { (data(job).duration_ms.map(duration_ms).unwrap_or_default()) }
                        }),
                        column("Latency", "num", |job| {
                            html! { (data(job).latency_ms.map(duration_ms).unwrap_or_default()) }
                        }),
                        column("Result", "", |job| match &job.result {
                            Some(result) => html! { code { (truncate(&result.to_string(), 60)) } },
                            None => html! {},
                        }),
                        column("Succeeded", "time", since),
                    ],
                    &[REQUEUE],
                    "No job has succeeded lately.",
                ),
                &filters,
                &paging,
                &jobs,
            )
        }
        JobState::Failed => render_list(
            &shared,
            &ctx,
            &counts,
            list(
                vec![
                    column("Error", "error", |job| match &job.error {
                        Some(error) => error_block(error),
                        None => html! {},
                    }),
                    column("Failed", "time", since),
                ],
                &[REQUEUE, DELETE],
                "No job has failed. Good.",
            ),
            &filters,
            &paging,
            &jobs,
        ),
        JobState::Deleted => {
            let full = full_records(&shared, jobs.iter().map(|j| j.id).collect()).await?;
            render_list(
                &shared,
                &ctx,
                &counts,
                list(
                    vec![
                        column("Reason", "", |job| {
                            html! { (last_entry(full.get(&job.id)).and_then(|e| e.reason.clone()).unwrap_or_default()) }
                        }),
                        column("Deleted", "time", since),
                    ],
                    &[REQUEUE],
                    "No job was deleted lately.",
                ),
                &filters,
                &paging,
                &jobs,
            )
        }
        JobState::Awaiting => {
            let parents =
                full_records(&shared, jobs.iter().filter_map(|j| j.parent).collect()).await?;
            let link_ctx = ctx.clone();
            render_list(
                &shared,
                &ctx,
                &counts,
                list(
                    vec![
                        column("Parent", "", move |job| match job.parent {
                            Some(parent) => html! {
                                (job_link(&link_ctx, parent)) " "
                                @if let Some(record) = parents.get(&parent) {
                                    (record.name) " " (state_badge(record.state))
                                }
                            },
                            None => html! {},
                        }),
                        column("Runs", "", |job| {
                            html! { (continue_on_words(job.continue_on.unwrap_or_default())) }
                        }),
                        column("Awaiting since", "time", since),
                    ],
                    &[ENQUEUE_NOW, DELETE],
                    "No continuation is waiting.",
                ),
                &filters,
                &paging,
                &jobs,
            )
        }
    };
    Ok(markup)
}

fn state_list<'a>(
    state: JobState,
    columns: Vec<Column<'a>>,
    buttons: &'a [Button],
    empty: &'static str,
) -> List<'a> {
    List {
        nav: JobsNav::State(state),
        title: format!("{state} jobs"),
        path: format!("/jobs/{}", state.as_str()),
        intro: None,
        with_state_filter: false,
        columns,
        buttons,
        empty,
    }
}

async fn retries(
    shared: &Shared,
    ctx: &RequestCtx,
    counts: &StateCounts,
    params: Params,
    now: DateTime<Utc>,
) -> PageResult {
    let query = JobQuery {
        state: Some(JobState::Scheduled),
        retries_only: true,
        ..JobQuery::default()
    };
    let (filters, paging, jobs) = fetch_page(shared, params, query).await?;
    let list = List {
        nav: JobsNav::Retries,
        title: "Retries".to_owned(),
        path: "/jobs/retries".to_owned(),
        intro: Some(html! { p.muted { "Jobs that failed and wait for their next attempt." } }),
        with_state_filter: false,
        columns: vec![
            column("Failed attempts", "num", |job| html! { (job.retry_count) }),
            column("Last error", "error", |job| match &job.error {
                Some(error) => error_block(error),
                None => html! {},
            }),
            column("Next attempt", "time", move |job| match job.run_at {
                Some(at) => time(now, at),
                None => html! {},
            }),
        ],
        buttons: &[ENQUEUE_NOW, DELETE],
        empty: "No job is waiting for a retry.",
    };
    Ok(render_list(
        shared, ctx, counts, list, &filters, &paging, &jobs,
    ))
}

/// `GET /jobs/search`: every job, filtered by name, arguments and state.
pub(crate) async fn search(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<RequestCtx>,
    Query(params): Query<Params>,
) -> PageResult {
    let counts = counts(&shared).await?;
    let now = shared.client.now();
    let (filters, paging, jobs) = fetch_page(&shared, params, JobQuery::default()).await?;
    let list = List {
        nav: JobsNav::Search,
        title: "Search jobs".to_owned(),
        path: "/jobs/search".to_owned(),
        intro: Some(
            html! { p.muted { "Every job, newest state change first. Names and arguments match case-insensitively." } },
        ),
        with_state_filter: true,
        columns: vec![
            column("State", "", |job| state_badge(job.state)),
            column("Queue", "", |job| html! { (job.queue) }),
            column("Since", "time", move |job| time(now, job.state_at)),
        ],
        buttons: &[REQUEUE, DELETE],
        empty: "There are no jobs.",
    };
    Ok(render_list(
        &shared, &ctx, &counts, list, &filters, &paging, &jobs,
    ))
}

// ---- one job ----------------------------------------------------------------------------------

fn parse_id(id: &str) -> Result<JobId, PageError> {
    id.parse()
        .map_err(|_| PageError::NotFound(format!("there is no job `{id}`")))
}

/// `GET /job/{id}/state.json`: the job's state, for the live reload of its page.
pub(crate) async fn job_state_json(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    let record = shared
        .client
        .storage()
        .job(id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("there is no job {id}")))?;
    Ok(Json(serde_json::json!({ "id": id, "state": record.state.as_str() })).into_response())
}

/// `GET /job/{id}/arguments.json`: the job's arguments, whole, as stored.
pub(crate) async fn job_arguments_json(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    let record = shared
        .client
        .storage()
        .job(id)
        .await?
        .ok_or_else(|| PageError::NotFound(format!("there is no job {id}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], record.args).into_response())
}

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

/// `GET /job/{id}`.
pub(crate) async fn job(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<RequestCtx>,
    Path(id): Path<String>,
) -> PageResult {
    let id = parse_id(&id)?;
    let storage = shared.client.storage();
    let counts = counts(&shared).await?;
    let Some(job) = storage.job(id).await? else {
        return Err(PageError::NotFound(format!(
            "There is no job {id}: it never existed, or it finished and was removed."
        )));
    };
    let now = shared.client.now();
    let parent = match job.parent {
        Some(parent) => storage.job(parent).await?,
        None => None,
    };
    let children = full_records(&shared, job.children.iter().copied().take(100).collect()).await?;
    let server_warning = match (&job.server_id, job.state) {
        (Some(server), JobState::Processing) => {
            let servers = storage.servers().await?;
            ServerHealth::new(now, &servers).warning(server)
        }
        _ => None,
    };
    let content = html! {
        div.job-title {
            h1 { "Job #" (job.id) " " span.job-name { (job.name) } }
            span #job-state { (state_badge(job.state)) }
        }
        @if let Some(warning) = &server_warning {
            p.flash.error { "This job is Processing, but " (warning) "." }
        }
        @if ctx.can_act {
            div.actions {
                @if job.state != JobState::Enqueued {
                    (single_action(&ctx, if job.state == JobState::Scheduled || job.state == JobState::Awaiting { &ENQUEUE_NOW } else { &REQUEUE }, &job.id.to_string()))
                }
                @if job.state != JobState::Deleted {
                    (single_action(&ctx, &DELETE_JOB, &job.id.to_string()))
                }
            }
        }
        dl.facts {
            dt { "Queue" } dd { a href=(ctx.url(&format!("/jobs/enqueued/{}", enc(&job.queue)))) { (job.queue) } }
            dt { "Created" } dd { (time_full(now, job.created_at)) }
            dt { "In this state since" } dd { (time_full(now, job.state_at)) }
            @if let Some(at) = job.run_at { dt { "Enqueue at" } dd { (time_full(now, at)) } }
            @if job.retry_count > 0 { dt { "Failed attempts" } dd { (job.retry_count) } }
            @if let Some(server) = &job.server_id { dt { "Server" } dd { (server) } }
            @if let Some(recurring) = &job.recurring_id {
                dt { "Fired by" } dd { a href=(format!("{}?q={}", ctx.url("/recurring"), enc(recurring))) { "recurring job " (recurring) } }
            }
            @if let Some(parent_id) = job.parent {
                dt { "Parent" }
                dd {
                    (job_link(&ctx, parent_id)) " "
                    @if let Some(parent) = &parent { (parent.name) " " (state_badge(parent.state)) " " }
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
                            td { (job_link(&ctx, *child)) }
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
                    (state_data(&ctx, now, &entry.data))
                }
            }
        }
    };
    Ok(Page {
        ctx: &ctx,
        shared: &shared,
        counts: &counts,
        section: Section::Jobs(JobsNav::State(job.state)),
        title: format!("Job #{} {}", job.id, job.name),
        live_job: Some((job.state, ctx.url(&format!("/job/{}/state.json", job.id)))),
    }
    .render(content))
}

// ---- recurring jobs and servers ---------------------------------------------------------------

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

fn matches(job: &RecurringJob, q: &str) -> bool {
    let q = q.to_lowercase();
    job.id.to_lowercase().contains(&q) || job.job_name.to_lowercase().contains(&q)
}

/// `GET /recurring`.
pub(crate) async fn recurring(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<RequestCtx>,
    Query(params): Query<Params>,
) -> PageResult {
    let counts = counts(&shared).await?;
    let now = shared.client.now();
    let all = shared.client.storage().list_recurring().await?;
    let (filters, mut paging) = params.split(0);
    let matching: Vec<RecurringJob> = match &filters.q {
        Some(q) => all.into_iter().filter(|job| matches(job, q)).collect(),
        None => all,
    };
    paging.total = matching.len() as u64;
    let shown: Vec<&RecurringJob> = matching
        .iter()
        .skip(paging.offset())
        .take(paging.size)
        .collect();
    let buttons = [TRIGGER, PAUSE, RESUME, REMOVE];
    let content = html! {
        h1 { "Recurring jobs" }
        form.search method="get" action=(ctx.url("/recurring")) role="search" {
            label { "Id or job name " input type="search" name="q" value=[filters.q.as_deref()] placeholder="contains…"; }
            button.button type="submit" { "Search" }
            @if filters.is_active() { a.clear href=(ctx.url("/recurring")) { "Clear" } }
        }
        @if shown.is_empty() {
            p.empty { (if filters.is_active() { "No recurring job matches." } else { "There are no recurring jobs." }) }
        } @else {
            form.list method="post" action=(ctx.url(TRIGGER.path)) {
                (form_fields(&ctx))
                (action_bar(&ctx, &buttons))
                div.table-scroll { table.jobs.recurring {
                    thead {
                        tr {
                            @if ctx.can_act { th.check { input type="checkbox" data-select-all aria-label="Select all"; } }
                            th { "Id" } th { "Schedule" } th { "Job" } th { "Next run" } th { "Last run" } th { "Status" } th { "Created" }
                        }
                    }
                    tbody {
                        @for job in &shown {
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
                                    @if let Some(id) = job.last_job_id { (job_link(&ctx, id)) " " }
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
            (pager(&paging, |page, size| filters.link(&ctx, "/recurring", page, size)))
        }
    };
    Ok(Page {
        ctx: &ctx,
        shared: &shared,
        counts: &counts,
        section: Section::Recurring,
        title: "Recurring jobs".to_owned(),
        live_job: None,
    }
    .render(content))
}

/// `GET /servers`.
pub(crate) async fn servers(
    State(shared): State<Arc<Shared>>,
    Extension(ctx): Extension<RequestCtx>,
) -> PageResult {
    let counts = counts(&shared).await?;
    let now = shared.client.now();
    let mut servers = shared.client.storage().servers().await?;
    servers.sort_by(|a, b| a.info.id.cmp(&b.info.id));
    let content = html! {
        h1 { "Servers" }
        @if servers.is_empty() {
            p.empty { "No server is running: jobs wait in their queues until one starts." }
        } @else {
            div.table-scroll { table.jobs {
                thead { tr { th { "Server" } th.num { "Workers" } th { "Queues, by priority" } th { "Started" } th { "Heartbeat" } } }
                tbody {
                    @for server in &servers {
                        tr {
                            td { (server.info.id) }
                            td.num { (server.info.workers) }
                            td { @for queue in &server.info.queues { span.badge.queue { (queue) } " " } }
                            td.time { (time(now, server.info.started_at)) }
                            td.time {
                                (time(now, server.heartbeat_at))
                                @if now.signed_duration_since(server.heartbeat_at) > STALE_AFTER {
                                    " " span.warning { "possibly aborted" }
                                }
                            }
                        }
                    }
                }
            } }
        }
    };
    Ok(Page {
        ctx: &ctx,
        shared: &shared,
        counts: &counts,
        section: Section::Servers,
        title: "Servers".to_owned(),
        live_job: None,
    }
    .render(content))
}
