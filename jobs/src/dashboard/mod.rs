//! The web dashboard (feature `dashboard`): an [`axum::Router`] that shows jobs, queues,
//! retries, recurring jobs and servers, and acts on them (requeue, delete, enqueue now;
//! trigger, pause, resume, remove a recurring job; pause, resume a queue and set its limits).
//!
//! Nest it in an application at any path, or serve it on its own with [`Dashboard::serve`].
//! The server must provide the peer address (`into_make_service_with_connect_info`): by
//! default only loopback peers are let in, and only when they name the dashboard's host by a
//! loopback name (`localhost`, `127.0.0.1`, `[::1]`).
//!
//! Nest it with [`Router::nest_service`] rather than [`Router::nest`] to serve `/jobs/` as
//! well as `/jobs`: axum's `nest` routes no request for `/jobs/` into the nested router.
//! Further in, a trailing slash redirects to the page without it (`/jobs/jobs/failed/` to
//! `/jobs/jobs/failed`).
//!
//! ```
//! use std::net::SocketAddr;
//! use axum::{body::Body, extract::ConnectInfo, http::Request};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> anyhow::Result<()> {
//! let storage = jobs::MemoryStorage::new();
//! let app = axum::Router::new().nest_service("/jobs", jobs::dashboard::router(storage));
//!
//! // What `axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())`
//! // does for every request: record the peer address. A browser names the host it asked for.
//! let mut request = Request::get("/jobs/")
//!     .header("host", "localhost:8080")
//!     .body(Body::empty())?;
//! let peer: SocketAddr = "127.0.0.1:50000".parse()?;
//! request.extensions_mut().insert(ConnectInfo(peer));
//! let response = app.oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(()) }
//! ```
//!
//! Standalone, with options:
//!
//! ```no_run
//! use jobs::dashboard::{Access, AuthRequest, Dashboard};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), jobs::dashboard::DashboardError> {
//! let storage = jobs::MemoryStorage::new();
//! Dashboard::new(storage)
//!     .title("Billing jobs")
//!     // Anyone on the machine may look; acting needs a token header.
//!     .authorization(|request: &AuthRequest| {
//!         if request.headers().get("x-admin-token").is_some_and(|t| t == "secret") {
//!             Access::Allow
//!         } else if request.is_loopback() {
//!             Access::ReadOnly
//!         } else {
//!             Access::Forbidden
//!         }
//!     })
//!     .serve_with_shutdown("127.0.0.1:8080", async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     })
//!     .await
//! # }
//! ```
//!
//! # Pages
//!
//! | path | page | actions |
//! | --- | --- | --- |
//! | `/` | overview: counts per state, realtime graph, 24 h and 7 day history | — |
//! | `/jobs/enqueued` | queues: jobs per state (enqueued, scheduled, awaiting, processing, failed), the servers that serve them, concurrency and rate limits, paused or active | pause, resume, set limits |
//! | `/jobs/enqueued/{queue}` | enqueued jobs of one queue | delete |
//! | `/jobs/scheduled` | scheduled jobs and when they run | enqueue now, delete |
//! | `/jobs/processing` | running jobs, their server (warns when its heartbeat is stale) | requeue, delete |
//! | `/jobs/succeeded` | succeeded jobs, duration and latency | requeue |
//! | `/jobs/failed` | failed jobs, error type, message and details | requeue, delete |
//! | `/jobs/deleted` | deleted jobs and why | requeue |
//! | `/jobs/awaiting` | continuations waiting for their parent | enqueue now, delete |
//! | `/jobs/retries` | scheduled retries, attempt and last error | enqueue now, delete |
//! | `/jobs/search` | every job, by name, arguments, unique key and state | requeue, delete |
//! | `/job/{id}` | one job: unique key, mutex, arguments (the first 64 KiB), result, error, history, parent, continuations | requeue, enqueue now, delete |
//! | `/job/{id}/arguments.json` | one job's arguments, whole | — |
//! | `/recurring` | recurring jobs: cron and its meaning, zone, next and last run | trigger, pause, resume, remove |
//! | `/servers` | servers: workers, queues, started, heartbeat | — |
//! | `/stats.json` | counts, for the live refresh | — |
//!
//! Every list is paged (`?page=2&size=50`) and filters by job name, argument text and unique
//! key (`?name=mail&args=42&key=digest`); actions apply to the ticked rows. Pages work without
//! JavaScript; the embedded script only refreshes counts, draws the realtime graph and reloads
//! a job's page when its state changes. Everything is embedded in the binary: no CDN, works
//! offline.
//!
//! Actions are forms posted to `/actions/jobs/{requeue|enqueue|delete}` and
//! `/actions/recurring/{trigger|pause|resume|remove}` (the ticked `ids`), and to
//! `/actions/queues/{pause|resume|limits}` (one `queue`; `limits` also takes `concurrency`, a
//! whole number, and `rate`, like `50/1s`, each empty for none). A queue action that is
//! refused (an unknown queue, a zero or malformed limit) stores nothing and says why in the
//! library's words.
//!
//! # Security
//!
//! - Authorization: [`LocalOnly`] unless [`Dashboard::authorization`] replaces it; a request
//!   without a peer address (no `ConnectInfo`) is refused by it. Refusals are 401 or 403.
//! - [`LocalOnly`] also wants the `Host` the request was sent to to be a loopback name
//!   (`localhost`, 127.0.0.0/8 or `[::1]`, any port): a page of another site whose name was
//!   made to resolve to 127.0.0.1 (DNS rebinding) reaches a loopback peer, but under its own
//!   name, and is refused. Reached by another name, or through a reverse proxy that forwards
//!   the public `Host`, the dashboard needs an authorization of the application's own.
//! - Actions are POST only. Each must come from a page of the dashboard: its `Origin` header
//!   names the host the request was sent to, or the browser sends `Sec-Fetch-Site:
//!   same-origin` (browsers send one or both; a script posting on its own must send `Origin`).
//!   Each also carries a CSRF token bound to a cookie (an HMAC of the cookie's random value,
//!   compared in constant time). A post failing either check is refused with 403.
//! - Read-only mode ([`Dashboard::read_only`], or [`Access::ReadOnly`] per request) hides the
//!   buttons and refuses every POST with 403.
//! - Everything shown is HTML-escaped by the template engine; responses carry a strict
//!   Content-Security-Policy (no inline script or style), `X-Frame-Options: DENY` and
//!   `Cache-Control: no-store`.

