//! The servers page: every registered server, its workers, queues and heartbeat.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::layout::{Section, View};
use super::parts::time;
use crate::dashboard::context::RequestCtx;
use crate::storage::ServerRecord;

/// What the servers page shows.
#[derive(Debug)]
pub(crate) struct Servers {
    /// The time the page is rendered at.
    pub(crate) now: DateTime<Utc>,
    /// The servers, by id.
    pub(crate) servers: Vec<ServerRow>,
}

/// A server, and whether its heartbeat is stale.
#[derive(Debug)]
pub(crate) struct ServerRow {
    /// The server as registered.
    pub(crate) server: ServerRecord,
    /// Whether its last heartbeat is so old it may have died.
    pub(crate) stale: bool,
}

impl View for Servers {
    fn title(&self) -> String {
        "Servers".to_owned()
    }

    fn section(&self) -> Section {
        Section::Servers
    }

    fn content(&self, _ctx: &RequestCtx) -> Markup {
        let now = self.now;
        html! {
            h1 { "Servers" }
            @if self.servers.is_empty() {
                p.empty { "No server is running: jobs wait in their queues until one starts." }
            } @else {
                div.table-scroll { table.jobs {
                    thead { tr { th { "Server" } th.num { "Workers" } th { "Queues, by priority" } th { "Started" } th { "Heartbeat" } } }
                    tbody {
                        @for ServerRow { server, stale } in &self.servers {
                            tr {
                                td { (server.info.id) }
                                td.num { (server.info.workers) }
                                td { @for queue in &server.info.queues { span.badge.queue { (queue) } " " } }
                                td.time { (time(now, server.info.started_at)) }
                                td.time {
                                    (time(now, server.heartbeat_at))
                                    @if *stale {
                                        " " span.warning { "possibly aborted" }
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
