//! The layout every page shares (head, top navigation, the jobs sidebar, the flash message,
//! footer), the [`View`] trait pages implement, and [`page`], the one way to render a page.

use maud::{html, Markup, DOCTYPE};

use crate::dashboard::context::{RequestCtx, Shared};
use crate::job::{JobId, JobState};
use crate::storage::StateCounts;

/// The top navigation's sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Overview,
    Jobs(JobsNav),
    Recurring,
    Servers,
}

/// The entries of the jobs sidebar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobsNav {
    State(JobState),
    Retries,
    Search,
}

/// A page's view model: what a handler gathers, and how the page shows it.
pub(crate) trait View {
    /// The page's title (the browser tab shows it before the dashboard's title).
    fn title(&self) -> String;

    /// Where the page is in the navigation.
    fn section(&self) -> Section;

    /// For a job's page: the job and its state, so the script reloads the page when the
    /// state changes.
    fn live_job(&self) -> Option<(JobId, JobState)> {
        None
    }

    /// The page's own markup, inside the layout.
    fn content(&self, ctx: &RequestCtx) -> Markup;
}

/// `view` as a whole page: its content in the layout, whose navigation shows `counts`.
pub(crate) fn page(
    shared: &Shared,
    ctx: &RequestCtx,
    counts: &StateCounts,
    view: &impl View,
) -> Markup {
    let section = view.section();
    let (job_state, job_state_url) = match view.live_job() {
        Some((id, state)) => (
            Some(state.as_str()),
            Some(ctx.url(&format!("/job/{id}/state.json"))),
        ),
        None => (None, None),
    };
    let in_jobs = matches!(section, Section::Jobs(nav) if nav != JobsNav::Retries);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (view.title()) " · " (shared.title) }
                link rel="icon" href="data:,";
                link rel="stylesheet" href=(ctx.url("/assets/dashboard.css"));
                script src=(ctx.url("/assets/dashboard.js")) defer {}
            }
            body data-stats-url=(ctx.url("/stats.json"))
                data-poll-interval=(shared.poll_interval.as_millis())
                data-job-state=[job_state]
                data-job-state-url=[job_state_url] {
                header.topbar {
                    a.brand href=(ctx.home()) { (shared.title) }
                    nav.topnav {
                        a.active[in_jobs] href=(ctx.url("/jobs/enqueued")) {
                            "Jobs " span.count data-count="enqueued" { (counts.get(JobState::Enqueued)) }
                        }
                        a.active[section == Section::Jobs(JobsNav::Retries)] href=(ctx.url("/jobs/retries")) {
                            "Retries " span.count data-count="retries" { (counts.retries) }
                        }
                        a.active[section == Section::Recurring] href=(ctx.url("/recurring")) {
                            "Recurring jobs " span.count data-count="recurring" { (counts.recurring) }
                        }
                        a.active[section == Section::Servers] href=(ctx.url("/servers")) {
                            "Servers " span.count data-count="servers" { (counts.servers) }
                        }
                    }
                    @if shared.read_only || !ctx.can_act {
                        span.readonly title="Actions are disabled" { "read-only" }
                    }
                }
                div.layout {
                    @if let Section::Jobs(active) = section {
                        (sidebar(ctx, counts, active))
                    }
                    main.content {
                        @if let Some(flash) = &ctx.flash {
                            p.flash.error[flash.is_error()] role="status" { (flash.message()) }
                        }
                        (view.content(ctx))
                    }
                }
                footer.footer {
                    "jobs " (env!("CARGO_PKG_VERSION")) " · times in UTC · "
                    span.live-status data-live-status { "live refresh off (no JavaScript)" }
                }
            }
        }
    }
}

fn sidebar(ctx: &RequestCtx, counts: &StateCounts, active: JobsNav) -> Markup {
    let entry = |nav: JobsNav, href: String, label: &str, key: &str, count: Option<u64>| {
        html! {
            li {
                a.active[active == nav] href=(href) {
                    span { (label) }
                    @if let Some(count) = count {
                        span.count.{"count-" (key)} data-count=(key) { (count) }
                    }
                }
            }
        }
    };
    html! {
        nav.sidebar aria-label="Jobs by state" {
            ul {
                @for state in JobState::ALL {
                    (entry(
                        JobsNav::State(state),
                        ctx.url(&format!("/jobs/{}", state.as_str())),
                        &state.to_string(),
                        state.as_str(),
                        Some(counts.get(state)),
                    ))
                    @if state == JobState::Scheduled {
                        (entry(JobsNav::Retries, ctx.url("/jobs/retries"), "Retries", "retries", Some(counts.retries)))
                    }
                }
                (entry(JobsNav::Search, ctx.url("/jobs/search"), "Search", "", None))
            }
        }
    }
}
