//! The queues page: each queue's length and how many servers serve it.

use maud::{html, Markup};

use super::layout::{JobsNav, Section, View};
use crate::dashboard::context::RequestCtx;
use crate::dashboard::format::enc;
use crate::job::JobState;

/// What the queues page shows.
#[derive(Debug)]
pub(crate) struct Queues {
    /// Every queue that has jobs or a server, by name.
    pub(crate) queues: Vec<QueueRow>,
}

/// One queue.
#[derive(Debug)]
pub(crate) struct QueueRow {
    /// Its name.
    pub(crate) name: String,
    /// Its enqueued jobs.
    pub(crate) length: u64,
    /// How many servers serve it.
    pub(crate) servers: usize,
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
            @if self.queues.is_empty() {
                p.empty { "No queue has jobs, and no server is running." }
            } @else {
                div.table-scroll { table.jobs {
                    thead { tr { th { "Queue" } th.num { "Enqueued" } th { "Served by" } } }
                    tbody {
                        @for QueueRow { name, length, servers } in &self.queues {
                            tr {
                                td { a href=(ctx.url(&format!("/jobs/enqueued/{}", enc(name)))) { (name) } }
                                td.num { (length) }
                                td {
                                    @if *servers == 0 {
                                        span.warning { "no server serves this queue: its jobs wait" }
                                    } @else {
                                        (servers) (if *servers == 1 { " server" } else { " servers" })
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        }
    }
}
