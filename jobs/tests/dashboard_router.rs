//! Router-level tests of the dashboard (`tower::ServiceExt::oneshot`): every page, every
//! action, the security rules, paging and search. The peer address is injected with
//! `MockConnectInfo`; no traffic leaves the process. Requests carry what a browser on this
//! machine sends: `Host: 127.0.0.1:9401`, and `Origin` on form posts.
#![cfg(feature = "dashboard")]

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::{DateTime, TimeDelta, Utc};
use http_body_util::BodyExt;
use jobs::dashboard::{Access, AsyncAuth, AuthRequest, Dashboard};
use jobs::storage::{
    Completion, ContinueOn, FetchRequest, FetchedJob, InitialState, Misfire, NewJob, Outcome,
    RecurringJob, ServerInfo, StateData,
};
use jobs::{
    JobError, JobId, JobState, MemoryStorage, QueueLimits, QueueSettings, Rate, Storage, Uniqueness,
};
use tower::ServiceExt;

const LOCAL: &str = "127.0.0.1:40000";
const REMOTE: &str = "203.0.113.7:40000";
/// The `Host` of requests built without one.
const HOST: &str = "127.0.0.1:9401";
/// The `Origin` of form posts.
const ORIGIN: &str = "http://127.0.0.1:9401";

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("test address")
}

/// The dashboard's router as a server would run it for a peer at `peer`.
fn app_for(dashboard: Dashboard, peer: &str) -> Router {
    dashboard.router().layer(MockConnectInfo(addr(peer)))
}

fn app(storage: &MemoryStorage) -> Router {
    app_for(Dashboard::new(storage.clone()), LOCAL)
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    }

    /// The value of the CSRF token in the page's forms.
    fn csrf_token(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a form with a CSRF token") + marker.len();
        self.body[start..start + 64].to_owned()
    }

    fn assert_ok(&self) -> &Self {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        self
    }

    fn has(&self, text: &str) -> &Self {
        assert!(
            self.body.contains(text),
            "expected `{text}` in:\n{}",
            self.shown()
        );
        self
    }

    fn lacks(&self, text: &str) -> &Self {
        assert!(
            !self.body.contains(text),
            "did not expect `{text}` in:\n{}",
            self.shown()
        );
        self
    }

    /// The body for a failure message: its first 100,000 bytes (some pages are megabytes).
    fn shown(&self) -> &str {
        let mut end = self.body.len().min(100_000);
        while !self.body.is_char_boundary(end) {
            end -= 1;
        }
        &self.body[..end]
    }
}

/// Sends `request`, with `Host: 127.0.0.1:9401` unless it names its host.
async fn send(app: &Router, mut request: Request<Body>) -> Reply {
    if request.uri().authority().is_none() && !request.headers().contains_key(header::HOST) {
        request
            .headers_mut()
            .insert(header::HOST, header::HeaderValue::from_static(HOST));
    }
    send_as_is(app, request).await
}

/// Sends `request` with exactly its headers.
async fn send_as_is(app: &Router, request: Request<Body>) -> Reply {
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(app: &Router, path: &str) -> Reply {
    send(
        app,
        Request::get(path).body(Body::empty()).expect("request"),
    )
    .await
}

async fn get_with_cookie(app: &Router, path: &str, cookie: &str) -> Reply {
    let request = Request::get(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .expect("request");
    send(app, request).await
}

/// A browser-like session: keeps the CSRF cookie and reads tokens from pages.
struct Session {
    app: Router,
    cookie: String,
    token: String,
}

impl Session {
    async fn open(app: &Router, page: &str) -> Session {
        let reply = get(app, page).await;
        reply.assert_ok();
        let cookie = reply
            .set_cookies()
            .into_iter()
            .find(|c| c.starts_with("jobs_dashboard_csrf="))
            .expect("a CSRF cookie");
        let cookie = cookie.split(';').next().expect("cookie pair").to_owned();
        Session {
            app: app.clone(),
            token: reply.csrf_token(),
            cookie,
        }
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let mut form = vec![("csrf", self.token.as_str())];
        form.extend_from_slice(fields);
        post_form(&self.app, path, Some(&self.cookie), &form).await
    }

    async fn get(&self, path: &str) -> Reply {
        get_with_cookie(&self.app, path, &self.cookie).await
    }
}

fn encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn post_form(
    app: &Router,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> Reply {
    let mut request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, ORIGIN);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    send(
        app,
        request.body(Body::from(encode(fields))).expect("request"),
    )
    .await
}

/// Form fields.
type Form<'a> = Vec<(&'a str, &'a str)>;

// ---- fixtures -----------------------------------------------------------------------------------

fn new_job(name: &str, queue: &str, args: &str, initial: InitialState) -> NewJob {
    NewJob::plain(name, queue, args, initial)
}

async fn enqueue(storage: &MemoryStorage, name: &str, queue: &str, args: &str) -> JobId {
    storage
        .enqueue(
            vec![new_job(name, queue, args, InitialState::Enqueued)],
            Utc::now(),
        )
        .await
        .expect("enqueue")[0]
        .id
}

/// Enqueues a job in its own queue and starts it on `server`.
async fn start(storage: &MemoryStorage, name: &str, args: &str, server: &str) -> JobId {
    let queue = format!("q{}", rand_suffix());
    let id = enqueue(storage, name, &queue, args).await;
    let fetched = claim_one(storage, server, &queue).await;
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].id, id);
    id
}

/// Claims the next job of `queue` for `server` (a plain fetch, leased for five minutes).
async fn claim_one(storage: &MemoryStorage, server: &str, queue: &str) -> Vec<FetchedJob> {
    let now = Utc::now();
    storage
        .fetch(FetchRequest {
            server_id: server,
            queues: &[queue.to_owned()],
            limit: 1,
            capacity: 1,
            now,
            lease_until: now + TimeDelta::minutes(5),
            flow: false,
            gated: false,
        })
        .await
        .expect("fetch")
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn finish(storage: &MemoryStorage, id: JobId, server: &str, outcome: Outcome) {
    storage
        .complete(&[Completion {
            id,
            server_id: server.into(),
            at: Utc::now(),
            outcome,
        }])
        .await
        .expect("complete");
}

fn error(type_name: &str, message: &str, details: Option<&str>) -> JobError {
    let mut error = JobError::new(type_name, message);
    error.details = details.map(str::to_owned);
    error
}

async fn failed_job(storage: &MemoryStorage, name: &str, args: &str, e: JobError) -> JobId {
    let id = start(storage, name, args, "server-a").await;
    finish(
        storage,
        id,
        "server-a",
        Outcome::Failed {
            reason: format!("{}: {}", e.type_name, e.message),
            data: StateData {
                server: Some("server-a".into()),
                attempt: Some(1),
                error: Some(e),
                ..StateData::default()
            },
        },
    )
    .await;
    id
}

async fn state_of(storage: &MemoryStorage, id: JobId) -> JobState {
    storage.job(id).await.expect("job").expect("exists").state
}

fn recurring_job(id: &str, cron: &str) -> RecurringJob {
    let now = Utc::now();
    RecurringJob {
        id: id.to_owned(),
        cron: cron.to_owned(),
        time_zone: "Europe/Paris".to_owned(),
        job_name: "reports.nightly".to_owned(),
        queue: "default".to_owned(),
        priority: jobs::DEFAULT_PRIORITY,
        mutex: None,
        limited: false,
        args: "{\"kind\":\"daily\"}".to_owned(),
        misfire: Misfire::FireOnce,
        skip_if_running: false,
        paused: false,
        next_run: Some(now + TimeDelta::hours(3)),
        last_run: None,
        last_job_id: None,
        last_job_state: None,
        last_error: None,
        created_at: now,
    }
}

// ---- pages ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_page_renders() {
    let storage = MemoryStorage::new();
    let enqueued = enqueue(&storage, "mail.send", "default", "{\"to\":\"ann\"}").await;
    let failed = failed_job(
        &storage,
        "billing.charge",
        "{\"order\":7}",
        error(
            "billing::CardDeclined",
            "card declined",
            Some("gateway said no"),
        ),
    )
    .await;
    storage
        .upsert_recurring(recurring_job("nightly", "30 9 * * 1-5"))
        .await
        .expect("recurring");
    let app = app(&storage);

    get(&app, "/")
        .await
        .assert_ok()
        .has("Overview")
        .has("Last 24 hours")
        .has("Last 7 days")
        .has("<canvas id=\"realtime\"")
        .has("data-count=\"failed\"");
    get(&app, "/jobs/enqueued")
        .await
        .assert_ok()
        .has("/jobs/enqueued/default")
        .has("no server serves this queue");
    get(&app, "/jobs/enqueued/default")
        .await
        .assert_ok()
        .has("mail.send")
        .has(&format!("/job/{enqueued}"));
    for state in JobState::ALL {
        get(&app, &format!("/jobs/{}", state.as_str()))
            .await
            .assert_ok();
    }
    get(&app, "/jobs/failed")
        .await
        .has("billing.charge")
        .has("billing::CardDeclined")
        .has("card declined")
        .has("gateway said no");
    get(&app, "/jobs/retries").await.assert_ok().has("Retries");
    get(&app, "/jobs/search").await.assert_ok().has("mail.send");
    get(&app, &format!("/job/{failed}"))
        .await
        .assert_ok()
        .has("billing.charge")
        .has("&quot;order&quot;: 7");
    get(&app, "/recurring")
        .await
        .assert_ok()
        .has("nightly")
        .has("30 9 * * 1-5")
        .has("at 09:30 on Monday to Friday")
        .has("Europe/Paris");
    get(&app, "/servers")
        .await
        .assert_ok()
        .has("No server is running");

    let stats = get(&app, "/stats.json").await;
    stats.assert_ok();
    let json: serde_json::Value = serde_json::from_str(&stats.body).expect("json");
    assert_eq!(json["counts"]["enqueued"], 1);
    assert_eq!(json["counts"]["failed"], 1);
    assert_eq!(json["counts"]["recurring"], 1);
    assert_eq!(json["today"]["failed"], 1);

    let css = get(&app, "/assets/dashboard.css").await;
    css.assert_ok();
    assert!(css.headers[header::CONTENT_TYPE]
        .to_str()
        .expect("ascii")
        .starts_with("text/css"));
    let js = get(&app, "/assets/dashboard.js").await;
    js.assert_ok().has("data-stats-url");
}

