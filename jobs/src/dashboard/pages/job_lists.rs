//! The lists of jobs: the queues, one queue, each state, the retries and the search.
//!
//! Each handler reads one page of jobs and fills a [`JobList`]: its own columns and, for each
//! job, what goes in them. The template draws the rest, the same for every list.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::Extension;
use chrono::{DateTime, Utc};

use super::health::ServerHealth;
use super::load::{counts, full_records};
use crate::dashboard::context::{RequestCtx, Shared};
use crate::dashboard::error::{PageError, PageResult};
use crate::dashboard::format::enc;
use crate::dashboard::query::{Filters, Paging, Params};
use crate::dashboard::templates::job_list::{Cell, Column, Intro, JobList, Row, Table};
use crate::dashboard::templates::layout::{page, JobsNav};
use crate::dashboard::templates::parts::{DELETE, ENQUEUE_NOW, REQUEUE};
use crate::dashboard::templates::queues::{QueueRow, Queues, COUNTED};
use crate::job::JobState;
use crate::storage::{HistoryEntry, JobQuery, JobRecord, StateCounts};

/// Runs `query` with the request's filters and paging.
async fn fetch_page(
    shared: &Shared,
    params: Params,
    mut query: JobQuery,
) -> Result<(Filters, Paging, Vec<JobRecord>), PageError> {
    let (filters, mut paging) = params.split(0);
    query.name_contains = filters.name.clone();
    query.args_contains = filters.args.clone();
    query.unique_key_contains = filters.key.clone();
    if query.state.is_none() {
        query.state = filters.state;
    }
    query.offset = paging.offset();
    query.limit = paging.size;
    let page = shared.client.storage().list_jobs(query).await?;
    paging.total = page.total;
    Ok((filters, paging, page.jobs))
}

/// The data of the entry that put the job in its current state.
fn last_entry(record: Option<&JobRecord>) -> Option<&HistoryEntry> {
    record.and_then(|r| r.history.iter().rev().find(|e| e.state == r.state))
}

/// A row per job, with the cells `cells` gives it.
fn rows(jobs: &[JobRecord], cells: impl Fn(&JobRecord) -> Vec<Cell>) -> Vec<Row> {
    jobs.iter().map(|job| Row::new(job, cells(job))).collect()
}

/// `GET /jobs/enqueued`: the queues, from [`Client::queues`](crate::Client::queues) (every
/// queue with jobs or settings, served by a server, or named by a job of this process).
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
    let view = Queues {
        queues: shared
            .client
            .queues()
            .await?
            .into_iter()
            .map(|info| QueueRow {
                counts: COUNTED.map(|state| info.counts.get(&state).copied().unwrap_or(0)),
                servers: served_by.get(info.queue.as_str()).copied().unwrap_or(0),
                paused: info.settings.paused,
                limits: info.settings.limits,
                name: info.queue,
            })
            .collect(),
    };
    Ok(page(&shared, &ctx, &counts, &view))
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
    let view = JobList {
        nav: JobsNav::State(JobState::Enqueued),
        title: format!("Enqueued in {queue}"),
        path: format!("/jobs/enqueued/{}", enc(&queue)),
        intro: Intro::AllQueues,
        with_state_filter: false,
        filters,
        paging,
        now: shared.client.now(),
        table: Table {
            columns: &const { [Column::new("Enqueued", "time")] },
            rows: rows(&jobs, |job| vec![Cell::Time(job.state_at)]),
            buttons: &[DELETE],
            empty: "This queue is empty.",
        },
    };
    Ok(page(&shared, &ctx, &counts, &view))
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
    let view = JobList {
        nav: JobsNav::State(state),
        title: format!("{state} jobs"),
        path: format!("/jobs/{}", state.as_str()),
        intro: Intro::None,
        with_state_filter: false,
        filters,
        paging,
        now,
        table: state_table(&shared, now, state, &jobs).await?,
    };
    Ok(page(&shared, &ctx, &counts, &view))
}

