//! The history graph: succeeded jobs and failed attempts per hour or day, as inline SVG.

use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped};

use crate::dashboard::format::{absolute, failed_attempts};
use crate::storage::StatPoint;

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
    fn nice_ceilings() {
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(11), 20);
    }
}
