//! End-to-end: recurring jobs fired by servers on MemoryStorage, with pinned time.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use jobs::clock::{Clock, ManualClock};
use jobs::prelude::*;
use jobs::storage::{JobQuery, RecurringJob};
use support::*;

/// Counts its runs per label.
#[job(queue = "recurring")]
async fn tick(label: String) -> anyhow::Result<String> {
    Ok(label)
}

static RELEASE: AtomicBool = AtomicBool::new(false);

/// Runs until the test releases it.
#[job(queue = "recurring")]
async fn long_tick(label: String) -> anyhow::Result<String> {
    while !RELEASE.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(label)
}

/// A job that is never run by these tests' servers.
#[job(queue = "not-served")]
async fn idle(label: String) {
    let _ = label;
}

fn minute(n: i64) -> DateTime<Utc> {
    jobs::testing::conformance::t0() + TimeDelta::minutes(n)
}

fn recurring_server(storage: &MemoryStorage, clock: &ManualClock) -> jobs::ServerBuilder {
    fast(storage.clone())
        .queues(["recurring"])
        .clock(clock.clone())
}

async fn fired(client: &Client, id: &str) -> Vec<jobs::JobRecord> {
    let page = client
        .storage()
        .list_jobs(JobQuery {
            limit: 1000,
            ..JobQuery::default()
        })
        .await
        .unwrap();
    let mut jobs = Vec::new();
    for job in page
        .jobs
        .into_iter()
        .filter(|j| j.recurring_id.as_deref() == Some(id))
    {
        // Listings carry no history; read each job whole.
        jobs.push(client.job(job.id).await.unwrap());
    }
    jobs.sort_by_key(|j| j.id);
    jobs
}

async fn wait_fired(client: &Client, id: &str, count: usize) -> Vec<jobs::JobRecord> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let jobs = fired(client, id).await;
        if jobs.len() >= count {
            return jobs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id}: {} of {count} jobs fired",
            jobs.len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_recurring(
    client: &Client,
    id: &str,
    what: &str,
    mut done: impl FnMut(&RecurringJob) -> bool,
) -> RecurringJob {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let job = client.recurring_job(id).await.unwrap();
        if done(&job) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id}: timed out waiting for {what}: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Proves a server has gone through maintenance rounds: a job enqueued now is run.
async fn server_cycled(client: &Client) {
    let canary = Tick::new("canary".into()).enqueue(client).await.unwrap();
    wait_state(client, canary, JobState::Succeeded).await;
}