/// The table of a state's list: what each state needs shown besides id and name, and the
/// actions that make sense for it.
async fn state_table(
    shared: &Shared,
    now: DateTime<Utc>,
    state: JobState,
    jobs: &[JobRecord],
) -> Result<Table, PageError> {
    let since = |job: &JobRecord| Cell::Time(job.state_at);
    let table = match state {
        JobState::Enqueued => Table {
            columns: &const { [Column::new("Queue", ""), Column::new("Enqueued", "time")] },
            rows: rows(jobs, |job| vec![Cell::Text(job.queue.clone()), since(job)]),
            buttons: &[DELETE],
            empty: "No job is enqueued.",
        },
        JobState::Scheduled => Table {
            columns: &const {
                [
                    Column::new("Enqueue at", "time"),
                    Column::new("Scheduled", "time"),
                ]
            },
            rows: rows(jobs, |job| vec![Cell::time(job.run_at), since(job)]),
            buttons: &[ENQUEUE_NOW, DELETE],
            empty: "No job is scheduled.",
        },
        JobState::Processing => {
            let servers = shared.client.storage().servers().await?;
            let health = ServerHealth::new(now, &servers);
            let server = |job: &JobRecord| match &job.server_id {
                Some(id) => Cell::Server {
                    id: id.clone(),
                    warning: health.warning(id),
                },
                None => Cell::Empty,
            };
            Table {
                columns: &const { [Column::new("Server", ""), Column::new("Started", "time")] },
                rows: rows(jobs, |job| vec![server(job), since(job)]),
                buttons: &[REQUEUE, DELETE],
                empty: "No job is running.",
            }
        }
        JobState::Succeeded => {
            let full = full_records(shared, jobs.iter().map(|j| j.id).collect()).await?;
            let data = |job: &JobRecord| {
                last_entry(full.get(&job.id))
                    .map(|e| e.data.clone())
                    .unwrap_or_default()
            };
            Table {
                columns: &const {
                    [
                        Column::new("Duration", "num"),
                        Column::new("Latency", "num"),
                        Column::new("Result", ""),
                        Column::new("Succeeded", "time"),
                    ]
                },
                rows: rows(jobs, |job| {
                    let data = data(job);
                    vec![
                        data.duration_ms.map_or(Cell::Empty, Cell::Duration),
                        data.latency_ms.map_or(Cell::Empty, Cell::Duration),
                        job.result.clone().map_or(Cell::Empty, Cell::Result),
                        since(job),
                    ]
                }),
                buttons: &[REQUEUE],
                empty: "No job has succeeded lately.",
            }
        }
        JobState::Failed => Table {
            columns: &const { [Column::new("Error", "error"), Column::new("Failed", "time")] },
            rows: rows(jobs, |job| {
                vec![
                    job.error.clone().map_or(Cell::Empty, Cell::Error),
                    since(job),
                ]
            }),
            buttons: &[REQUEUE, DELETE],
            empty: "No job has failed. Good.",
        },
        JobState::Deleted => {
            let full = full_records(shared, jobs.iter().map(|j| j.id).collect()).await?;
            let reason = |job: &JobRecord| {
                Cell::text(last_entry(full.get(&job.id)).and_then(|e| e.reason.clone()))
            };
            Table {
                columns: &const { [Column::new("Reason", ""), Column::new("Deleted", "time")] },
                rows: rows(jobs, |job| vec![reason(job), since(job)]),
                buttons: &[REQUEUE],
                empty: "No job was deleted lately.",
            }
        }
        JobState::Awaiting => {
            let parents =
                full_records(shared, jobs.iter().filter_map(|j| j.parent).collect()).await?;
            let parent = |job: &JobRecord| match job.parent {
                Some(id) => Cell::Parent {
                    id,
                    found: parents
                        .get(&id)
                        .map(|record| (record.name.clone(), record.state)),
                },
                None => Cell::Empty,
            };
            Table {
                columns: &const {
                    [
                        Column::new("Parent", ""),
                        Column::new("Runs", ""),
                        Column::new("Awaiting since", "time"),
                    ]
                },
                rows: rows(jobs, |job| {
                    vec![
                        parent(job),
                        Cell::ContinueOn(job.continue_on.unwrap_or_default()),
                        since(job),
                    ]
                }),
                buttons: &[ENQUEUE_NOW, DELETE],
                empty: "No continuation is waiting.",
            }
        }
    };
    Ok(table)
}

/// `GET /jobs/retries`: scheduled jobs that failed before.
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
    let view = JobList {
        nav: JobsNav::Retries,
        title: "Retries".to_owned(),
        path: "/jobs/retries".to_owned(),
        intro: Intro::Note("Jobs that failed and wait for their next attempt."),
        with_state_filter: false,
        filters,
        paging,
        now,
        table: Table {
            columns: &const {
                [
                    Column::new("Failed attempts", "num"),
                    Column::new("Last error", "error"),
                    Column::new("Next attempt", "time"),
                ]
            },
            rows: rows(&jobs, |job| {
                vec![
                    Cell::Count(job.retry_count.into()),
                    job.error.clone().map_or(Cell::Empty, Cell::Error),
                    Cell::time(job.run_at),
                ]
            }),
            buttons: &[ENQUEUE_NOW, DELETE],
            empty: "No job is waiting for a retry.",
        },
    };
    Ok(page(shared, ctx, counts, &view))
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
    let view = JobList {
        nav: JobsNav::Search,
        title: "Search jobs".to_owned(),
        path: "/jobs/search".to_owned(),
        intro: Intro::Note(
            "Every job, newest state change first. Names and arguments match case-insensitively.",
        ),
        with_state_filter: true,
        filters,
        paging,
        now,
        table: Table {
            columns: &const {
                [
                    Column::new("State", ""),
                    Column::new("Queue", ""),
                    Column::new("Since", "time"),
                ]
            },
            rows: rows(&jobs, |job| {
                vec![
                    Cell::State(job.state),
                    Cell::Text(job.queue.clone()),
                    Cell::Time(job.state_at),
                ]
            }),
            buttons: &[REQUEUE, DELETE],
            empty: "There are no jobs.",
        },
    };
    Ok(page(&shared, &ctx, &counts, &view))
}
