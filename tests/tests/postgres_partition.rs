//! A network partition: two worker hosts, each in a network namespace of its own (a veth pair,
//! addresses inside this machine only), run one PostgreSQL's jobs under a steady load; host
//! A's link goes down for 60 s and comes back. Nothing is lost; a job runs twice only if its
//! lease lapsed during the cut (its history shows the rescue); A runs jobs again within the
//! lease plus 5 s of the link's return; its log says what happened, in a few lines; and it
//! stops gracefully afterwards.
//!
//! PostgreSQL listens on loopback only, so each host reaches it through a TCP relay in this
//! process, listening on the host's side of its veth pair. Cutting the link drops every packet
//! silently (nothing arrives, nothing is refused), as on a real partition; the relay then also
//! closes the database side of the host's connections, as the server's keepalive probes would
//! (which cannot see a dead host behind a relay on loopback).
//!
//! Needs root and iproute2 (`ip netns`); it fails, saying so, without them. It runs for about
//! two minutes, as a test binary of its own.

mod postgres_support;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use jobs::{JobId, JobState, Storage};
use postgres_support::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long host A's link stays down.
const CUT: Duration = Duration::from_secs(60);

/// The workers' job lease (the heartbeat renews it six times per lease).
const LEASE: Duration = Duration::from_secs(15);

/// Runs `ip` with `args`; the error carries its output.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|error| format!("cannot run `ip {}`: {error}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A host: a network namespace joined to this one by a veth pair. Removed when dropped.
struct Host {
    netns: String,
    link: String,
    /// This side's address (where the relay listens).
    gateway: String,
}

impl Host {
    fn create(index: u32) -> Result<Host, String> {
        let tag = std::process::id() % 10_000;
        let netns = format!("jobs-part-{tag}-{index}");
        let link = format!("jp{tag}r{index}");
        let peer = format!("jp{tag}h{index}");
        let subnet = format!("10.{}.{}", 231 + index, tag % 250);
        let gateway = format!("{subnet}.1");
        let host = Host {
            netns: netns.clone(),
            link: link.clone(),
            gateway: gateway.clone(),
        };
        // Leftovers of an earlier run of the same tag go first.
        let _ = ip(&["link", "del", &link]);
        let _ = ip(&["netns", "del", &netns]);
        ip(&["netns", "add", &netns])?;
        ip(&["link", "add", &link, "type", "veth", "peer", "name", &peer])?;
        ip(&["link", "set", &peer, "netns", &netns])?;
        ip(&["addr", "add", &format!("{gateway}/30"), "dev", &link])?;
        ip(&["link", "set", &link, "up"])?;
        ip(&[
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{subnet}.2/30"),
            "dev",
            &peer,
        ])?;
        ip(&["-n", &netns, "link", "set", &peer, "up"])?;
        ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        Ok(host)
    }

    fn set_link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        ip(&["link", "set", &self.link, state]).expect("set the host's link");
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.link]);
        let _ = ip(&["netns", "del", &self.netns]);
    }
}

/// A TCP relay from a host's gateway address to the database.
struct Relay {
    address: SocketAddr,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(gateway: &str, database: String) -> Relay {
        let listener = TcpListener::bind((gateway, 0))
            .await
            .expect("relay listens on the gateway address");
        let address = listener.local_addr().expect("relay address");
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let tracked = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut host_side, _)) = listener.accept().await {
                let database = database.clone();
                let relay = tokio::spawn(async move {
                    if let Ok(mut database_side) = TcpStream::connect(&database).await {
                        let _ =
                            tokio::io::copy_bidirectional(&mut host_side, &mut database_side).await;
                    }
                });
                tracked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(relay);
            }
        });
        Relay {
            address,
            connections,
            accept,
        }
    }

    /// Ends every relayed connection on the database side.
    fn drop_connections(&self) {
        for relay in self
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            relay.abort();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.drop_connections();
    }
}

/// The test database's `host:port`, and its URL with `host:port` replaced by `relay`.
/// The URL must have the form `postgres://user@host:port/database`.
fn relayed(url: &str, relay: SocketAddr) -> (String, String) {
    let after_at = url.find('@').expect("database url has user@host") + 1;
    let end = url[after_at..]
        .find('/')
        .map_or(url.len(), |slash| after_at + slash);
    let target = url[after_at..end].to_owned();
    let relayed = format!("{}{relay}{}", &url[..after_at], &url[end..]);
    (target, relayed)
}

