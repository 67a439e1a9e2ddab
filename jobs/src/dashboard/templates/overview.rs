//! The overview: a card per state, the realtime graph and the 24 hour and 7 day history.

use maud::{html, Markup};

use super::graph::history_graph;
use super::layout::{Section, View};
use crate::dashboard::context::RequestCtx;
use crate::job::JobState;
use crate::storage::{StatPoint, StateCounts};

/// What the overview shows.
#[derive(Debug)]
pub(crate) struct Overview {
    /// Jobs per state, for the cards.
    pub(crate) counts: StateCounts,
    /// The last 24 hours, hour by hour.
    pub(crate) hourly: Vec<StatPoint>,
    /// The last 7 days, day by day.
    pub(crate) daily: Vec<StatPoint>,
}

impl View for Overview {
    fn title(&self) -> String {
        "Overview".to_owned()
    }

    fn section(&self) -> Section {
        Section::Overview
    }

    fn content(&self, ctx: &RequestCtx) -> Markup {
        let counts = &self.counts;
        let card = |key: &str, label: &str, count: u64, href: String| {
            html! {
                a.card.{"card-" (key)} href=(href) {
                    span.card-count data-count=(key) { (count) }
                    span.card-label { (label) }
                }
            }
        };
        html! {
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
                (history_graph("Last 24 hours", &self.hourly, |at| at.format("%H:00").to_string()))
                (history_graph("Last 7 days", &self.daily, |at| at.format("%a %d").to_string()))
            }
        }
    }
}
