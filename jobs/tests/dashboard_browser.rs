//! The dashboard in a real browser: headless Chromium driven through chromedriver (WebDriver)
//! against a dashboard served on 127.0.0.1, with a `jobs::Server` running the jobs.
//!
//! Opens the overview, goes to a failed job, clicks Requeue and watches the job page reach
//! Succeeded; on the Queues page, pauses a queue, sets its concurrency limit and resumes it.
//! Screenshots land in `target/dashboard-screenshots/`; with
//! `JOBS_UPDATE_SCREENSHOT=1` the overview is also written to `jobs/docs/dashboard-overview.png`
//! (the README's picture).
//!
//! Needs the Debian packages `chromium` and `chromium-driver`
//! (`apt-get install -y chromium chromium-driver`); `CHROMIUM` and `CHROMEDRIVER` override the
//! binaries' paths. Without them the test fails, saying so.
#![cfg(feature = "dashboard")]

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{bail, Context};
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use jobs::dashboard::Dashboard;
use jobs::prelude::*;
use jobs::{EnqueueOptions, QueueLimits, QueueSettings, RecurringOptions};

static FLAKY_RUNS: AtomicU32 = AtomicU32::new(0);

/// Fails on its first run, succeeds on the next.
#[job(retries = 0)]
async fn import_orders(batch: u32, source: String) -> anyhow::Result<String> {
    if FLAKY_RUNS.fetch_add(1, Ordering::SeqCst) == 0 {
        bail!("connection to {source} reset by peer while reading batch {batch}");
    }
    Ok(format!("imported batch {batch} from {source}"))
}

/// Always succeeds.
#[job]
async fn send_welcome(user_id: u64) -> anyhow::Result<u64> {
    Ok(user_id)
}

/// Always fails (no retries), for some red in the graphs.
#[job(retries = 0)]
async fn resize_image(path: String) -> anyhow::Result<()> {
    bail!("unsupported image format: {path}")
}

const DEADLINE: Duration = Duration::from_secs(30);