#[tokio::test]
async fn minutely_job_fires_once_per_occurrence_across_two_servers() {
    let storage = MemoryStorage::new();
    let clock = manual_clock();
    let client = Client::new(storage.clone()).with_clock(clock.clone());
    client
        .add_or_update_recurring("every-minute", Cron::minutely(), Tick::new("m".into()))
        .await
        .unwrap();
    let listed = client.recurring_jobs().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].cron.as_str(),
            listed[0].time_zone.as_str(),
            listed[0].next_run
        ),
        ("* * * * *", "UTC", Some(minute(1)))
    );
    let servers = vec![
        recurring_server(&storage, &clock)
            .build()
            .unwrap()
            .start()
            .await
            .unwrap(),
        recurring_server(&storage, &clock)
            .build()
            .unwrap()
            .start()
            .await
            .unwrap(),
    ];
    for occurrence in 1..=5 {
        clock.advance(Duration::from_secs(60));
        let jobs = wait_fired(&client, "every-minute", occurrence).await;
        let last = jobs.last().unwrap();
        assert_eq!(
            last.history[0].data.occurrence,
            Some(minute(occurrence as i64))
        );
        wait_state(&client, last.id, JobState::Succeeded).await;
        wait_recurring(&client, "every-minute", "the next run to move", |r| {
            r.next_run == Some(minute(occurrence as i64 + 1))
        })
        .await;
    }
    server_cycled(&client).await;
    assert_eq!(
        fired(&client, "every-minute").await.len(),
        5,
        "exactly one job per occurrence"
    );
    let state = client.recurring_job("every-minute").await.unwrap();
    assert_eq!(state.last_run, Some(minute(5)));
    assert_eq!(state.last_job_state, Some(JobState::Succeeded));
    for server in servers {
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn missed_occurrences_fire_once_by_default_or_each_when_asked() {
    let storage = MemoryStorage::new();
    let clock = manual_clock();
    let client = Client::new(storage.clone()).with_clock(clock.clone());
    client
        .add_or_update_recurring("coalesced", Cron::minutely(), Tick::new("c".into()))
        .await
        .unwrap();
    client
        .add_or_update_recurring_with(
            "each",
            Cron::minutely(),
            Tick::new("e".into()),
            RecurringOptions::new().fire_every_missed(),
        )
        .await
        .unwrap();
    // Ten minutes pass with no server running.
    clock.advance(Duration::from_secs(600));
    let server = recurring_server(&storage, &clock)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let each = wait_fired(&client, "each", 10).await;
    let occurrences: Vec<_> = each.iter().map(|j| j.history[0].data.occurrence).collect();
    assert_eq!(
        occurrences,
        (1..=10).map(|n| Some(minute(n))).collect::<Vec<_>>()
    );
    let coalesced = wait_fired(&client, "coalesced", 1).await;
    server_cycled(&client).await;
    assert_eq!(
        fired(&client, "coalesced").await.len(),
        1,
        "one job for all missed occurrences"
    );
    assert_eq!(coalesced[0].history[0].data.occurrence, Some(minute(1)));
    assert_eq!(
        client.recurring_job("coalesced").await.unwrap().next_run,
        Some(minute(11))
    );
    assert_eq!(fired(&client, "each").await.len(), 10);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn skip_if_running_skips_while_the_previous_run_is_in_flight() {
    let storage = MemoryStorage::new();
    let clock = manual_clock();
    let client = Client::new(storage.clone()).with_clock(clock.clone());
    client
        .add_or_update_recurring_with(
            "slow",
            Cron::minutely(),
            LongTick::new("s".into()),
            RecurringOptions::new().skip_if_running(),
        )
        .await
        .unwrap();
    let server = recurring_server(&storage, &clock)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    clock.advance(Duration::from_secs(60));
    let first = wait_fired(&client, "slow", 1).await[0].id;
    wait_state(&client, first, JobState::Processing).await;
    clock.advance(Duration::from_secs(60));
    let skipped = wait_recurring(&client, "slow", "a skipped firing", |r| {
        r.next_run == Some(minute(3))
    })
    .await;
    let note = skipped.last_error.unwrap_or_default();
    assert!(
        note.starts_with("skipped the occurrence of 2026-01-01T00:02:00+00:00"),
        "{note}"
    );
    assert!(
        note.ends_with(&format!("job {first} is still Processing")),
        "{note}"
    );
    assert_eq!(fired(&client, "slow").await.len(), 1);
    RELEASE.store(true, Ordering::SeqCst);
    wait_state(&client, first, JobState::Succeeded).await;
    clock.advance(Duration::from_secs(60));
    let jobs = wait_fired(&client, "slow", 2).await;
    assert_eq!(jobs[1].history[0].data.occurrence, Some(minute(3)));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn add_or_update_keeps_created_time_and_next_run_unless_the_schedule_changes() {
    let storage = MemoryStorage::new();
    let clock = manual_clock();
    let client = Client::new(storage.clone()).with_clock(clock.clone());
    client
        .add_or_update_recurring("report", Cron::minutely(), Idle::new("v1".into()))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(30));
    client
        .add_or_update_recurring("report", "* * * * *", Idle::new("v2".into()))
        .await
        .unwrap();
    let same = client.recurring_job("report").await.unwrap();
    assert_eq!(
        (same.created_at, same.next_run),
        (minute(0), Some(minute(1)))
    );
    assert_eq!(same.args, r#"{"label":"v2"}"#, "the job is replaced");
    assert_eq!(same.queue, "not-served");
    client
        .add_or_update_recurring("report", "*/5 * * * *", Idle::new("v3".into()))
        .await
        .unwrap();
    let changed = client.recurring_job("report").await.unwrap();
    assert_eq!(
        (changed.created_at, changed.next_run),
        (minute(0), Some(minute(5)))
    );
    client
        .add_or_update_recurring_with(
            "report",
            "*/5 * * * *",
            Idle::new("v3".into()),
            RecurringOptions::new().time_zone("Asia/Kolkata"),
        )
        .await
        .unwrap();
    // Kolkata is UTC+05:30: its next multiple of five minutes is still 00:05 UTC.
    assert_eq!(
        client.recurring_job("report").await.unwrap().time_zone,
        "Asia/Kolkata"
    );
    client
        .add_or_update_recurring_with(
            "paris",
            Cron::daily_at(9, 0).unwrap(),
            Idle::new("p".into()),
            RecurringOptions::new().time_zone("Europe/Paris"),
        )
        .await
        .unwrap();
    assert_eq!(
        client.recurring_job("paris").await.unwrap().next_run,
        Some(minute(8 * 60)),
        "09:00 in Paris is 08:00 UTC in January"
    );
}

#[tokio::test]
async fn invalid_cron_or_time_zone_is_refused_and_nothing_is_stored() {
    let client = Client::new(MemoryStorage::new());
    let error = client
        .add_or_update_recurring("broken", "61 * * * *", Idle::new("x".into()))
        .await
        .unwrap_err();
    assert!(matches!(error, jobs::Error::InvalidCron { .. }), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("invalid cron expression `61 * * * *`"),
        "{error}"
    );
    let error = client
        .add_or_update_recurring_with(
            "broken",
            Cron::hourly(),
            Idle::new("x".into()),
            RecurringOptions::new().time_zone("Mars/Olympus"),
        )
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "unknown time zone `Mars/Olympus`");
    assert!(client.recurring_jobs().await.unwrap().is_empty());
    assert!(matches!(
        client.trigger_recurring("missing").await,
        Err(jobs::Error::RecurringNotFound(_))
    ));
    assert!(matches!(
        client.pause_recurring("missing").await,
        Err(jobs::Error::RecurringNotFound(_))
    ));
}

#[tokio::test]
async fn a_cron_that_can_never_fire_is_refused_and_nothing_is_stored() {
    let client = Client::new(MemoryStorage::new());
    for cron in ["0 0 30 2 *", "0 0 31 4 *", "0 0 0 * 2 SUN#5 2025"] {
        let error = client
            .add_or_update_recurring("never", cron, Idle::new("x".into()))
            .await
            .unwrap_err();
        assert!(matches!(error, jobs::Error::InvalidCron { .. }), "{error}");
        assert!(error.to_string().contains("never"), "{error}");
    }
    assert!(client.recurring_jobs().await.unwrap().is_empty());
}

#[tokio::test]
async fn trigger_pause_resume_and_remove() {
    let storage = MemoryStorage::new();
    let clock = manual_clock();
    let client = Client::new(storage.clone()).with_clock(clock.clone());
    client
        .add_or_update_recurring("hourly", Cron::hourly(), Tick::new("h".into()))
        .await
        .unwrap();
    let server = recurring_server(&storage, &clock)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let triggered = client.trigger_recurring("hourly").await.unwrap();
    wait_state(&client, triggered, JobState::Succeeded).await;
    let after_trigger = client.recurring_job("hourly").await.unwrap();
    assert_eq!(
        (after_trigger.next_run, after_trigger.last_job_id),
        (Some(minute(60)), Some(triggered))
    );
    client.pause_recurring("hourly").await.unwrap();
    assert!(client.recurring_job("hourly").await.unwrap().paused);
    clock.advance(Duration::from_secs(2 * 3600));
    server_cycled(&client).await;
    assert_eq!(
        fired(&client, "hourly").await.len(),
        1,
        "a paused job does not fire"
    );
    client.resume_recurring("hourly").await.unwrap();
    let resumed = client.recurring_job("hourly").await.unwrap();
    assert_eq!(
        (resumed.paused, resumed.next_run),
        (false, Some(minute(180))),
        "missed runs while paused are dropped"
    );
    assert!(client.remove_recurring("hourly").await.unwrap());
    assert!(!client.remove_recurring("hourly").await.unwrap());
    assert_eq!(
        client.job(triggered).await.unwrap().state,
        JobState::Succeeded,
        "fired jobs stay"
    );
    assert_eq!(clock.now(), minute(120));
    server.shutdown().await.unwrap();
}
