//! Queue shares (migration 0012): the room a server reserves under its queues' limits, then
//! spends by the plain fetch statement guarded by its shares, instead of the limited fetch's
//! lock, count and write on every fetch. The model of what a server holds is `shares.rs`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jobs::storage::{FetchRequest, FetchedJob};
use jobs::{Rate, Result};

use super::ts;
use crate::database::{Database, Template};
use crate::row;
use crate::shares::{Plan, Tokens};

/// Reserves the server's shares of the served queues (`reserve_shares`): one row per queue,
/// with the rate starts reserved; none when a queue has no room.
pub(crate) const RESERVE_SHARES: Template = Template::text(
    "reserve shares",
    "
SELECT * FROM __SCHEMA__.reserve_shares($1::text[], $2::text, $3::integer, $4::timestamptz,
                                        $5::timestamptz)",
);

/// Ends a server's shares (`$2` NULL: all of them); its running jobs become claims.
pub(crate) const RELEASE_SHARES: Template = Template::text(
    "release shares",
    "SELECT __SCHEMA__.release_shares($1::text, $2::text[], $3::timestamptz)",
);

/// The plain fetch ([`FETCH`](super::fetch::FETCH)), taking jobs only while the server's
/// shares of every served queue stand: it holds them (`FOR KEY SHARE`) until it commits, so a
/// settings change, which ends the shares, waits for it and then counts what it started.
/// Built from `FETCH`'s text, so the two cannot differ in anything else.
pub(crate) const FETCH_SHARED: Template = Template::built("fetch shared", fetch_shared_sql);

fn fetch_shared_sql() -> String {
    let Some(sql) = super::fetch::FETCH.written() else {
        unreachable!("FETCH is written out");
    };
    let replace = |sql: String, from: &str, to: &str| {
        assert!(sql.contains(from), "FETCH has `{from}`");
        sql.replacen(from, to, 1)
    };
    let sql = replace(
        sql.to_owned(),
        "WITH picked AS MATERIALIZED (",
        "WITH held AS MATERIALIZED (
    SELECT share.queue
    FROM __SCHEMA__.queue_shares AS share
    WHERE share.queue = ANY ($1::text[]) AND share.server_id = $3 AND share.until > $4
    FOR KEY SHARE
),
picked AS MATERIALIZED (",
    );
    replace(
        sql,
        ") AS job\n",
        ") AS job\n    WHERE (SELECT count(*) FROM held) = cardinality($1::text[])\n",
    )
}

/// The limited fetch of a server whose queues hold no gated job: under its shares when their
/// limits leave room for its capacity, else by `FETCH_LIMITED` (`sql/flow.rs`).
pub(crate) async fn fetch(
    storage: &Database,
    queues: &[&str],
    request: &FetchRequest<'_>,
) -> Result<Vec<FetchedJob>> {
    let server = request.server_id;
    let capacity = request.capacity.max(request.limit);
    let mut plan = storage.shares.plan(server, queues, capacity, request.now);
    if plan == Plan::Reserve {
        plan = reserve(storage, queues, capacity, request).await?;
    }
    let Plan::Shared(left) = plan else {
        return super::flow::fetch_limited(storage, queues, request).await;
    };
    let limit = request.limit.min(left);
    if limit == 0 {
        return Ok(Vec::new());
    }
    let fetched = super::fetch::claim(storage, &FETCH_SHARED, queues, limit, request).await?;
    if fetched.is_empty() {
        // An empty queue, or shares ended by a settings change: the next fetch reserves again.
        storage.shares.forget(server);
    } else {
        storage
            .shares
            .spent(server, fetched.iter().map(|job| &*job.queue));
    }
    Ok(fetched)
}

/// Reserves the server's shares: [`Plan::Shared`] when every queue had room.
async fn reserve(
    storage: &Database,
    queues: &[&str],
    capacity: usize,
    request: &FetchRequest<'_>,
) -> Result<Plan> {
    let server = request.server_id;
    let want = i32::try_from(capacity).unwrap_or(i32::MAX);
    let rows = storage
        .query(
            "reserve shares",
            &storage.statement(&RESERVE_SHARES),
            &[
                &queues,
                &server,
                &want,
                &ts(request.now),
                &ts(request.lease_until),
            ],
        )
        .await?;
    if rows.len() < queues.len() {
        storage.shares.denied(server, queues, capacity, request.now);
        return Ok(Plan::Limited);
    }
    let what = || "a queue share".to_owned();
    let mut tokens = Vec::new();
    for row in &rows {
        let period: Option<i64> = row::column(row, "rate_period_ms", &what)?;
        let window: Option<i64> = row::column(row, "rate_window", &what)?;
        let count: Option<i64> = row::column(row, "tokens", &what)?;
        if let (Some(period), Some(window), Some(count)) = (period, window, count) {
            tokens.push(Tokens {
                queue: row::column(row, "queue", &what)?,
                rate: Rate {
                    count: u32::try_from(count).unwrap_or(0),
                    period: Duration::from_millis(u64::try_from(period).unwrap_or(1)),
                },
                window,
            });
        }
    }
    storage.shares.held(
        server,
        queues,
        capacity,
        request.now,
        request.lease_until,
        tokens,
    );
    Ok(storage.shares.plan(server, queues, capacity, request.now))
}

/// Ends `server`'s shares if this process knows it holds some (it leaves the path that
/// spends them, or stops).
pub(crate) async fn release(storage: &Database, server: &str, now: DateTime<Utc>) -> Result<()> {
    if storage.shares.take(server) {
        end(storage, server, now).await?;
    }
    Ok(())
}

/// Ends every share `server` holds, whichever process reserved them.
pub(crate) async fn release_all(
    storage: &Database,
    server: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    storage.shares.take(server);
    end(storage, server, now).await
}

/// `RELEASE_SHARES` of all `server`'s shares.
async fn end(storage: &Database, server: &str, now: DateTime<Utc>) -> Result<()> {
    storage
        .query(
            "release shares",
            &storage.statement(&RELEASE_SHARES),
            &[&server, &None::<Vec<String>>, &ts(now)],
        )
        .await?;
    Ok(())
}
