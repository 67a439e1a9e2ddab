//! HTML building blocks: the page layout, times, durations, badges, the pager, the action bar
//! and the history graph. Everything goes through maud, which escapes every value.

use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::context::{RequestCtx, Shared};
use crate::job::JobState;
use crate::storage::{StatPoint, StateCounts};

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

/// A whole page.
pub(crate) struct Page<'a> {
    pub(crate) ctx: &'a RequestCtx,
    pub(crate) shared: &'a Shared,
    pub(crate) counts: &'a StateCounts,
    pub(crate) section: Section,
    pub(crate) title: String,
    /// For a job's page: its state and the URL of its state, so the script reloads the page
    /// when the state changes.
    pub(crate) live_job: Option<(JobState, String)>,
}

impl Page<'_> {
    pub(crate) fn render(self, content: Markup) -> Markup {
        let Page {
            ctx,
            shared,
            counts,
            section,
            title,
            live_job,
        } = self;
        let (job_state, job_state_url) = match live_job {
            Some((state, url)) => (Some(state.as_str()), Some(url)),
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
                    title { (title) " · " (shared.title) }
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
                            @if let Some(flash) = ctx.flash {
                                p.flash.error[flash.is_error()] role="status" { (flash.message()) }
                            }
                            (content)
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

/// A state's badge.
pub(crate) fn state_badge(state: JobState) -> Markup {
    html! { span.badge.{"state-" (state.as_str())} { (state) } }
}

/// `2024-05-01 12:00:05 UTC`.
pub(crate) fn absolute(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `5 s ago`, `in 3 min`.
pub(crate) fn relative(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let delta = now.signed_duration_since(at);
    let seconds = delta.num_seconds();
    let span = span_words(seconds.unsigned_abs());
    if seconds.abs() < 1 {
        "just now".to_owned()
    } else if seconds > 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

fn span_words(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86_400 => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{} d {} h", seconds / 86_400, seconds % 86_400 / 3600),
    }
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

/// `850 ms`, `3.2 s`, `5 min 3 s`.
pub(crate) fn duration_ms(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// At most `max` characters of `text`, with an ellipsis when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// At most the first `max` bytes of `text`, cut at a character boundary.
pub(crate) fn first_bytes(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `850 B`, `64 KiB`, `5.0 MiB`.
pub(crate) fn size(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    match bytes {
        0..KIB => format!("{bytes} B"),
        KIB..MIB => format!("{} KiB", bytes / KIB),
        _ => format!("{:.1} MiB", bytes as f64 / MIB as f64),
    }
}

/// JSON text, pretty-printed (as given if it does not parse).
pub(crate) fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| text.to_owned())
}

/// Percent-encodes a path segment or query value.
pub(crate) fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The hidden fields every action form carries.
pub(crate) fn form_fields(ctx: &RequestCtx) -> Markup {
    html! {
        @if ctx.can_act {
            input type="hidden" name=(super::csrf::FIELD) value=(ctx.csrf_token);
            input type="hidden" name="back" value=(ctx.here);
        }
    }
}

/// One action button of a bulk form (`formaction` picks the action).
pub(crate) struct Button {
    pub(crate) label: &'static str,
    pub(crate) path: &'static str,
    pub(crate) danger: bool,
    pub(crate) confirm: Option<&'static str>,
}

pub(crate) const REQUEUE: Button = Button {
    label: "Requeue",
    path: "/actions/jobs/requeue",
    danger: false,
    confirm: None,
};
pub(crate) const ENQUEUE_NOW: Button = Button {
    label: "Enqueue now",
    path: "/actions/jobs/enqueue",
    danger: false,
    confirm: None,
};
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

/// Paging of a list.
#[derive(Debug, Clone)]
pub(crate) struct Paging {
    pub(crate) page: usize,
    pub(crate) size: usize,
    pub(crate) total: u64,
}

impl Paging {
    pub(crate) const SIZES: [usize; 4] = [10, 20, 50, 100];

    pub(crate) fn offset(&self) -> usize {
        (self.page - 1).saturating_mul(self.size)
    }

    pub(crate) fn pages(&self) -> usize {
        let total = usize::try_from(self.total).unwrap_or(usize::MAX);
        total.div_ceil(self.size).max(1)
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

/// `1 failed attempt`, `2 failed attempts`.
pub(crate) fn failed_attempts(count: u64) -> String {
    let noun = if count == 1 { "attempt" } else { "attempts" };
    format!("{count} failed {noun}")
}

/// A bar graph of succeeded jobs and failed attempts (a retry is one: the storage counts
/// attempts), as inline SVG (no script needed), with the numbers in a table under it.
pub(crate) fn history_graph(
    title: &str,
    points: &[StatPoint],
    label: impl Fn(DateTime<Utc>) -> String,
) -> Markup {
    const W: f64 = 960.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 44.0;
    const BOTTOM: f64 = 22.0;
    const TOP: f64 = 8.0;
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - BOTTOM - TOP;
    let max = points
        .iter()
        .map(|p| p.succeeded.max(p.failed))
        .max()
        .unwrap_or(0)
        .max(1);
    let max = nice_ceiling(max);
    let n = points.len().max(1) as f64;
    let slot = plot_w / n;
    let bar = (slot * 0.38).max(1.0);
    let y = |value: u64| TOP + plot_h - plot_h * value as f64 / max as f64;
    let every = (points.len() / 8).max(1);
    let total_s: u64 = points.iter().map(|p| p.succeeded).sum();
    let total_f: u64 = points.iter().map(|p| p.failed).sum();
    html! {
        figure.graph {
            figcaption {
                strong { (title) } " "
                span.legend.succeeded { (total_s) " succeeded" } " "
                span.legend.failed { (failed_attempts(total_f)) }
            }
            svg.history viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(title) {
                @for tick in [0, max / 2, max] {
                    line.grid x1=(LEFT) x2=(W - 8.0) y1=(f2(y(tick))) y2=(f2(y(tick))) {}
                    text.axis x=(LEFT - 6.0) y=(f2(y(tick) + 4.0)) text-anchor="end" { (tick) }
                }
                @for (i, point) in points.iter().enumerate() {
                    @let x = LEFT + slot * i as f64 + slot * 0.1;
                    g {
                        title { (label(point.at)) ": " (point.succeeded) " succeeded, " (failed_attempts(point.failed)) }
                        rect.hover x=(f2(LEFT + slot * i as f64)) y=(TOP) width=(f2(slot)) height=(f2(plot_h)) {}
                        rect.bar-succeeded x=(f2(x)) y=(f2(y(point.succeeded))) width=(f2(bar)) height=(f2(TOP + plot_h - y(point.succeeded))) {}
                        rect.bar-failed x=(f2(x + bar)) y=(f2(y(point.failed))) width=(f2(bar)) height=(f2(TOP + plot_h - y(point.failed))) {}
                    }
                    @if i % every == 0 {
                        text.axis x=(f2(LEFT + slot * i as f64 + slot / 2.0)) y=(H - 6.0) text-anchor="middle" { (label(point.at)) }
                    }
                }
            }
            details.numbers {
                summary { "Numbers" }
                table.compact {
                    thead { tr { th { "From" } th.num { "Succeeded" } th.num { "Failed attempts" } } }
                    tbody {
                        @for point in points {
                            tr { td { (absolute(point.at)) } td.num { (point.succeeded) } td.num { (point.failed) } }
                        }
                    }
                }
            }
        }
    }
}

fn f2(value: f64) -> PreEscaped<String> {
    PreEscaped(format!("{value:.2}"))
}

/// 1, 2, 5 × 10ⁿ at or above `value`.
fn nice_ceiling(value: u64) -> u64 {
    let mut magnitude = 1u64;
    loop {
        for step in [1, 2, 5] {
            let candidate = step * magnitude;
            if candidate >= value {
                return candidate;
            }
        }
        match magnitude.checked_mul(10) {
            Some(next) => magnitude = next,
            None => return value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        let now = DateTime::from_timestamp(1_000_000, 0).expect("time");
        assert_eq!(relative(now, now), "just now");
        assert_eq!(
            relative(now, now - chrono::TimeDelta::seconds(5)),
            "5 s ago"
        );
        assert_eq!(
            relative(now, now + chrono::TimeDelta::minutes(3)),
            "in 3 min"
        );
        assert_eq!(duration_ms(850), "850 ms");
        assert_eq!(duration_ms(3200), "3.2 s");
        assert_eq!(duration_ms(303_000), "5 min 3 s");
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hé", 2), "hé");
        assert_eq!(first_bytes("héllo", 2), "h");
        assert_eq!(first_bytes("héllo", 3), "hé");
        assert_eq!(first_bytes("hé", 10), "hé");
        assert_eq!(size(850), "850 B");
        assert_eq!(size(64 * 1024), "64 KiB");
        assert_eq!(size(5 * 1024 * 1024 + 11), "5.0 MiB");
        assert_eq!(failed_attempts(1), "1 failed attempt");
        assert_eq!(failed_attempts(0), "0 failed attempts");
        assert_eq!(enc("a b/ü"), "a%20b%2F%C3%BC");
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(pretty_json("{\"a\":1}"), "{\n  \"a\": 1\n}");
        assert_eq!(pretty_json("not json"), "not json");
    }

    #[test]
    fn paging() {
        let paging = Paging {
            page: 3,
            size: 20,
            total: 45,
        };
        assert_eq!(paging.offset(), 40);
        assert_eq!(paging.pages(), 3);
        let empty = Paging {
            page: 1,
            size: 20,
            total: 0,
        };
        assert_eq!(empty.pages(), 1);
    }
}
