//! The `LISTEN` connection: one dedicated connection per storage, outside the pool, that turns
//! the enqueue notifications of every process into wake-ups of `wait_for_work`.
//!
//! It is opened on the first `wait_for_work` (a storage that only enqueues never opens it),
//! re-established with a backoff when it is lost, and pinged so a silently dead connection is
//! noticed. After every (re)connection it wakes the waiters once, since notifications sent
//! while it was down are lost. Servers poll as well, so a missed notification only delays.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::error::describe;
use crate::options::quote_identifier;

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the connection is checked.
const PING_INTERVAL: Duration = Duration::from_secs(15);
/// How long a check may take before the connection is dropped and reopened.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Limits enqueue notifications to one per window (`PostgresOptions::notify_throttle`), with
/// a trailing one for the enqueues it skipped.
#[derive(Debug)]
pub(crate) struct Throttle {
    window: Duration,
    state: std::sync::Mutex<ThrottleState>,
}

#[derive(Debug, Default)]
struct ThrottleState {
    last: Option<tokio::time::Instant>,
    trailing: bool,
}

impl Throttle {
    pub(crate) fn new(window: Duration) -> Self {
        Throttle {
            window,
            state: std::sync::Mutex::default(),
        }
    }

    /// Whether this enqueue should NOTIFY in its own statement. If not, a NOTIFY is sent at the
    /// end of the window (once, however many enqueues were skipped).
    pub(crate) fn notify_now(self: &Arc<Self>, pool: &Pool, channel: &str) -> bool {
        let now = tokio::time::Instant::now();
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match state.last {
            Some(last) if now < last + self.window => {
                if !state.trailing {
                    state.trailing = true;
                    let at = last + self.window;
                    let (throttle, pool, channel) =
                        (self.clone(), pool.clone(), channel.to_owned());
                    tokio::spawn(async move {
                        tokio::time::sleep_until(at).await;
                        throttle.sent_trailing();
                        if let Err(error) = send_notify(&pool, &channel).await {
                            tracing::warn!(%error, "sending a deferred NOTIFY failed; servers will poll");
                        }
                    });
                }
                false
            }
            _ => {
                state.last = Some(now);
                true
            }
        }
    }

    fn sent_trailing(&self) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.trailing = false;
        state.last = Some(tokio::time::Instant::now());
    }
}

/// Sends a NOTIFY on `channel` now (the throttle's deferred one).
async fn send_notify(pool: &Pool, channel: &str) -> Result<(), String> {
    let client = pool.get().await.map_err(|error| error.to_string())?;
    client
        .execute("SELECT pg_notify($1, '')", &[&channel])
        .await
        .map_err(|error| describe(&error))?;
    Ok(())
}

/// Wakes everyone waiting now, and the next one to wait (like `MemoryStorage`).
pub(crate) fn wake(work: &Notify) {
    work.notify_waiters();
    work.notify_one();
}

/// Listens on `channel` until the task is aborted (when the storage is dropped). A failure is
/// logged when the connection goes from working to failing, not at every retry (an outage
/// would log a line per backoff step); its return is logged once.
pub(crate) async fn listen(config: tokio_postgres::Config, channel: String, work: Arc<Notify>) {
    let mut backoff = Duration::from_millis(50);
    let mut failing = false;
    loop {
        let mut listened = false;
        let ended = listen_once(&config, &channel, &work, &mut listened, &mut failing).await;
        if listened {
            // It worked for a while: reconnect quickly.
            backoff = Duration::from_millis(50);
        }
        match ended {
            Ok(()) => tracing::warn!(channel, "the LISTEN connection closed; reconnecting"),
            Err(message) if !failing => {
                failing = true;
                tracing::warn!(channel, error = %message, "the LISTEN connection failed; reconnecting with backoff (polling meanwhile)");
            }
            Err(message) => {
                tracing::debug!(channel, error = %message, retry_in = ?backoff, "the LISTEN connection failed again");
            }
        }
        // Notifications sent while the connection was down are lost: look for work anyway.
        wake(&work);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection's life: connect, `LISTEN`, forward notifications until it ends.
async fn listen_once(
    config: &tokio_postgres::Config,
    channel: &str,
    work: &Arc<Notify>,
    listened: &mut bool,
    failing: &mut bool,
) -> Result<(), String> {
    let (client, mut connection) = config
        .connect(NoTls)
        .await
        .map_err(|error| describe(&error))?;
    let forward = work.clone();
    let mut driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => wake(&forward),
                Some(Ok(AsyncMessage::Notice(notice))) => {
                    tracing::debug!(notice = %notice.message(), "notice on the LISTEN connection");
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(describe(&error)),
                None => return Ok(()),
            }
        }
    });
    // Also the ping: LISTEN again is a no-op that proves the connection (and keeps
    // `pg_stat_activity` showing what this connection is for).
    let listen = format!("LISTEN {}", quote_identifier(channel));
    let result = async {
        match tokio::time::timeout(PING_TIMEOUT, client.batch_execute(&listen)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(describe(&error)),
            Err(_) => return Err(format!("no answer to LISTEN within {PING_TIMEOUT:?}")),
        }
        *listened = true;
        if std::mem::take(failing) {
            tracing::info!(channel, "the LISTEN connection works again");
        }
        tracing::debug!(channel, "listening for enqueued jobs");
        wake(work);
        loop {
            tokio::select! {
                ended = &mut driver => {
                    return match ended {
                        Ok(result) => result,
                        Err(error) => Err(error.to_string()),
                    };
                }
                () = tokio::time::sleep(PING_INTERVAL) => {
                    match tokio::time::timeout(PING_TIMEOUT, client.batch_execute(&listen)).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => return Err(describe(&error)),
                        Err(_) => return Err(format!("no answer to a ping within {PING_TIMEOUT:?}")),
                    }
                }
            }
        }
    }
    .await;
    driver.abort();
    result
}