#[tokio::test]
async fn unknown_pages_and_jobs_are_404() {
    let storage = MemoryStorage::new();
    let app = app(&storage);
    for path in [
        "/job/424242",
        "/job/abc",
        "/jobs/nonsense",
        "/nope",
        "/job/1/state.json",
    ] {
        assert_eq!(
            get(&app, path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

#[tokio::test]
async fn list_pages_show_what_each_state_needs() {
    let storage = MemoryStorage::new();
    let now = Utc::now();
    // Scheduled, in 2 hours.
    storage
        .enqueue(
            vec![new_job(
                "later",
                "default",
                "{}",
                InitialState::Scheduled {
                    at: now + TimeDelta::hours(2),
                },
            )],
            now,
        )
        .await
        .expect("schedule");
    // Processing on a server whose heartbeat is 5 minutes old.
    storage
        .register_server(
            &ServerInfo {
                id: "old-server".into(),
                queues: vec!["default".into(), "critical".into()],
                workers: 7,
                started_at: now - TimeDelta::hours(1),
            },
            now - TimeDelta::minutes(5),
        )
        .await
        .expect("register");
    let running = start(&storage, "slow.export", "{}", "old-server").await;
    // Succeeded with a duration and a latency.
    let done = start(&storage, "quick.job", "{}", "server-a").await;
    finish(
        &storage,
        done,
        "server-a",
        Outcome::Succeeded {
            data: StateData {
                duration_ms: Some(1500),
                latency_ms: Some(42),
                result: Some(serde_json::json!({"rows": 3})),
                ..StateData::default()
            },
        },
    )
    .await;
    // A retry.
    let retried = start(&storage, "flaky.job", "{}", "server-a").await;
    finish(
        &storage,
        retried,
        "server-a",
        Outcome::Retry {
            run_at: now + TimeDelta::minutes(1),
            reason: "Retry attempt 1 of 10: timeout".into(),
            data: StateData {
                error: Some(error("io::Timeout", "timed out", None)),
                ..StateData::default()
            },
        },
    )
    .await;
    // A continuation of the running job, and a deleted job.
    let child = storage
        .enqueue(
            vec![new_job(
                "after.export",
                "default",
                "{}",
                InitialState::Awaiting {
                    parent: running,
                    on: ContinueOn::Succeeded,
                },
            )],
            now,
        )
        .await
        .expect("continuation")[0]
        .id;
    let gone = enqueue(&storage, "unwanted", "default", "{}").await;
    storage
        .delete(gone, "deleted by a test", Utc::now())
        .await
        .expect("delete");
    let app = app(&storage);

    get(&app, "/jobs/scheduled")
        .await
        .has("later")
        .has("in 1 h 59 min")
        .has("Enqueue now");
    get(&app, "/jobs/processing")
        .await
        .has("slow.export")
        .has("old-server")
        .has("possibly aborted");
    get(&app, "/jobs/succeeded")
        .await
        .has("quick.job")
        .has("1.5 s")
        .has("42 ms")
        .has("{&quot;rows&quot;:3}");
    get(&app, "/jobs/retries")
        .await
        .has("flaky.job")
        .has("io::Timeout")
        .lacks("later");
    get(&app, "/jobs/awaiting")
        .await
        .has("after.export")
        .has(&format!("/job/{running}"))
        .has("when its parent succeeds");
    get(&app, "/jobs/deleted")
        .await
        .has("unwanted")
        .has("deleted by a test");
    get(&app, "/servers")
        .await
        .has("old-server")
        .has("critical")
        .has(">7<")
        .has("possibly aborted");
    get(&app, "/jobs/enqueued").await.has("1 server");
    // The job page warns about its dead server, and links parent and continuation.
    get(&app, &format!("/job/{running}"))
        .await
        .has("its server's last heartbeat was 5 min ago")
        .has(&format!("/job/{child}"))
        .has("after.export");
    get(&app, &format!("/job/{child}"))
        .await
        .has(&format!("/job/{running}"))
        .has("runs when its parent succeeds");
    let json = get(&app, &format!("/job/{running}/state.json")).await;
    json.assert_ok().has("\"state\":\"processing\"");
}

#[tokio::test]
async fn job_page_shows_arguments_result_error_and_history() {
    let storage = MemoryStorage::new();
    let id = start(
        &storage,
        "report.build",
        "{\"month\":\"2024-05\",\"pages\":[1,2]}",
        "server-a",
    )
    .await;
    finish(
        &storage,
        id,
        "server-a",
        Outcome::Succeeded {
            data: StateData {
                server: Some("server-a".into()),
                duration_ms: Some(2500),
                result: Some(serde_json::json!({"url": "/r/5"})),
                ..StateData::default()
            },
        },
    )
    .await;
    let app = app(&storage);
    get(&app, &format!("/job/{id}"))
        .await
        .assert_ok()
        .has("Arguments")
        .has("&quot;month&quot;: &quot;2024-05&quot;")
        .has("Result")
        .has("&quot;url&quot;: &quot;/r/5&quot;")
        .has("History")
        .has("state-succeeded")
        .has("state-processing")
        .has("state-enqueued")
        .has("2.5 s")
        .has("data-job-state=\"succeeded\"");
}

/// A job with a 5 MB argument: its page shows the first 64 KiB and links to the whole JSON.
#[tokio::test]
async fn a_huge_argument_is_cut_on_its_page_and_served_whole() {
    let storage = MemoryStorage::new();
    let big = serde_json::json!({ "blob": "x".repeat(5 * 1024 * 1024) }).to_string();
    let id = enqueue(&storage, "import.blob", "default", &big).await;
    let small = enqueue(&storage, "import.small", "default", "{\"n\":1}").await;
    let app = app(&storage);
    let page = get(&app, &format!("/job/{id}")).await;
    page.assert_ok()
        .has("Only the first 64 KiB of the arguments (5.0 MiB) are shown.")
        .has(&format!("href=\"/job/{id}/arguments.json\""));
    assert!(page.body.len() < 80 * 1024, "{} bytes", page.body.len());
    let json = get(&app, &format!("/job/{id}/arguments.json")).await;
    json.assert_ok();
    assert_eq!(json.headers[header::CONTENT_TYPE], "application/json");
    assert!(json.body == big, "the whole arguments, as stored");
    // Small arguments are shown whole, with no note.
    get(&app, &format!("/job/{small}"))
        .await
        .assert_ok()
        .has("&quot;n&quot;: 1")
        .lacks("Only the first");
    get(&app, &format!("/job/{small}/arguments.json"))
        .await
        .assert_ok()
        .has("{\"n\":1}");
    // Missing jobs are 404; the JSON obeys the same authorization as the pages.
    assert_eq!(
        get(&app, "/job/424242/arguments.json").await.status,
        StatusCode::NOT_FOUND
    );
    let remote = app_for(Dashboard::new(storage.clone()), REMOTE);
    let refused = get(&remote, &format!("/job/{id}/arguments.json")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!refused.body.contains("xxxx"));
}

/// The Scheduled list runs soonest first, whatever the order the jobs were scheduled in.
#[tokio::test]
async fn scheduled_jobs_are_listed_soonest_first() {
    let storage = MemoryStorage::new();
    let now = Utc::now();
    for (name, hours) in [("third.job", 3), ("first.job", 1), ("second.job", 2)] {
        storage
            .enqueue(
                vec![new_job(
                    name,
                    "default",
                    "{}",
                    InitialState::Scheduled {
                        at: now + TimeDelta::hours(hours),
                    },
                )],
                now,
            )
            .await
            .expect("schedule");
    }
    let page = get(&app(&storage), "/jobs/scheduled").await;
    page.assert_ok();
    let at = |name: &str| page.body.find(name).expect(name);
    assert!(
        at("first.job") < at("second.job") && at("second.job") < at("third.job"),
        "{}",
        page.body
    );
}

/// The history graphs count failed attempts (a retry is one), and say so.
#[tokio::test]
async fn history_graphs_count_failed_attempts() {
    let storage = MemoryStorage::new();
    let retried = start(&storage, "flaky.job", "{}", "server-a").await;
    finish(
        &storage,
        retried,
        "server-a",
        Outcome::Retry {
            run_at: Utc::now() + TimeDelta::minutes(1),
            reason: "Retry attempt 1 of 10: timeout".into(),
            data: StateData::default(),
        },
    )
    .await;
    let page = get(&app(&storage), "/").await;
    page.assert_ok()
        // No job has failed...
        .has("data-count=\"failed\">0<")
        // ...but one attempt has, and both graphs and the realtime one say what they count.
        .has("1 failed attempt</span>")
        .has(", 1 failed attempt</title>")
        .has(">Failed attempts</th>")
        .has(">failed attempts</span>")
        .lacks(" failed</span>");
}

// ---- escaping ------------------------------------------------------------------------------------

#[tokio::test]
async fn user_data_is_escaped() {
    let storage = MemoryStorage::new();
    let evil = "<script>alert('args')</script>";
    let args = serde_json::json!({ "html": evil }).to_string();
    let id = failed_job(
        &storage,
        "<script>alert('name')</script>",
        &args,
        error(
            "<script>alert('type')</script>",
            "<script>alert('message')</script>",
            Some("<img src=x onerror=alert(1)>"),
        ),
    )
    .await;
    let mut recurring = recurring_job("<script>alert('recurring')</script>", "* * * * *");
    recurring.last_error = Some("<script>alert('last error')</script>".into());
    storage
        .upsert_recurring(recurring)
        .await
        .expect("recurring");
    let app = app(&storage);
    for path in [
        format!("/job/{id}"),
        "/jobs/failed".to_owned(),
        "/jobs/search?args=script".to_owned(),
        "/recurring".to_owned(),
        "/jobs/search?name=%3Cscript%3E".to_owned(),
    ] {
        let reply = get(&app, &path).await;
        reply.assert_ok();
        assert!(
            !reply.body.contains("<script>alert"),
            "{path}: {}",
            reply.body
        );
        assert!(!reply.body.contains("<img src=x"), "{path}");
        assert!(reply.body.contains("&lt;script&gt;alert("), "{path}");
    }
    get(&app, &format!("/job/{id}"))
        .await
        .has("&lt;script&gt;alert('message')&lt;/script&gt;")
        .has("&lt;img src=x onerror=alert(1)&gt;");
}

// ---- paging and search ---------------------------------------------------------------------------

#[tokio::test]
async fn lists_page_and_search() {
    let storage = MemoryStorage::new();
    for i in 0..25 {
        let name = if i % 5 == 0 { "mail.send" } else { "other.job" };
        enqueue(
            &storage,
            name,
            "default",
            &format!("{{\"user\":\"user-{i:02}\"}}"),
        )
        .await;
    }
    let app = app(&storage);
    let count_rows = |body: &str| body.matches("name=\"ids\"").count();

    let first = get(&app, "/jobs/enqueued/default").await;
    first.assert_ok().has("25 total").has("page=2");
    assert_eq!(count_rows(&first.body), 20);
    let second = get(&app, "/jobs/enqueued/default?page=2").await;
    assert_eq!(count_rows(&second.body), 5);
    let small = get(&app, "/jobs/enqueued/default?size=10&page=3").await;
    assert_eq!(count_rows(&small.body), 5);
    small.has("page=2&amp;size=10");
    // Nonsense paging falls back to defaults.
    let odd = get(&app, "/jobs/enqueued/default?page=zero&size=7").await;
    assert_eq!(count_rows(&odd.body), 20);
    // Past the end: an empty page that still links back.
    get(&app, "/jobs/enqueued/default?page=9").await.assert_ok();

    let by_name = get(&app, "/jobs/search?name=MAIL").await;
    assert_eq!(count_rows(&by_name.body), 5);
    by_name.lacks("other.job").has("5 total");
    let by_args = get(&app, "/jobs/search?args=user-07").await;
    assert_eq!(count_rows(&by_args.body), 1);
    by_args.has("user-07");
    let both = get(&app, "/jobs/enqueued?name=nothing").await;
    both.assert_ok();
    let none = get(&app, "/jobs/search?name=mail&args=user-01").await;
    none.has("No job matches.");
    let by_state = get(&app, "/jobs/search?state=failed").await;
    by_state.has("No job matches.");
    // Filters survive paging.
    let filtered = get(&app, "/jobs/search?name=other&size=10").await;
    filtered
        .has("20 total")
        .has("name=other&amp;page=2&amp;size=10");

    for i in 0..3 {
        storage
            .upsert_recurring(recurring_job(&format!("report-{i}"), "0 * * * *"))
            .await
            .expect("recurring");
    }
    storage
        .upsert_recurring(recurring_job("cleanup", "0 0 * * *"))
        .await
        .expect("recurring");
    let reports = get(&app, "/recurring?q=REPORT-").await;
    reports.has("report-2").lacks(">cleanup<").has("3 total");
    let paged = get(&app, "/recurring?size=10").await;
    paged.has("4 total");
}

// ---- actions -------------------------------------------------------------------------------------

#[tokio::test]
async fn job_actions_requeue_delete_and_enqueue_now() {
    let storage = MemoryStorage::new();
    let failed = failed_job(&storage, "f", "{}", error("E", "boom", None)).await;
    let now = Utc::now();
    let scheduled = storage
        .enqueue(
            vec![new_job(
                "s",
                "default",
                "{}",
                InitialState::Scheduled {
                    at: now + TimeDelta::hours(1),
                },
            )],
            now,
        )
        .await
        .expect("schedule")[0]
        .id;
    let a = enqueue(&storage, "a", "default", "{}").await;
    let b = enqueue(&storage, "b", "default", "{}").await;
    let app = app(&storage);
    let session = Session::open(&app, "/jobs/failed").await;

    // Requeue from the failed list: back to the list, with a message.
    let reply = session
        .post(
            "/actions/jobs/requeue",
            &[
                ("ids", &failed.to_string()),
                ("back", "/jobs/failed?page=1"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.location(), "/jobs/failed?page=1");
    assert_eq!(state_of(&storage, failed).await, JobState::Enqueued);
    let flash = reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("jobs_dashboard_flash="))
        .expect("flash cookie");
    let flash = flash.split(';').next().expect("pair");
    let next = get_with_cookie(
        &app,
        "/jobs/failed",
        &format!("{}; {flash}", session.cookie),
    )
    .await;
    next.has("Requeued 1 job.");
    assert!(next
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("jobs_dashboard_flash=;") && c.contains("Max-Age=0")));

    // Enqueue now: a scheduled job is enqueued, and the message says so.
    session
        .get("/jobs/scheduled")
        .await
        .has("formaction=\"/actions/jobs/enqueue\"");
    session
        .get(&format!("/job/{scheduled}"))
        .await
        .has("action=\"/actions/jobs/enqueue\"");
    let reply = session
        .post(
            "/actions/jobs/enqueue",
            &[("ids", &scheduled.to_string()), ("back", "/jobs/scheduled")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(state_of(&storage, scheduled).await, JobState::Enqueued);
    let flash = reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("jobs_dashboard_flash="))
        .expect("flash cookie");
    let flash = flash.split(';').next().expect("pair");
    get_with_cookie(
        &app,
        "/jobs/scheduled",
        &format!("{}; {flash}", session.cookie),
    )
    .await
    .has("Enqueued 1 job.")
    .lacks("Requeued");

    // Bulk delete.
    let reply = session
        .post(
            "/actions/jobs/delete",
            &[
                ("ids", &a.to_string()),
                ("ids", &b.to_string()),
                ("back", "/jobs/enqueued/default"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), "/jobs/enqueued/default");
    assert_eq!(state_of(&storage, a).await, JobState::Deleted);
    assert_eq!(state_of(&storage, b).await, JobState::Deleted);

    // From the job page.
    let reply = session
        .post(
            "/actions/jobs/requeue",
            &[("ids", &a.to_string()), ("back", &format!("/job/{a}"))],
        )
        .await;
    assert_eq!(reply.location(), format!("/job/{a}"));
    assert_eq!(state_of(&storage, a).await, JobState::Enqueued);

    // Unknown ids are reported, bad ids refused, an open redirect is not followed.
    let reply = session
        .post(
            "/actions/jobs/delete",
            &[("ids", "99999"), ("back", "https://evil.example/")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), "/");
    let reply = session.post("/actions/jobs/delete", &[("ids", "x")]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let many: Vec<(&str, &str)> = (0..1001).map(|_| ("ids", "1")).collect();
    let reply = session.post("/actions/jobs/delete", &many).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(state_of(&storage, a).await, JobState::Enqueued);
    let reply = session.post("/actions/jobs/explode", &[("ids", "1")]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    // Nothing ticked: back to the page, nothing done.
    let reply = session
        .post("/actions/jobs/delete", &[("back", "/jobs/failed")])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn deleting_one_job_asks_about_this_job() {
    let storage = MemoryStorage::new();
    let id = enqueue(&storage, "a", "default", "{}").await;
    let app = app(&storage);
    get(&app, &format!("/job/{id}"))
        .await
        .assert_ok()
        .has("data-confirm=\"Delete this job?\"")
        .lacks("selected jobs");
    get(&app, "/jobs/enqueued/default")
        .await
        .has("data-confirm=\"Delete the selected jobs?\"");
}

#[tokio::test]
async fn recurring_actions_trigger_pause_resume_remove() {
    let storage = MemoryStorage::new();
    storage
        .upsert_recurring(recurring_job("nightly", "0 3 * * *"))
        .await
        .expect("recurring");
    storage
        .upsert_recurring(recurring_job("hourly", "0 * * * *"))
        .await
        .expect("recurring");
    let app = app(&storage);
    let session = Session::open(&app, "/recurring").await;
    session
        .get("/recurring")
        .await
        .has("Trigger now")
        .has("Pause")
        .has("Resume")
        .has("Remove");

    let reply = session
        .post(
            "/actions/recurring/trigger",
            &[("ids", "nightly"), ("back", "/recurring")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.location(), "/recurring");
    let nightly = storage
        .recurring("nightly")
        .await
        .expect("read")
        .expect("exists");
    let fired = nightly.last_job_id.expect("a fired job");
    assert_eq!(state_of(&storage, fired).await, JobState::Enqueued);
    session
        .get("/recurring")
        .await
        .has(&format!("/job/{fired}"))
        .has("state-enqueued");
    session
        .get(&format!("/job/{fired}"))
        .await
        .has("recurring job nightly")
        .has("/recurring?q=nightly");

    session
        .post(
            "/actions/recurring/pause",
            &[
                ("ids", "nightly"),
                ("ids", "hourly"),
                ("back", "/recurring"),
            ],
        )
        .await;
    assert!(
        storage
            .recurring("nightly")
            .await
            .expect("read")
            .expect("exists")
            .paused
    );
    assert!(
        storage
            .recurring("hourly")
            .await
            .expect("read")
            .expect("exists")
            .paused
    );
    session.get("/recurring").await.has("Paused");

    session
        .post(
            "/actions/recurring/resume",
            &[("ids", "hourly"), ("back", "/recurring")],
        )
        .await;
    assert!(
        !storage
            .recurring("hourly")
            .await
            .expect("read")
            .expect("exists")
            .paused
    );

    session
        .post(
            "/actions/recurring/remove",
            &[("ids", "hourly"), ("back", "/recurring")],
        )
        .await;
    assert!(storage.recurring("hourly").await.expect("read").is_none());

    let reply = session
        .post(
            "/actions/recurring/remove",
            &[("ids", "missing"), ("back", "/recurring")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    let flash = reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("jobs_dashboard_flash="))
        .expect("flash");
    assert!(
        flash.starts_with("jobs_dashboard_flash=remove.0.1;"),
        "{flash}"
    );
}

// ---- security ------------------------------------------------------------------------------------

#[tokio::test]
async fn only_loopback_peers_by_default() {
    let storage = MemoryStorage::new();
    let remote = app_for(Dashboard::new(storage.clone()), REMOTE);
    for path in [
        "/",
        "/jobs/failed",
        "/stats.json",
        "/assets/dashboard.js",
        "/nope",
    ] {
        let reply = get(&remote, path).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        assert!(reply.body.contains("only requests from this machine"));
    }
    let reply = post_form(&remote, "/actions/jobs/delete", None, &[("ids", "1")]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    // No ConnectInfo at all (served without `into_make_service_with_connect_info`): refused.
    let unknown = Dashboard::new(storage.clone()).router();
    assert_eq!(get(&unknown, "/").await.status, StatusCode::FORBIDDEN);

    // IPv6 and IPv4-mapped loopback are local.
    for peer in ["[::1]:5000", "[::ffff:127.0.0.1]:5000", "127.1.2.3:5000"] {
        let app = app_for(Dashboard::new(storage.clone()), peer);
        assert_eq!(get(&app, "/").await.status, StatusCode::OK, "{peer}");
    }
    // A private-range peer is not local either.
    let lan = app_for(Dashboard::new(storage.clone()), "192.168.1.20:5000");
    assert_eq!(get(&lan, "/").await.status, StatusCode::FORBIDDEN);
}

/// DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 reaches the
/// dashboard from a loopback peer, but with its own name in `Host` (and in `Origin`).
#[tokio::test]
async fn other_host_names_are_refused_by_default() {
    let storage = MemoryStorage::new();
    let id = enqueue(&storage, "secret.payroll", "default", "{}").await;
    let app = app(&storage);
    let request = |host: &str, path: &str| {
        Request::get(path)
            .header(header::HOST, host)
            .header(header::ORIGIN, format!("http://{host}"))
            .body(Body::empty())
            .expect("request")
    };
    for host in [
        "evil.example:9401",
        "evil.example",
        "127.0.0.1.evil.example:9401",
        "localhost.evil.example",
        "localhost@evil.example:9401",
        "10.0.0.1:9401",
        "[::2]:9401",
        "[::1",
    ] {
        for path in ["/", "/jobs/enqueued/default", "/stats.json"] {
            let reply = send_as_is(&app, request(host, path)).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{host}{path}");
            assert!(reply.body.contains("addressed to localhost"), "{host}");
            reply.lacks("secret.payroll").lacks("name=\"csrf\"");
            assert!(reply.set_cookies().is_empty(), "{host}");
        }
    }
    // The delete of the report, with a cookie and token a local page handed out: refused.
    let session = Session::open(&app, "/jobs/enqueued/default").await;
    let delete = Request::post("/actions/jobs/delete")
        .header(header::HOST, "evil.example:9401")
        .header(header::ORIGIN, "http://evil.example:9401")
        .header("sec-fetch-site", "same-origin")
        .header(header::COOKIE, &session.cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(encode(&[
            ("ids", &id.to_string()),
            ("csrf", &session.token),
        ])))
        .expect("request");
    assert_eq!(send_as_is(&app, delete).await.status, StatusCode::FORBIDDEN);
    assert_eq!(state_of(&storage, id).await, JobState::Enqueued);

    // No host name at all: refused too.
    let bare = Request::get("/").body(Body::empty()).expect("request");
    assert_eq!(send_as_is(&app, bare).await.status, StatusCode::FORBIDDEN);
    // Two Host headers: refused.
    let twice = Request::get("/")
        .header(header::HOST, "localhost")
        .header(header::HOST, "evil.example")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send_as_is(&app, twice).await.status, StatusCode::FORBIDDEN);
    // HTTP/2 names the host in the URI (`:authority`); both names must be loopback.
    let h2 = Request::get("http://localhost:9401/")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send_as_is(&app, h2).await.status, StatusCode::OK);
    let h2 = Request::get("http://evil.example:9401/")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send_as_is(&app, h2).await.status, StatusCode::FORBIDDEN);
    let mixed = Request::get("http://evil.example/")
        .header(header::HOST, "localhost")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send_as_is(&app, mixed).await.status, StatusCode::FORBIDDEN);

    // Loopback names, any port.
    for host in [
        "localhost",
        "LocalHost:9401",
        "127.0.0.1",
        "127.8.9.10:80",
        "[::1]",
        "[::1]:9401",
    ] {
        let reply = send_as_is(&app, request(host, "/jobs/enqueued/default")).await;
        reply.assert_ok().has("secret.payroll");
    }

    // An application's own authorization decides for itself.
    let open = app_for(
        Dashboard::new(storage.clone()).authorization(|_: &AuthRequest| true),
        REMOTE,
    );
    let reply = send_as_is(&open, request("jobs.example.com", "/jobs/enqueued/default")).await;
    reply.assert_ok().has("secret.payroll");
    // It can read the host too.
    let by_host = app_for(
        Dashboard::new(storage.clone()).authorization(|request: &AuthRequest| {
            request.host() == Some("jobs.example.com") || request.is_loopback_host()
        }),
        REMOTE,
    );
    send_as_is(&by_host, request("jobs.example.com", "/"))
        .await
        .assert_ok();
    send_as_is(&by_host, request("localhost:1", "/"))
        .await
        .assert_ok();
    let other = send_as_is(&by_host, request("evil.example", "/")).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
}

/// A form post is accepted only from the dashboard's own pages: its `Origin` names the host it
/// was sent to, or the browser says `Sec-Fetch-Site: same-origin`; the CSRF token is checked
/// besides.
#[tokio::test]
async fn posts_must_come_from_the_dashboards_own_pages() {
    let storage = MemoryStorage::new();
    let id = failed_job(&storage, "f", "{}", error("E", "boom", None)).await;
    let app = app(&storage);
    let session = Session::open(&app, "/jobs/failed").await;
    let ids = id.to_string();
    let post = |session: &Session, host: &str, headers: &[(&str, &str)]| {
        let mut request = Request::post("/actions/jobs/requeue")
            .header(header::HOST, host)
            .header(header::COOKIE, &session.cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = encode(&[("ids", &ids), ("csrf", &session.token)]);
        request.body(Body::from(body)).expect("request")
    };
    for (case, headers) in [
        ("neither header", vec![]),
        ("another site", vec![("origin", "http://evil.example")]),
        ("another port", vec![("origin", "http://127.0.0.1:9402")]),
        ("an opaque origin", vec![("origin", "null")]),
        ("a cross-site fetch", vec![("sec-fetch-site", "cross-site")]),
        ("a same-site fetch", vec![("sec-fetch-site", "same-site")]),
        (
            "both, cross-site",
            vec![
                ("origin", "http://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
        ),
    ] {
        let reply = send_as_is(&app, post(&session, HOST, &headers)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{case}");
        assert!(reply.body.contains("Origin"), "{case}: {}", reply.body);
        assert_eq!(state_of(&storage, id).await, JobState::Failed, "{case}");
    }
    for (case, host, headers) in [
        ("its origin", HOST, vec![("origin", ORIGIN)]),
        (
            "its origin, names in another case",
            "LOCALHOST:9401",
            vec![("origin", "http://localhost:9401")],
        ),
        (
            "the default port",
            "localhost:80",
            vec![("origin", "http://localhost")],
        ),
        (
            "a same-origin fetch",
            HOST,
            vec![("sec-fetch-site", "same-origin")],
        ),
    ] {
        let reply = send_as_is(&app, post(&session, host, &headers)).await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "{case}: {}",
            reply.body
        );
    }
    assert_eq!(state_of(&storage, id).await, JobState::Enqueued);
    // The same rule under an application's own authorization.
    let open = app_for(
        Dashboard::new(storage.clone()).authorization(|_: &AuthRequest| true),
        REMOTE,
    );
    let remote = Session::open(&open, &format!("/job/{id}")).await;
    let reply = send_as_is(
        &open,
        post(
            &remote,
            "jobs.example.com",
            &[("origin", "https://evil.example")],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = send_as_is(
        &open,
        post(
            &remote,
            "jobs.example.com",
            &[("origin", "https://jobs.example.com")],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
}

#[tokio::test]
async fn custom_authorization_sync_and_async() {
    let storage = MemoryStorage::new();
    let token_auth = |request: &AuthRequest| match request
        .headers()
        .get("x-token")
        .and_then(|v| v.to_str().ok())
    {
        Some("admin") => Access::Allow,
        Some("viewer") => Access::ReadOnly,
        Some(_) => Access::Forbidden,
        None => Access::Challenge("Basic realm=\"jobs\"".into()),
    };
    let app = app_for(
        Dashboard::new(storage.clone()).authorization(token_auth),
        REMOTE,
    );
    let with = |token: &str| {
        Request::get("/")
            .header("x-token", token)
            .body(Body::empty())
            .expect("request")
    };
    assert_eq!(send(&app, with("admin")).await.status, StatusCode::OK);
    let viewer = send(&app, with("viewer")).await;
    assert_eq!(viewer.status, StatusCode::OK);
    assert!(viewer.body.contains("read-only"));
    assert_eq!(send(&app, with("nope")).await.status, StatusCode::FORBIDDEN);
    let anonymous = get(&app, "/").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers[header::WWW_AUTHENTICATE],
        "Basic realm=\"jobs\""
    );
    // A read-only viewer cannot post, even with a valid token.
    let id = enqueue(&storage, "x", "default", "{}").await;
    let viewer_page = send(
        &app,
        Request::get("/jobs/enqueued/default")
            .header("x-token", "viewer")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert!(!viewer_page.body.contains("name=\"csrf\""));
    assert!(!viewer_page.body.contains(">Delete<"));
    let post = Request::post("/actions/jobs/delete")
        .header("x-token", "viewer")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("ids={id}")))
        .expect("request");
    assert_eq!(send(&app, post).await.status, StatusCode::FORBIDDEN);
    assert_eq!(state_of(&storage, id).await, JobState::Enqueued);

    // Booleans, and async closures.
    let app = app_for(
        Dashboard::new(storage.clone()).authorization(|_: &AuthRequest| true),
        REMOTE,
    );
    assert_eq!(get(&app, "/").await.status, StatusCode::OK);
    let app = app_for(
        Dashboard::new(storage.clone()).authorization(AsyncAuth(
            |request: AuthRequest| async move {
                tokio::task::yield_now().await;
                if request.peer().is_some_and(|peer| peer.port() == 40000) {
                    Access::Allow
                } else {
                    Access::Unauthenticated
                }
            },
        )),
        REMOTE,
    );
    assert_eq!(get(&app, "/").await.status, StatusCode::OK);
    let app = app_for(
        Dashboard::new(storage.clone()).authorization(AsyncAuth(|_: AuthRequest| async {
            Access::Unauthenticated
        })),
        LOCAL,
    );
    let reply = get(&app, "/").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(!reply.headers.contains_key(header::WWW_AUTHENTICATE));
}

#[tokio::test]
async fn read_only_mode_hides_buttons_and_refuses_posts() {
    let storage = MemoryStorage::new();
    let failed = failed_job(&storage, "f", "{}", error("E", "boom", None)).await;
    storage
        .upsert_recurring(recurring_job("nightly", "0 3 * * *"))
        .await
        .expect("recurring");
    let app = app_for(Dashboard::new(storage.clone()).read_only(true), LOCAL);
    for path in [
        "/jobs/failed".to_owned(),
        format!("/job/{failed}"),
        "/recurring".to_owned(),
    ] {
        get(&app, &path)
            .await
            .assert_ok()
            .has("read-only")
            .lacks(">Requeue<")
            .lacks(">Delete<")
            .lacks(">Trigger now<")
            .lacks("type=\"checkbox\"");
    }
    let reply = post_form(
        &app,
        "/actions/jobs/requeue",
        None,
        &[("ids", &failed.to_string())],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(state_of(&storage, failed).await, JobState::Failed);
    let reply = post_form(
        &app,
        "/actions/recurring/trigger",
        None,
        &[("ids", "nightly")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn posts_need_a_csrf_token_bound_to_the_cookie() {
    let storage = MemoryStorage::new();
    let id = failed_job(&storage, "f", "{}", error("E", "boom", None)).await;
    let app = app(&storage);
    let session = Session::open(&app, "/jobs/failed").await;
    let other = Session::open(&app, "/jobs/failed").await;
    assert_ne!(session.cookie, other.cookie);
    let ids = id.to_string();
    let zeros = "0".repeat(64);
    let cases: Vec<(&str, Option<&str>, Form<'_>)> = vec![
        ("no token, no cookie", None, vec![("ids", &ids)]),
        ("no token", Some(&session.cookie), vec![("ids", &ids)]),
        (
            "token without its cookie",
            None,
            vec![("ids", &ids), ("csrf", &session.token)],
        ),
        (
            "wrong token",
            Some(&session.cookie),
            vec![("ids", &ids), ("csrf", &zeros)],
        ),
        (
            "another session's token",
            Some(&session.cookie),
            vec![("ids", &ids), ("csrf", &other.token)],
        ),
        (
            "garbage token",
            Some(&session.cookie),
            vec![("ids", &ids), ("csrf", "<x>")],
        ),
        (
            "garbage cookie",
            Some("jobs_dashboard_csrf=zz"),
            vec![("ids", &ids), ("csrf", &session.token)],
        ),
    ];
    for (case, cookie, fields) in cases {
        let reply = post_form(&app, "/actions/jobs/requeue", cookie, &fields).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{case}");
        assert_eq!(state_of(&storage, id).await, JobState::Failed, "{case}");
    }
    // The right pair works; the cookie is HttpOnly and SameSite=Strict.
    let reply = session
        .post(
            "/actions/jobs/requeue",
            &[("ids", &ids), ("back", "/jobs/failed")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(state_of(&storage, id).await, JobState::Enqueued);
    let page = get(&app, "/").await;
    let cookie = page
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("jobs_dashboard_csrf="))
        .expect("cookie");
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/")
    );
    // A page requested with a valid cookie does not reissue it.
    let again = session.get("/").await;
    assert!(!again
        .set_cookies()
        .iter()
        .any(|c| c.starts_with("jobs_dashboard_csrf=")));
    // A fixed secret signs the same token for the same cookie across instances.
    let secret = [7u8; 32];
    let one = Dashboard::new(storage.clone()).csrf_secret(secret);
    let two = Dashboard::new(storage.clone()).csrf_secret(secret);
    let job_page = format!("/job/{id}");
    let first = Session::open(&app_for(one, LOCAL), &job_page).await;
    let page = get_with_cookie(&app_for(two, LOCAL), &job_page, &first.cookie).await;
    assert_eq!(page.csrf_token(), first.token);
}

#[tokio::test]
async fn actions_are_post_only_and_pages_get_only() {
    let storage = MemoryStorage::new();
    let app = app(&storage);
    let reply = get(&app, "/actions/jobs/delete").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    let reply = send(
        &app,
        Request::builder()
            .method(Method::DELETE)
            .uri("/jobs/failed")
            .header(header::ORIGIN, ORIGIN)
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let storage = MemoryStorage::new();
    let app = app(&storage);
    for path in ["/", "/stats.json", "/assets/dashboard.css", "/nope"] {
        let reply = get(&app, path).await;
        let csp = reply.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii");
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(reply.headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(reply.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(reply.headers.contains_key(header::CACHE_CONTROL));
    }
    // No inline script or style anywhere (the CSP would block them).
    let page = get(&app, "/").await;
    page.lacks("<script>")
        .lacks("style=")
        .lacks("http://")
        .lacks("https://");
}

// ---- nesting -------------------------------------------------------------------------------------

#[tokio::test]
async fn links_and_redirects_work_under_a_prefix() {
    let storage = MemoryStorage::new();
    let id = failed_job(&storage, "f", "{}", error("E", "boom", None)).await;
    let app = Router::new()
        .nest("/admin/jobs", Dashboard::new(storage.clone()).router())
        .layer(MockConnectInfo(addr(LOCAL)));
    let home = get(&app, "/admin/jobs").await;
    home.assert_ok()
        .has("href=\"/admin/jobs/assets/dashboard.css\"")
        .has("href=\"/admin/jobs/jobs/failed\"")
        .has("data-stats-url=\"/admin/jobs/stats.json\"")
        .has("href=\"/admin/jobs\"");
    let failed = get(&app, "/admin/jobs/jobs/failed").await;
    failed
        .assert_ok()
        .has(&format!("href=\"/admin/jobs/job/{id}\""))
        .has("formaction=\"/admin/jobs/actions/jobs/requeue\"");
    get(&app, "/admin/jobs/assets/dashboard.js")
        .await
        .assert_ok();
    let session = Session::open(&app, "/admin/jobs/jobs/failed").await;
    let page = get(&app, "/admin/jobs/jobs/failed").await;
    assert!(page
        .set_cookies()
        .iter()
        .any(|c| c.contains("Path=/admin/jobs;")));
    let reply = session
        .post(
            "/admin/jobs/actions/jobs/requeue",
            &[("ids", &id.to_string()), ("back", "/jobs/failed")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(reply.location(), "/admin/jobs/jobs/failed");
    assert_eq!(state_of(&storage, id).await, JobState::Enqueued);
    // Back to the overview.
    let reply = session
        .post(
            "/admin/jobs/actions/jobs/delete",
            &[("ids", &id.to_string()), ("back", "/")],
        )
        .await;
    assert_eq!(reply.location(), "/admin/jobs");

    // nest_service works too, with or without the trailing slash.
    let app = Router::new()
        .nest_service("/ops", Dashboard::new(storage.clone()).router())
        .layer(MockConnectInfo(addr(LOCAL)));
    for path in ["/ops", "/ops/"] {
        get(&app, path)
            .await
            .assert_ok()
            .has("href=\"/ops/jobs/enqueued\"");
    }
}

/// A path with a trailing slash redirects to the page without it, wherever the dashboard is.
#[tokio::test]
async fn a_trailing_slash_redirects_to_the_page() {
    let storage = MemoryStorage::new();
    let id = enqueue(&storage, "a", "default", "{}").await;
    let alone = app(&storage);
    let nested = Router::new()
        .nest("/admin/jobs", Dashboard::new(storage.clone()).router())
        .layer(MockConnectInfo(addr(LOCAL)));
    let nested_service = Router::new()
        .nest_service("/jobs", Dashboard::new(storage.clone()).router())
        .layer(MockConnectInfo(addr(LOCAL)));
    let job = format!("/job/{id}");
    let job_slash = format!("{job}/");
    for (app, path, location) in [
        (&alone, "/jobs/enqueued/", "/jobs/enqueued"),
        (&alone, "/jobs/failed/?page=2", "/jobs/failed?page=2"),
        (&alone, "/jobs/enqueued/default//", "/jobs/enqueued/default"),
        (&alone, job_slash.as_str(), job.as_str()),
        (
            &nested,
            "/admin/jobs/jobs/enqueued/",
            "/admin/jobs/jobs/enqueued",
        ),
        (
            &nested_service,
            "/jobs/jobs/enqueued/",
            "/jobs/jobs/enqueued",
        ),
        (&nested_service, "/jobs/recurring/", "/jobs/recurring"),
    ] {
        let reply = get(app, path).await;
        assert_eq!(reply.status, StatusCode::PERMANENT_REDIRECT, "{path}");
        assert_eq!(reply.location(), location, "{path}");
        get(app, location).await.assert_ok();
    }
    // Nested with `nest_service`, the dashboard's root answers with and without the slash.
    get(&nested_service, "/jobs/")
        .await
        .assert_ok()
        .has("Overview");
    // Never a redirect to another site, and never for a form post.
    for path in ["//evil.example/", "///evil.example/"] {
        let reply = get(&alone, path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    let reply = post_form(&alone, "/actions/jobs/delete/", None, &[("ids", "1")]).await;
    assert_ne!(reply.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(state_of(&storage, id).await, JobState::Enqueued);
}

#[tokio::test]
async fn times_follow_the_clients_clock() {
    let start: DateTime<Utc> = "2024-05-01T12:00:00Z".parse().expect("time");
    let clock = jobs::clock::ManualClock::new(start);
    let storage = MemoryStorage::new();
    let client = jobs::Client::new(storage.clone()).with_clock(clock.clone());
    storage
        .register_server(
            &ServerInfo {
                id: "s1".into(),
                queues: vec!["default".into()],
                workers: 2,
                started_at: start,
            },
            start,
        )
        .await
        .expect("register");
    let app = app_for(Dashboard::from_client(client), LOCAL);
    get(&app, "/servers")
        .await
        .lacks("possibly aborted")
        .has("just now");
    clock.advance(std::time::Duration::from_secs(120));
    get(&app, "/servers")
        .await
        .has("possibly aborted")
        .has("2 min ago");
}

/// A job that snoozed shows as Scheduled with the snooze as its reason; one that cancelled
/// itself shows in the Deleted list and its page says why.
#[tokio::test]
async fn snoozed_and_cancelled_jobs_say_so() {
    let storage = MemoryStorage::new();
    let app = app(&storage);
    let snoozed = start(&storage, "partner.call", "{}", "server-a").await;
    finish(
        &storage,
        snoozed,
        "server-a",
        Outcome::Snoozed {
            run_at: Utc::now() + TimeDelta::minutes(1),
            reason: "snoozed for 60s".into(),
            data: StateData::default(),
        },
    )
    .await;
    let cancelled = start(&storage, "order.ship", "{}", "server-a").await;
    finish(
        &storage,
        cancelled,
        "server-a",
        Outcome::Cancelled {
            reason: "cancelled by the job: order withdrawn".into(),
            data: StateData::default(),
        },
    )
    .await;
    get(&app, &format!("/job/{snoozed}"))
        .await
        .assert_ok()
        .has("Scheduled")
        .has("snoozed for 60s");
    get(&app, "/jobs/scheduled")
        .await
        .assert_ok()
        .has("partner.call");
    get(&app, &format!("/job/{cancelled}"))
        .await
        .assert_ok()
        .has("Deleted")
        .has("cancelled by the job: order withdrawn");
    get(&app, "/jobs/deleted")
        .await
        .assert_ok()
        .has("order.ship");
}

// ---- queues, flow control and unique keys -----------------------------------------------------

/// The markup of queue `queue`'s row on the queues page.
fn queue_row<'a>(page: &'a Reply, queue: &str) -> &'a str {
    let start = page
        .body
        .find(&format!("<tr data-queue=\"{queue}\">"))
        .unwrap_or_else(|| panic!("a row for queue `{queue}` in:\n{}", page.shown()));
    let rest = &page.body[start..];
    &rest[..rest
        .find("</tr>")
        .map_or(rest.len(), |end| end + "</tr>".len())]
}

/// The stored settings of `queue` (the defaults when it has none).
async fn settings_of(storage: &MemoryStorage, queue: &str) -> QueueSettings {
    storage
        .queue_settings()
        .await
        .expect("settings")
        .into_iter()
        .find(|settings| settings.queue == queue)
        .unwrap_or_else(|| QueueSettings {
            queue: queue.to_owned(),
            ..QueueSettings::default()
        })
}

/// The flash cookie an action set, as a `name=value` pair.
fn flash_cookie(reply: &Reply) -> String {
    let cookie = reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("jobs_dashboard_flash="))
        .unwrap_or_else(|| panic!("a flash cookie in {:?}", reply.headers));
    cookie.split(';').next().expect("cookie pair").to_owned()
}

impl Session {
    /// Follows an action's redirect as a browser does, with the flash cookie it set.
    async fn follow(&self, reply: &Reply) -> Reply {
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        let cookies = format!("{}; {}", self.cookie, flash_cookie(reply));
        get_with_cookie(&self.app, reply.location(), &cookies).await
    }
}

fn rate(text: &str) -> Rate {
    text.parse().expect("a valid rate")
}

#[tokio::test]
async fn the_queues_page_lists_counts_servers_limits_and_pauses() {
    let storage = MemoryStorage::new();
    for i in 0..2 {
        enqueue(&storage, "mail.send", "mail", &format!("{{\"n\":{i}}}")).await;
    }
    storage
        .enqueue(
            vec![new_job(
                "mail.digest",
                "mail",
                "{}",
                InitialState::Scheduled {
                    at: Utc::now() + TimeDelta::hours(1),
                },
            )],
            Utc::now(),
        )
        .await
        .expect("schedule");
    enqueue(&storage, "report.build", "reports", "{}").await;
    claim_one(&storage, "server-a", "reports").await;
    let now = Utc::now();
    storage
        .register_server(
            &ServerInfo {
                id: "server-a".into(),
                queues: vec!["mail".into(), "reports".into(), "idle".into()],
                workers: 4,
                started_at: now,
            },
            now,
        )
        .await
        .expect("register");
    storage
        .set_queue_limits(
            "mail",
            QueueLimits {
                concurrency: Some(3),
                rate: Some(rate("50/1s")),
            },
        )
        .await
        .expect("limits");
    storage.set_queue_paused("mail", true).await.expect("pause");
    let app = app(&storage);

    let page = get(&app, "/jobs/enqueued").await;
    page.assert_ok()
        .has("<h1>Queues</h1>")
        .has("<th class=\"num\">Enqueued</th><th class=\"num\">Scheduled</th>")
        .has("<th class=\"num\">Awaiting</th><th class=\"num\">Processing</th>")
        .has("<th class=\"num\">Failed</th>");
    let mail = queue_row(&page, "mail");
    for expected in [
        "href=\"/jobs/enqueued/mail\"",
        // Enqueued, Scheduled, Awaiting, Processing, Failed.
        "<td class=\"num\">2</td><td class=\"num\">1</td><td class=\"num\">0</td>\
         <td class=\"num\">0</td><td class=\"num\">0</td>",
        "1 server",
        "<td class=\"num concurrency\">3</td>",
        "<td class=\"rate\">50/1s</td>",
        "<span class=\"badge paused\">Paused</span>",
        ">Resume</button>",
        "value=\"3\"",
        "value=\"50/1s\"",
    ] {
        assert!(mail.contains(expected), "expected `{expected}` in {mail}");
    }
    assert!(!mail.contains(">Pause</button>"), "{mail}");
    let reports = queue_row(&page, "reports");
    for expected in [
        "<td class=\"num\">0</td><td class=\"num\">0</td><td class=\"num\">0</td>\
         <td class=\"num\">1</td><td class=\"num\">0</td>",
        "<span class=\"badge active\">Active</span>",
        ">Pause</button>",
        "<td class=\"num concurrency\"><span class=\"muted\">none</span></td>",
    ] {
        assert!(
            reports.contains(expected),
            "expected `{expected}` in {reports}"
        );
    }
    // A queue only a server serves is listed; one with jobs but no server says its jobs wait.
    assert!(queue_row(&page, "idle").contains("1 server"));
    enqueue(&storage, "orphan.job", "orphans", "{}").await;
    let page = get(&app, "/jobs/enqueued").await;
    assert!(queue_row(&page, "orphans").contains("no server serves this queue"));
}

#[tokio::test]
async fn queue_actions_pause_resume_and_set_limits() {
    let storage = MemoryStorage::new();
    enqueue(&storage, "mail.send", "mail", "{}").await;
    let app = app(&storage);
    let session = Session::open(&app, "/jobs/enqueued").await;
    let page = session.get("/jobs/enqueued").await;
    let row = queue_row(&page, "mail");
    for expected in [
        "action=\"/actions/queues/pause\"",
        "action=\"/actions/queues/limits\"",
        "name=\"queue\" value=\"mail\"",
        "name=\"concurrency\"",
        "name=\"rate\"",
        "name=\"csrf\"",
    ] {
        assert!(row.contains(expected), "expected `{expected}` in {row}");
    }

    let reply = session
        .post(
            "/actions/queues/pause",
            &[("queue", "mail"), ("back", "/jobs/enqueued")],
        )
        .await;
    assert_eq!(reply.location(), "/jobs/enqueued");
    assert!(settings_of(&storage, "mail").await.paused);
    let page = session.follow(&reply).await;
    page.assert_ok()
        .has("<p class=\"flash\" role=\"status\">Paused queue `mail`");
    assert!(queue_row(&page, "mail").contains("badge paused"));
    assert!(queue_row(&page, "mail").contains(">Resume</button>"));

    let reply = session
        .post(
            "/actions/queues/limits",
            &[
                ("queue", "mail"),
                ("concurrency", " 5 "),
                ("rate", "50/1s"),
                ("back", "/jobs/enqueued"),
            ],
        )
        .await;
    let settings = settings_of(&storage, "mail").await;
    assert_eq!(
        settings.limits,
        QueueLimits {
            concurrency: Some(5),
            rate: Some(Rate::new(50, Duration::from_secs(1)).expect("rate")),
        }
    );
    assert!(settings.paused, "setting limits keeps the queue paused");
    let page = session.follow(&reply).await;
    page.has("Set the limits of queue `mail`: at most 5 running at once, at most 50/1s started.");
    let row = queue_row(&page, "mail");
    assert!(
        row.contains("<td class=\"num concurrency\">5</td>"),
        "{row}"
    );
    assert!(row.contains("<td class=\"rate\">50/1s</td>"), "{row}");

    // Only a rate, then nothing: an empty field removes its limit.
    session
        .post(
            "/actions/queues/limits",
            &[("queue", "mail"), ("concurrency", ""), ("rate", "1000/1h")],
        )
        .await;
    assert_eq!(
        settings_of(&storage, "mail").await.limits,
        QueueLimits {
            concurrency: None,
            rate: Some(rate("1000/1h")),
        }
    );
    let reply = session
        .post(
            "/actions/queues/limits",
            &[
                ("queue", "mail"),
                ("concurrency", ""),
                ("rate", ""),
                ("back", "/jobs/enqueued"),
            ],
        )
        .await;
    assert_eq!(
        settings_of(&storage, "mail").await.limits,
        QueueLimits::new()
    );
    session
        .follow(&reply)
        .await
        .has("Removed the limits of queue `mail`.");

    let reply = session
        .post(
            "/actions/queues/resume",
            &[("queue", "mail"), ("back", "/jobs/enqueued")],
        )
        .await;
    assert!(!settings_of(&storage, "mail").await.paused);
    let page = session.follow(&reply).await;
    page.has("Resumed queue `mail`.");
    assert!(queue_row(&page, "mail").contains("badge active"));
    assert_eq!(
        get(&app, "/actions/queues/pause").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        session
            .post("/actions/queues/drain", &[("queue", "mail")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn invalid_limits_and_unknown_queues_are_refused_and_change_nothing() {
    let storage = MemoryStorage::new();
    enqueue(&storage, "mail.send", "mail", "{}").await;
    let before = QueueLimits {
        concurrency: Some(2),
        rate: Some(rate("10/1m")),
    };
    storage
        .set_queue_limits("mail", before)
        .await
        .expect("limits");
    let app = app(&storage);
    let session = Session::open(&app, "/jobs/enqueued").await;
    let long = "9".repeat(100);
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        ("mail", "0", "", "a concurrency limit must be at least 1"),
        ("mail", "-3", "", "invalid concurrency limit `-3`"),
        ("mail", "abc", "", "invalid concurrency limit `abc`"),
        ("mail", "1.5", "", "invalid concurrency limit `1.5`"),
        (
            "mail",
            "99999999999",
            "",
            "invalid concurrency limit `99999999999`",
        ),
        (
            "mail",
            &long,
            "",
            "invalid concurrency limit: at most 64 characters",
        ),
        (
            "mail",
            "",
            "5/0s",
            "invalid rate `5/0s`: the period must be at least 1ms",
        ),
        (
            "mail",
            "",
            "0/1s",
            "invalid rate `0/1s`: the count must be at least 1",
        ),
        (
            "mail",
            "",
            "abc",
            "invalid rate `abc`: expected `count/period`",
        ),
        ("mail", "", "5/soon", "invalid rate `5/soon`: the period"),
        // A valid concurrency with an invalid rate stores neither.
        ("mail", "4", "5/0s", "invalid rate `5/0s`"),
        (
            "nope",
            "4",
            "",
            "unknown queue `nope`: no job, server or registered job kind uses it",
        ),
        ("Bad Queue", "4", "", "invalid queue name `Bad Queue`"),
    ];
    for (queue, concurrency, rate_text, message) in cases {
        let case = format!("{queue:?} {concurrency:?} {rate_text:?}");
        let reply = session
            .post(
                "/actions/queues/limits",
                &[
                    ("queue", queue),
                    ("concurrency", concurrency),
                    ("rate", rate_text),
                    ("back", "/jobs/enqueued"),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{case}");
        let page = session.follow(&reply).await;
        page.assert_ok();
        let flash_start = page
            .body
            .find("<p class=\"flash error\" role=\"status\">")
            .unwrap_or_else(|| panic!("{case}: an error message in:\n{}", page.shown()));
        let flash = &page.body[flash_start..];
        let flash = &flash[..flash.find("</p>").unwrap_or(flash.len())];
        assert!(flash.contains(message), "{case}: `{message}` in {flash}");
        assert_eq!(settings_of(&storage, "mail").await.limits, before, "{case}");
    }
    for action in ["pause", "resume"] {
        let reply = session
            .post(
                &format!("/actions/queues/{action}"),
                &[("queue", "nope"), ("back", "/jobs/enqueued")],
            )
            .await;
        session.follow(&reply).await.has(&format!(
            "Could not {action} queue `nope`: unknown queue `nope`"
        ));
    }
    let settings = storage.queue_settings().await.expect("settings");
    assert!(
        settings.iter().all(|s| s.queue == "mail"),
        "nothing stored for unknown queues: {settings:?}"
    );
    assert!(!settings_of(&storage, "mail").await.paused);
    // The user's text is escaped like everything else.
    let reply = session
        .post(
            "/actions/queues/limits",
            &[
                ("queue", "mail"),
                ("rate", "<b>1</b>/1s"),
                ("back", "/jobs/enqueued"),
            ],
        )
        .await;
    session
        .follow(&reply)
        .await
        .has("invalid rate `&lt;b&gt;1&lt;/b&gt;/1s`")
        .lacks("<b>1</b>");
}

#[tokio::test]
async fn queue_actions_need_a_valid_csrf_token_and_a_writable_dashboard() {
    let storage = MemoryStorage::new();
    enqueue(&storage, "mail.send", "mail", "{}").await;
    let app = app(&storage);
    let session = Session::open(&app, "/jobs/enqueued").await;
    let other = Session::open(&app, "/jobs/enqueued").await;
    let zeros = "0".repeat(64);
    let cases: Vec<(&str, Option<&str>, Form<'_>)> = vec![
        ("no token, no cookie", None, vec![("queue", "mail")]),
        ("no token", Some(&session.cookie), vec![("queue", "mail")]),
        (
            "wrong token",
            Some(&session.cookie),
            vec![("queue", "mail"), ("csrf", &zeros)],
        ),
        (
            "another session's token",
            Some(&session.cookie),
            vec![("queue", "mail"), ("csrf", &other.token)],
        ),
    ];
    for (case, cookie, fields) in cases {
        for action in ["pause", "limits"] {
            let mut fields = fields.clone();
            fields.push(("concurrency", "1"));
            let reply =
                post_form(&app, &format!("/actions/queues/{action}"), cookie, &fields).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{case} {action}");
        }
    }
    // From another site's page: no Origin of this host, whatever the token.
    let request = Request::post("/actions/queues/pause")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, "http://evil.example")
        .header(header::COOKIE, &session.cookie)
        .body(Body::from(encode(&[
            ("queue", "mail"),
            ("csrf", &session.token),
        ])))
        .expect("request");
    assert_eq!(send(&app, request).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        settings_of(&storage, "mail").await,
        QueueSettings {
            queue: "mail".into(),
            ..QueueSettings::default()
        }
    );

    // Read-only: the badge and limits show, the forms do not, and posts are refused.
    storage
        .set_queue_limits("mail", QueueLimits::new().concurrency(2))
        .await
        .expect("limits");
    storage.set_queue_paused("mail", true).await.expect("pause");
    let read_only = app_for(Dashboard::new(storage.clone()).read_only(true), LOCAL);
    let page = get(&read_only, "/jobs/enqueued").await;
    page.assert_ok()
        .has("read-only")
        .lacks(">Pause<")
        .lacks(">Resume<")
        .lacks("Set limits")
        .lacks("name=\"concurrency\"")
        .lacks("/actions/queues/");
    let row = queue_row(&page, "mail");
    assert!(row.contains("badge paused"), "{row}");
    assert!(
        row.contains("<td class=\"num concurrency\">2</td>"),
        "{row}"
    );
    for (action, fields) in [
        ("resume", vec![("queue", "mail")]),
        ("limits", vec![("queue", "mail"), ("concurrency", "9")]),
    ] {
        let reply = post_form(
            &read_only,
            &format!("/actions/queues/{action}"),
            Some(&session.cookie),
            &[fields, vec![("csrf", session.token.as_str())]].concat(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{action}");
    }
    let settings = settings_of(&storage, "mail").await;
    assert!(settings.paused);
    assert_eq!(settings.limits, QueueLimits::new().concurrency(2));
}

#[tokio::test]
async fn a_jobs_unique_key_and_mutex_show_on_its_page_and_the_key_is_searchable() {
    let storage = MemoryStorage::new();
    let mut job = new_job(
        "mail.digest",
        "mail",
        "{\"user\":7}",
        InitialState::Enqueued,
    );
    job.unique = Some(Uniqueness::explicit("digest:<7>".to_owned(), None).expect("key"));
    job.mutex = Some("account:\"9\"".to_owned());
    let id = storage
        .enqueue(vec![job], Utc::now())
        .await
        .expect("enqueue")[0]
        .id;
    let plain = enqueue(&storage, "mail.digest", "mail", "{\"user\":8}").await;
    let app = app(&storage);

    get(&app, &format!("/job/{id}"))
        .await
        .assert_ok()
        .has("<dt>Unique key</dt>")
        .has("digest:&lt;7&gt;")
        .has("/jobs/search?key=digest%3A%3C7%3E")
        .has("<dt>Mutex</dt>")
        .has("account:&quot;9&quot;")
        .lacks("digest:<7>");
    get(&app, &format!("/job/{plain}"))
        .await
        .assert_ok()
        .lacks("Unique key")
        .lacks("<dt>Mutex</dt>");

    // Part of the key, in any case, finds it and only it; the form keeps the search.
    let found = get(&app, "/jobs/search?key=DIGEST%3A%3C").await;
    found
        .assert_ok()
        .has(&format!("href=\"/job/{id}\""))
        .lacks(&format!("href=\"/job/{plain}\""))
        .has("name=\"key\" value=\"DIGEST:&lt;\"");
    get(&app, "/jobs/search?key=digest%3A%3C7%3E")
        .await
        .has(&format!("href=\"/job/{id}\""));
    get(&app, "/jobs/search?key=nothing-like-it")
        .await
        .has("No job matches.");
    // Every list filters by key, and its pager keeps the filter.
    get(&app, "/jobs/enqueued/mail?key=digest&size=10")
        .await
        .assert_ok()
        .has(&format!("href=\"/job/{id}\""))
        .lacks(&format!("href=\"/job/{plain}\""))
        .has("key=digest");
}