// The insides, in layers: a module imports only modules of the layers before its own.
// 1. `auth`, `csrf`, `error` (PageError), `format` (values in words);
// 2. `flash`: the flash cookie (its notes signed with the CSRF key);
// 3. `context`: the router's state and what the guard learned about the request;
// 4. `query`: a list's filters and paging;
// 5. `guard`: the middleware; `actions`: the POST handlers; `templates`: the view models
//    and their markup;
// 6. `pages`: the GET handlers, which fill the view models.
mod actions;
mod auth;
mod context;
mod csrf;
mod error;
mod flash;
mod format;
mod guard;
mod pages;
mod query;
mod templates;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;

use crate::client::Client;
use crate::storage::Storage;

pub use auth::{Access, AsyncAuth, AuthRequest, DashboardAuth, LocalOnly};

/// Why [`Dashboard::serve`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// The address could not be bound.
    #[error("the dashboard could not listen on its address: {0}")]
    Bind(#[source] std::io::Error),
    /// The HTTP server failed.
    #[error("the dashboard's HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// The dashboard's router on `storage`, with the defaults of [`Dashboard::new`]: title "Jobs",
/// loopback peers only, actions allowed.
pub fn router(storage: impl Storage) -> Router {
    Dashboard::new(storage).router()
}

/// Builds the dashboard: options, then [`router`](Dashboard::router) to nest it or
/// [`serve`](Dashboard::serve) to run it alone.
#[derive(Clone)]
pub struct Dashboard {
    client: Client,
    title: String,
    read_only: bool,
    auth: Option<Arc<dyn DashboardAuth>>,
    csrf_secret: Option<[u8; 32]>,
    poll_interval: Duration,
}

impl fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dashboard")
            .field("title", &self.title)
            .field("read_only", &self.read_only)
            .field("custom_authorization", &self.auth.is_some())
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl Dashboard {
    /// A dashboard on `storage`.
    pub fn new(storage: impl Storage) -> Self {
        Dashboard::from_client(Client::new(storage))
    }

    /// A dashboard on a shared storage.
    pub fn from_arc(storage: Arc<dyn Storage>) -> Self {
        Dashboard::from_client(Client::from_arc(storage))
    }

    /// A dashboard acting through `client` (its storage and its clock: tests pin time with a
    /// [`ManualClock`](crate::clock::ManualClock)).
    pub fn from_client(client: Client) -> Self {
        Dashboard {
            client,
            title: "Jobs".to_owned(),
            read_only: false,
            auth: None,
            csrf_secret: None,
            poll_interval: Duration::from_secs(2),
        }
    }

    /// The title shown in the header and the browser tab (default "Jobs").
    #[must_use]
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Read-only: no action buttons, every POST refused with 403.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Decides who may use the dashboard, replacing the default [`LocalOnly`]. Takes an
    /// implementation of [`DashboardAuth`], a closure `Fn(&AuthRequest) -> Access` (or `bool`),
    /// or an async closure wrapped in [`AsyncAuth`].
    #[must_use]
    pub fn authorization(mut self, auth: impl DashboardAuth) -> Self {
        self.auth = Some(Arc::new(auth));
        self
    }

    /// The key that signs CSRF tokens (and the flash messages that carry text). By default a
    /// random key per [`router`](Dashboard::router) call, so a restart asks users to reload the
    /// page before acting; give the same secret to every instance behind a load balancer.
    #[must_use]
    pub fn csrf_secret(mut self, secret: [u8; 32]) -> Self {
        self.csrf_secret = Some(secret);
        self
    }

    /// How often open pages poll for live counts (default 2 s, at least 250 ms).
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(250));
        self
    }

    /// The router, to nest at any path (`Router::new().nest_service("/jobs", dashboard.router())`) or
    /// serve at the root. It reads the peer address from
    /// [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo).
    pub fn router(self) -> Router {
        let shared = Arc::new(context::Shared {
            client: self.client,
            title: self.title,
            read_only: self.read_only,
            auth: self.auth.unwrap_or_else(|| Arc::new(LocalOnly)),
            csrf: match self.csrf_secret {
                Some(secret) => csrf::CsrfKey::from_secret(secret),
                None => csrf::CsrfKey::random(),
            },
            poll_interval: self.poll_interval,
        });
        Router::new()
            .route("/", get(pages::overview))
            .route("/stats.json", get(pages::stats_json))
            .route("/assets/dashboard.css", get(pages::css))
            .route("/assets/dashboard.js", get(pages::js))
            .route("/jobs/enqueued", get(pages::queues))
            .route("/jobs/enqueued/{queue}", get(pages::queue))
            .route("/jobs/search", get(pages::search))
            .route("/jobs/{state}", get(pages::by_state))
            .route("/job/{id}", get(pages::job))
            .route("/job/{id}/state.json", get(pages::job_state_json))
            .route("/job/{id}/arguments.json", get(pages::job_arguments_json))
            .route("/recurring", get(pages::recurring))
            .route("/servers", get(pages::servers))
            .route("/actions/jobs/{action}", post(actions::jobs))
            .route("/actions/recurring/{action}", post(actions::recurring))
            .route("/actions/queues/{action}", post(actions::queues))
            .fallback(pages::not_found)
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                guard::guard,
            ))
            .with_state(shared)
    }

    /// Serves the dashboard alone on `addr` (e.g. `"127.0.0.1:8080"`) until the process ends.
    pub async fn serve(self, addr: impl tokio::net::ToSocketAddrs) -> Result<(), DashboardError> {
        self.serve_with_shutdown(addr, std::future::pending()).await
    }

    /// Serves the dashboard alone on `addr` until `shutdown` completes, then stops accepting
    /// connections and returns once open requests are answered.
    pub async fn serve_with_shutdown(
        self,
        addr: impl tokio::net::ToSocketAddrs,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), DashboardError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(DashboardError::Bind)?;
        self.serve_listener(listener, shutdown).await
    }

    /// Serves the dashboard on an already bound listener (bind port 0 to get a free port and
    /// read it with `listener.local_addr()`) until `shutdown` completes.
    pub async fn serve_listener(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), DashboardError> {
        let app = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(DashboardError::Serve)
    }
}