fn find_binary(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path)).filter(|path| path.is_file());
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    candidates.iter().find_map(|name| {
        let direct = Path::new("/usr/bin").join(name);
        if direct.is_file() {
            return Some(direct);
        }
        path_dirs
            .iter()
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Kills chromedriver when the test ends, however it ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where screenshots go: `<target dir>/dashboard-screenshots/`.
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("dashboard-screenshots")
}

async fn screenshot(browser: &Browser, name: &str) -> anyhow::Result<PathBuf> {
    let png = browser.screenshot().await?;
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    std::fs::write(&path, &png)?;
    Ok(path)
}

/// Polls `check` until it returns `Some`, or fails after the deadline with `what`.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {DEADLINE:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn text_of(browser: &Browser, css: &str) -> Option<String> {
    browser
        .find(Locator::Css(css))
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// Waits until the page's live counter `key` shows `expected` (the script refreshed it).
async fn wait_for_count(browser: &Browser, key: &str, expected: u64) -> anyhow::Result<()> {
    let css = format!(".card-count[data-count=\"{key}\"]");
    eventually(&format!("the {key} counter to show {expected}"), || async {
        (text_of(browser, &css).await? == expected.to_string()).then_some(())
    })
    .await
}

async fn connect(driver_port: u16, chromium: &Path, profile: &Path) -> anyhow::Result<Browser> {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1280,1000",
                "--force-device-scale-factor=1",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let url = format!("http://127.0.0.1:{driver_port}");
    let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
    builder.capabilities(capabilities);
    let mut last_error = None;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < deadline {
        match builder.connect(&url).await {
            Ok(browser) => return Ok(browser),
            Err(error) => last_error = Some(error.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "could not start a Chromium session through chromedriver on port {driver_port}: {}",
        last_error.unwrap_or_default()
    )
}

/// Chromium driven through chromedriver, with a fresh profile.
struct BrowserSession {
    browser: Browser,
    profile: PathBuf,
    /// Kept for its `Drop`, which stops chromedriver.
    _driver: Driver,
}

impl BrowserSession {
    /// Starts chromedriver and a headless Chromium, or fails saying what to install.
    async fn start() -> anyhow::Result<BrowserSession> {
        let install =
            "install them with `apt-get update && apt-get install -y chromium chromium-driver` \
                       (Debian packages), or point CHROMIUM and CHROMEDRIVER at the binaries";
        let Some(chromium) = find_binary("CHROMIUM", &["chromium", "chromium-browser"]) else {
            panic!("the dashboard's browser test needs Chromium, which is missing: {install}");
        };
        let Some(chromedriver) = find_binary("CHROMEDRIVER", &["chromedriver"]) else {
            panic!("the dashboard's browser test needs chromedriver, which is missing: {install}");
        };
        let driver_port = free_port()?;
        let driver = Driver(
            Command::new(&chromedriver)
                .arg(format!("--port={driver_port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", chromedriver.display()))?,
        );
        let profile = std::env::temp_dir().join(format!(
            "jobs-dashboard-test-{}-{}",
            std::process::id(),
            driver_port
        ));
        std::fs::create_dir_all(&profile)?;
        let browser = connect(driver_port, &chromium, &profile).await?;
        Ok(BrowserSession {
            browser,
            profile,
            _driver: driver,
        })
    }

    /// Closes the browser and removes its profile.
    async fn close(self) -> anyhow::Result<()> {
        let closed = self.browser.close().await;
        let _ = std::fs::remove_dir_all(&self.profile);
        Ok(closed?)
    }
}

/// Serves `dashboard` on a free loopback port until `stop` is cancelled; returns
/// its base URL and the serving task.
async fn serve_dashboard(
    dashboard: Dashboard,
    stop: &CancellationToken,
) -> anyhow::Result<(
    String,
    tokio::task::JoinHandle<Result<(), jobs::dashboard::DashboardError>>,
)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr: SocketAddr = listener.local_addr()?;
    let task = tokio::spawn(dashboard.serve_listener(listener, stop.clone().cancelled_owned()));
    Ok((format!("http://{addr}"), task))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_a_failed_job_in_a_real_browser() -> anyhow::Result<()> {
    // Jobs, and a server running them.
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    let server = Server::builder(storage.clone())
        .queues(["default", "critical"])
        .workers(4)
        .build()?
        .start()
        .await?;
    let flaky = ImportOrders::new(42, "erp.example.internal".into())
        .enqueue(&client)
        .await?;
    jobs::testing::wait_for_state(&client, flaky, JobState::Failed, DEADLINE).await?;
    client
        .add_or_update_recurring_with(
            "nightly-report",
            Cron::daily_at(2, 30)?,
            SendWelcome::new(1),
            RecurringOptions::new().time_zone("Europe/Paris"),
        )
        .await?;
    SendWelcome::new(99)
        .schedule(&client, Duration::from_secs(3600))
        .await?;

    // The dashboard on a free loopback port, and a browser.
    let stop = CancellationToken::new();
    let (base, dashboard) = serve_dashboard(
        Dashboard::new(storage.clone())
            .title("Jobs · demo")
            .poll_interval(Duration::from_millis(300)),
        &stop,
    )
    .await?;
    let session = BrowserSession::start().await?;

    let outcome = drive(&session.browser, &base, &client, flaky).await;
    let closed = session.close().await;
    stop.cancel();
    dashboard.await??;
    server.shutdown().await?;
    outcome?;
    closed?;
    Ok(())
}

async fn drive(browser: &Browser, base: &str, client: &Client, flaky: JobId) -> anyhow::Result<()> {
    // The overview, live: the script refreshes the counters and draws the realtime graph.
    browser.goto(&format!("{base}/")).await?;
    assert_eq!(text_of(browser, "h1").await.as_deref(), Some("Overview"));
    eventually("the script's live refresh", || async {
        text_of(browser, "[data-live-status]")
            .await
            .filter(|text| text.starts_with("live refresh every"))
    })
    .await?;
    // Some traffic, seen live; then a reload (the history graphs are drawn by the server) and
    // more traffic for the realtime graph.
    let rounds = [
        (6, 1),
        (14, 0),
        (9, 3),
        (18, 1),
        (11, 0),
        (7, 2),
        (16, 1),
        (12, 0),
    ];
    let mut succeeded = 0;
    let mut failed = 1;
    for (round, (ok, bad)) in rounds.into_iter().enumerate() {
        if round == 4 {
            browser.refresh().await?;
        }
        for user in 0..ok {
            SendWelcome::new(user).enqueue(client).await?;
        }
        for i in 0..bad {
            ResizeImage::new(format!("uploads/{i}.tiff"))
                .enqueue(client)
                .await?;
        }
        succeeded += ok;
        failed += bad;
        wait_for_count(browser, "succeeded", succeeded).await?;
        wait_for_count(browser, "failed", failed).await?;
    }
    let overview = screenshot(browser, "overview.png").await?;
    if std::env::var("JOBS_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dashboard-overview.png");
        std::fs::create_dir_all(readme.parent().context("docs dir")?)?;
        std::fs::copy(&overview, &readme)?;
    }

    // Failed jobs, then the flaky one.
    browser
        .find(Locator::Css("a.card-failed"))
        .await?
        .click()
        .await?;
    eventually("the failed jobs page", || async {
        text_of(browser, "h1")
            .await
            .filter(|title| title == "Failed jobs")
    })
    .await?;
    screenshot(browser, "failed-jobs.png").await?;
    browser
        .find(Locator::Css(&format!("a.name[href$=\"/job/{flaky}\"]")))
        .await?
        .click()
        .await?;
    eventually("the job's page", || async {
        text_of(browser, "#job-state")
            .await
            .filter(|state| state == "Failed")
    })
    .await?;
    let error = text_of(browser, ".error-message").await.unwrap_or_default();
    assert!(
        error.contains("connection to erp.example.internal reset by peer"),
        "{error}"
    );
    screenshot(browser, "job-failed.png").await?;

    // Requeue: back on the job's page, which reloads itself as the state moves on.
    browser
        .find(Locator::XPath("//button[normalize-space()='Requeue']"))
        .await?
        .click()
        .await?;
    // The message shows on the page the action returns to; the script may already have
    // reloaded that page (and the message is shown once) if the job moved on meanwhile.
    let flash = eventually("the requeue message or a new state", || async {
        match text_of(browser, ".flash").await {
            Some(flash) => Some(Some(flash)),
            None => text_of(browser, "#job-state")
                .await
                .filter(|state| state != "Failed")
                .map(|_| None),
        }
    })
    .await?;
    if let Some(flash) = flash {
        assert_eq!(flash, "Requeued 1 job.");
    }
    eventually("the job to reach Succeeded on its page", || async {
        text_of(browser, "#job-state")
            .await
            .filter(|state| state == "Succeeded")
    })
    .await?;
    let url = browser.current_url().await?;
    assert!(url.path().ends_with(&format!("/job/{flaky}")), "{url}");
    assert_eq!(client.job(flaky).await?.state, JobState::Succeeded);
    let history = text_of(browser, "ol.history").await.unwrap_or_default();
    assert!(history.contains("requeued by a user"), "{history}");
    screenshot(browser, "job-succeeded.png").await?;

    // The other pages render in a real browser too.
    for (path, title, file) in [
        ("/recurring", "Recurring jobs", "recurring.png"),
        ("/servers", "Servers", "servers.png"),
        ("/jobs/search?name=send", "Search jobs", "search.png"),
    ] {
        browser.goto(&format!("{base}{path}")).await?;
        assert_eq!(text_of(browser, "h1").await.as_deref(), Some(title));
        screenshot(browser, file).await?;
    }

    // A phone-sized window: the top bar wraps rather than clipping its links, and wide tables
    // scroll inside their box; the page itself never scrolls sideways.
    browser.set_window_size(420, 900).await?;
    let job_page = format!("/job/{flaky}");
    for path in [
        "/",
        "/jobs/failed",
        "/jobs/succeeded",
        job_page.as_str(),
        "/recurring",
        "/servers",
        "/jobs/search?name=send",
    ] {
        browser.goto(&format!("{base}{path}")).await?;
        let layout = browser
            .execute(
                "const width = window.innerWidth;
                 const bar = document.querySelector('.topbar').getBoundingClientRect();
                 const outside = [...document.querySelectorAll('.topbar *')]
                     .filter((e) => {
                         const r = e.getBoundingClientRect();
                         return r.left < -0.5 || r.right > width + 0.5
                             || r.top < bar.top - 0.5 || r.bottom > bar.bottom + 0.5;
                     })
                     .map((e) => e.textContent.trim());
                 return [width, document.documentElement.scrollWidth, outside];",
                vec![],
            )
            .await?;
        let (width, scroll_width, outside): (u64, u64, Vec<String>) =
            serde_json::from_value(layout)?;
        assert!(width <= 420, "the window is {width} px wide");
        assert!(outside.is_empty(), "{path}: the top bar clips {outside:?}");
        assert!(
            scroll_width <= width,
            "{path} is {scroll_width} px wide in a {width} px window"
        );
    }
    screenshot(browser, "narrow-search.png").await?;
    Ok(())
}

/// The Queues page in a real browser: pause a queue, set its concurrency limit through the
/// row's form, resume it; each time the page the action returns to shows the change, and the
/// storage holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_limit_and_resume_a_queue_in_a_real_browser() -> anyhow::Result<()> {
    // Jobs in a queue no server serves, so they stay Enqueued while the page is used.
    let storage = MemoryStorage::new();
    let client = Client::new(storage.clone());
    for user in 0..3 {
        SendWelcome::new(user)
            .enqueue_with(&client, EnqueueOptions::new().queue("partner"))
            .await?;
    }
    let stop = CancellationToken::new();
    let (base, dashboard) = serve_dashboard(Dashboard::new(storage.clone()), &stop).await?;
    let session = BrowserSession::start().await?;

    let outcome = drive_queues(&session.browser, &base, &client).await;
    let closed = session.close().await;
    stop.cancel();
    dashboard.await??;
    outcome?;
    closed?;
    Ok(())
}

/// The stored settings of `queue`.
async fn queue_settings(client: &Client, queue: &str) -> anyhow::Result<QueueSettings> {
    client
        .queues()
        .await?
        .into_iter()
        .find(|info| info.queue == queue)
        .map(|info| info.settings)
        .with_context(|| format!("queue `{queue}` is not listed"))
}

/// Waits until the flash message says `expected` (it starts with it).
async fn wait_for_flash(browser: &Browser, expected: &str) -> anyhow::Result<String> {
    eventually(&format!("the message `{expected}`"), || async {
        text_of(browser, ".flash")
            .await
            .filter(|flash| flash.starts_with(expected))
    })
    .await
}

async fn drive_queues(browser: &Browser, base: &str, client: &Client) -> anyhow::Result<()> {
    let row = "tr[data-queue=\"partner\"]";
    let cell = |name: &str| format!("{row} {name}");
    browser.goto(&format!("{base}/jobs/enqueued")).await?;
    assert_eq!(text_of(browser, "h1").await.as_deref(), Some("Queues"));
    assert_eq!(
        text_of(browser, &cell("td.status")).await.as_deref(),
        Some("Active")
    );
    assert_eq!(
        text_of(browser, &cell("td.num")).await.as_deref(),
        Some("3")
    );

    // Pause.
    let toggle = browser.find(Locator::Css(&cell("button.toggle"))).await?;
    assert_eq!(toggle.text().await?, "Pause");
    toggle.click().await?;
    wait_for_flash(browser, "Paused queue `partner`").await?;
    assert_eq!(
        text_of(browser, &cell("td.status")).await.as_deref(),
        Some("Paused")
    );
    assert_eq!(
        text_of(browser, &cell("button.toggle")).await.as_deref(),
        Some("Resume")
    );
    assert!(queue_settings(client, "partner").await?.paused);

    // A concurrency limit, typed into the row's form.
    let concurrency = browser
        .find(Locator::Css(&cell("input[name=\"concurrency\"]")))
        .await?;
    concurrency.clear().await?;
    concurrency.send_keys("3").await?;
    browser
        .find(Locator::Css(&cell("form.limits button")))
        .await?
        .click()
        .await?;
    wait_for_flash(
        browser,
        "Set the limits of queue `partner`: at most 3 running at once",
    )
    .await?;
    assert_eq!(
        text_of(browser, &cell("td.concurrency")).await.as_deref(),
        Some("3")
    );
    assert_eq!(
        text_of(browser, &cell("td.rate")).await.as_deref(),
        Some("none")
    );
    let settings = queue_settings(client, "partner").await?;
    assert_eq!(settings.limits, QueueLimits::new().concurrency(3));
    assert!(settings.paused, "setting limits keeps the queue paused");
    screenshot(browser, "queues.png").await?;

    // Resume.
    browser
        .find(Locator::Css(&cell("button.toggle")))
        .await?
        .click()
        .await?;
    wait_for_flash(browser, "Resumed queue `partner`.").await?;
    assert_eq!(
        text_of(browser, &cell("td.status")).await.as_deref(),
        Some("Active")
    );
    let settings = queue_settings(client, "partner").await?;
    assert!(!settings.paused);
    assert_eq!(settings.limits, QueueLimits::new().concurrency(3));
    Ok(())
}