/// Executions per job with their process and time.
async fn executions_at(
    storage: &jobs_postgres::PostgresStorage,
) -> BTreeMap<i64, Vec<(i64, chrono::DateTime<Utc>)>> {
    let client = storage.pool().get().await.expect("connection");
    let rows = client
        .query(
            &format!(
                "SELECT job_id, pid, at FROM \"{}\".executions ORDER BY at, job_id",
                storage.schema()
            ),
            &[],
        )
        .await
        .expect("executions");
    let mut runs: BTreeMap<i64, Vec<(i64, chrono::DateTime<Utc>)>> = BTreeMap::new();
    for row in rows {
        runs.entry(row.get(0))
            .or_default()
            .push((row.get(1), row.get(2)));
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_cut_off_for_a_minute_recovers_and_loses_nothing() {
    let schema = schema().await;
    let storage = schema.storage();
    let hosts: Vec<Host> = (0..2)
        .map(|index| {
            Host::create(index).unwrap_or_else(|error| {
                panic!(
                    "the partition test needs root and iproute2 (`ip netns`) to build its hosts: {error}"
                )
            })
        })
        .collect();
    let mut relays = Vec::new();
    let mut urls = Vec::new();
    for host in &hosts {
        let (database, _) = relayed(schema.url(), "127.0.0.1:1".parse().expect("address"));
        let relay = Relay::start(&host.gateway, database).await;
        urls.push(relayed(schema.url(), relay.address).1);
        relays.push(relay);
    }
    let settings = WorkerSettings {
        workers: 4,
        lease: LEASE,
        pause: Duration::from_millis(100),
    };
    let log = "warn,jobs=info,jobs_postgres=info";
    let mut a = Worker::start_in(&hosts[0].netns, &urls[0], schema.schema(), settings, log);
    let mut b = Worker::start_in(&hosts[1].netns, &urls[1], schema.schema(), settings, log);

    // A steady load: 10 jobs every half second, below what B alone runs.
    let enqueued: Arc<Mutex<Vec<JobId>>> = Arc::default();
    let feeder = {
        let storage = storage.clone();
        let enqueued = enqueued.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(500));
            loop {
                ticker.tick().await;
                let ids = enqueue_records(&storage, 10).await;
                enqueued
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(ids);
            }
        })
    };
    let ran_on = |pid: i64| {
        let storage = storage.clone();
        async move {
            executions_at(&storage)
                .await
                .values()
                .flatten()
                .filter(|(by, _)| *by == pid)
                .count()
        }
    };
    eventually(
        "both hosts to run jobs",
        Duration::from_secs(60),
        || async { ran_on(a.pid).await >= 20 && ran_on(b.pid).await >= 20 },
    )
    .await;

    // The cut: A's packets go nowhere for a minute.
    let cut_at = Utc::now();
    hosts[0].set_link(false);
    relays[0].drop_connections();
    let b_before = ran_on(b.pid).await;
    tokio::time::sleep(CUT).await;
    assert!(
        ran_on(b.pid).await > b_before + 100,
        "host B kept running jobs during the cut"
    );
    let back_at = Utc::now();
    let back = tokio::time::Instant::now();
    hosts[0].set_link(true);

    // A runs a job fetched after the link's return within lease + 5 s.
    eventually(
        "host A to run new jobs after the link's return",
        LEASE + Duration::from_secs(5),
        || async {
            executions_at(storage)
                .await
                .values()
                .any(|runs| runs.len() == 1 && runs[0].0 == a.pid && runs[0].1 > back_at)
        },
    )
    .await;
    let recovered_in = back.elapsed();

    feeder.abort();
    let _ = feeder.await;
    let ids: Vec<JobId> = enqueued.lock().unwrap_or_else(|e| e.into_inner()).clone();
    eventually("every job to succeed", Duration::from_secs(120), || async {
        count_in(storage, JobState::Succeeded).await == ids.len() as u64
    })
    .await;

    // Nothing lost; a job ran twice only when its lease lapsed during the cut.
    let runs = executions_at(storage).await;
    let expected: HashSet<i64> = ids.iter().map(|id| id.0).collect();
    assert_eq!(
        runs.keys().copied().collect::<HashSet<_>>(),
        expected,
        "every job ran"
    );
    let mut repeated = 0;
    for (id, job_runs) in &runs {
        if job_runs.len() < 2 {
            continue;
        }
        repeated += 1;
        assert_eq!(
            job_runs.len(),
            2,
            "job {id} ran more than twice: {job_runs:?}"
        );
        assert!(
            job_runs.iter().any(|(pid, _)| *pid == a.pid),
            "job {id} ran twice without host A: {job_runs:?}"
        );
        let record = storage
            .job(JobId(*id))
            .await
            .expect("job")
            .expect("the job exists");
        let rescued = record.history.iter().find(|entry| {
            entry
                .reason
                .as_deref()
                .is_some_and(|reason| reason.starts_with("lease expired"))
        });
        let rescued = rescued.unwrap_or_else(|| {
            panic!("job {id} ran twice but its lease never lapsed: {job_runs:?}")
        });
        assert!(
            rescued.at > cut_at && rescued.at < back_at + chrono::TimeDelta::seconds(5),
            "job {id}'s lease lapsed outside the cut: {:?}",
            rescued.at
        );
    }

    // A's log says what happened, in a few lines: no line per retry.
    let a_log = a.stderr();
    assert!(
        a_log.contains("storage call failed"),
        "host A logged the outage:\n{a_log}"
    );
    assert!(
        a_log.contains("storage answers again"),
        "host A logged the return:\n{a_log}"
    );
    let warnings = a_log
        .lines()
        .filter(|line| line.contains(" WARN ") || line.contains("ERROR"))
        .count();
    assert!(
        warnings <= 10,
        "host A logged {warnings} warnings in a one-minute outage:\n{a_log}"
    );

    // Both stop gracefully, A within its grace period and shutdown timeout.
    let stopping = tokio::time::Instant::now();
    let status = a.stop().await;
    assert!(status.success(), "host A stopped cleanly: {status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(20),
        "host A stopped in {:?}",
        stopping.elapsed()
    );
    assert!(b.stop().await.success(), "host B stopped cleanly");
    eprintln!(
        "partition: {} jobs, {repeated} ran twice (leases lapsed during the cut), host A back in {recovered_in:?}",
        ids.len()
    );
    drop(relays);
    drop(hosts);
}
