//! Storing the outcomes of finished attempts in batches, with the release of the continuations of the jobs that finished.

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use jobs::storage::{Completion, StateData, CONTINUATION_NOT_MET};
use jobs::{JobState, Result};
use tokio_postgres::types::{Json, ToSql};

use super::release::Released;
use super::ts;
use crate::database::{Database, Template};

/// Applies a batch of outcomes, each only where the job is still Processing under the
/// completion's server: state, history, retry count, result and error, hourly statistics.
/// Rows are locked in id order so concurrent batches cannot deadlock.
///
/// A success (no reason) writes no history row: its entry and its attempt's Processing entry
/// stay in the row (`succeeded_data` without the result, `started_at`, and the row keeps
/// `server_id`; migration 0006) until a delete or requeue writes them out.
pub(crate) const COMPLETE: Template = Template::text(
    "complete",
    "
WITH input AS MATERIALIZED (
    SELECT *
    FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[], $5::text[],
                $6::jsonb[], $7::timestamptz[], $8::boolean[])
         AS input(id, server_id, at, state, reason, data, run_at, failed)
    ORDER BY id
),
held AS (
    -- One primary-key probe per outcome, in id order (`LATERAL` with a lock is never
    -- flattened into a join, so stale statistics cannot turn it into a scan of every
    -- Processing job per outcome). Carries the input's columns, so the update below joins
    -- nothing but the locked rows.
    SELECT job.id, input.state, input.at, input.reason, input.data, input.run_at, input.failed,
           job.state_at AS started_at, job.server_id, job.retry_count
    FROM input
    CROSS JOIN LATERAL (
        SELECT id, state, server_id, state_at, retry_count FROM __SCHEMA__.jobs
        WHERE id = input.id
        OFFSET 0
        FOR NO KEY UPDATE
    ) AS job
    WHERE job.state = 'processing' AND job.server_id = input.server_id
),
completed AS (
    UPDATE __SCHEMA__.jobs AS job
    SET state = held.state,
        state_at = held.at,
        run_at = held.run_at,
        server_id = CASE WHEN held.in_row THEN job.server_id END,
        lease_until = NULL,
        enqueued_at = CASE WHEN held.state = 'enqueued' THEN held.at ELSE job.enqueued_at END,
        retry_count = job.retry_count + CASE WHEN held.failed THEN 1 ELSE 0 END,
        result = CASE WHEN held.state = 'succeeded' THEN held.data -> 'result'
                      ELSE job.result END,
        error = COALESCE(held.data -> 'error', job.error),
        succeeded_data = CASE WHEN held.in_row THEN held.data - 'result' END,
        started_at = CASE WHEN held.in_row THEN held.started_at END
    FROM (SELECT *, state = 'succeeded' AND reason IS NULL AS in_row FROM held) AS held
    WHERE job.id = held.id
    RETURNING job.id, held.state, held.at, held.reason, held.data, held.failed, held.in_row,
              held.started_at, held.server_id, held.retry_count
),
history AS (
    INSERT INTO __SCHEMA__.job_history (job_id, state, at, reason, data, attempt_at, attempt_data)
    SELECT id, state, at, reason, data,
           started_at, __SCHEMA__.attempt_data(server_id, retry_count)
    FROM completed WHERE NOT in_row ORDER BY id
),
counted AS (
    INSERT INTO __SCHEMA__.stats AS stat (hour, shard, succeeded, failed)
    SELECT date_trunc('hour', at, 'UTC'), (pg_backend_pid() % 16)::smallint,
           count(*) FILTER (WHERE state = 'succeeded'), count(*) FILTER (WHERE failed)
    FROM completed
    WHERE state = 'succeeded' OR failed
    GROUP BY 1
    ORDER BY 1
    ON CONFLICT (hour, shard) DO UPDATE
    SET succeeded = stat.succeeded + excluded.succeeded, failed = stat.failed + excluded.failed
),
notified AS (
    SELECT pg_notify($9, '') FROM (SELECT 1 FROM completed WHERE state = 'enqueued' LIMIT 1) AS found
)
SELECT id FROM completed WHERE (SELECT count(*) FROM notified) >= 0",
);

/// One completion as the parallel arrays of `COMPLETE` want it. The entry's data is serialized
/// straight into the statement's parameters (no `serde_json::Value` built per job).
pub(crate) struct CompletionRow<'a> {
    id: i64,
    server_id: &'a str,
    at: DateTime<Utc>,
    state: JobState,
    reason: Option<&'a str>,
    data: Cow<'a, StateData>,
    run_at: Option<DateTime<Utc>>,
    failed: bool,
}

impl<'a> CompletionRow<'a> {
    fn new(completion: &'a Completion) -> CompletionRow<'a> {
        let outcome = &completion.outcome;
        let data = outcome.data();
        CompletionRow {
            id: completion.id.0,
            server_id: &completion.server_id,
            at: ts(completion.at),
            state: completion.state(),
            reason: outcome.reason(),
            run_at: completion.run_at().map(ts),
            data,
            failed: outcome.failed_attempt(),
        }
    }
}

/// [`Storage::complete`](jobs::Storage::complete) on PostgreSQL.
pub(crate) async fn complete(storage: &Database, completions: &[Completion]) -> Result<()> {
    let mut seen = HashSet::new();
    let rows = completions
        .iter()
        .filter(|completion| seen.insert(completion.id))
        .map(CompletionRow::new)
        .collect::<Vec<_>>();
    if rows.is_empty() {
        return Ok(());
    }
    let (finished, finished_at): (Vec<i64>, Vec<DateTime<Utc>>) = rows
        .iter()
        .filter(|row| {
            matches!(
                row.state,
                JobState::Succeeded | JobState::Failed | JobState::Deleted
            )
        })
        .map(|row| (row.id, row.at))
        .unzip();
    let requeued = rows.iter().any(|row| row.state == JobState::Enqueued);
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let servers: Vec<&str> = rows.iter().map(|row| row.server_id).collect();
    let ats: Vec<DateTime<Utc>> = rows.iter().map(|row| row.at).collect();
    let states: Vec<&str> = rows.iter().map(|row| row.state.as_str()).collect();
    let reasons: Vec<Option<&str>> = rows.iter().map(|row| row.reason).collect();
    let data: Vec<Json<&StateData>> = rows.iter().map(|row| Json(&*row.data)).collect();
    let run_ats: Vec<Option<DateTime<Utc>>> = rows.iter().map(|row| row.run_at).collect();
    let failed: Vec<bool> = rows.iter().map(|row| row.failed).collect();
    let params: [&(dyn ToSql + Sync); 9] = [
        &ids,
        &servers,
        &ats,
        &states,
        &reasons,
        &data,
        &run_ats,
        &failed,
        &storage.channel,
    ];
    let client = storage.client().await?;
    if finished.is_empty() {
        // Nothing can release a continuation: one autocommit statement.
        let statement = storage
            .db(&client)
            .prepare("complete", &storage.statement(&COMPLETE))
            .await?;
        client
            .query(&statement, &params)
            .await
            .map_err(|e| storage.error("complete", e))?;
    } else {
        // One round trip: BEGIN, the batch, the release, COMMIT are pipelined. The release
        // is a second statement so its snapshot sees continuations committed while the
        // first one waited for its row locks. Every message is queued on the first poll,
        // so the transaction ends (COMMIT, or ROLLBACK after an error) even if this future
        // is dropped; an error anywhere aborts the whole transaction.
        let (complete, release) = {
            let db = storage.db(&client);
            (
                db.prepare("complete", &storage.statement(&COMPLETE))
                    .await?,
                db.prepare(
                    "release continuations",
                    &storage.statement(&super::release::RELEASE),
                )
                .await?,
            )
        };
        let release_params: [&(dyn ToSql + Sync); 4] = [
            &finished,
            &finished_at,
            &storage.channel,
            &CONTINUATION_NOT_MET,
        ];
        let (begun, completed, released, committed) = tokio::join!(
            biased; // first polled in this order, so sent in this order
            client.batch_execute("BEGIN"),
            client.query(&complete, &params),
            client.query(&release, &release_params),
            client.batch_execute("COMMIT"),
        );
        let released = match (begun, completed, released, committed) {
            (Ok(()), Ok(_), Ok(rows), Ok(())) => Released::from_rows(&rows)?,
            (Err(error), ..) | (_, Err(error), ..) | (_, _, Err(error), _) | (.., Err(error)) => {
                return Err(storage.error("complete", error).into())
            }
        };
        // Deletions are rare (a child waiting for another outcome): their children are
        // checked again after the commit, so the common batch stays one round trip.
        let enqueued = released.enqueued
            + storage
                .release_deleted(&storage.db(&client), released)
                .await?;
        if enqueued > 0 {
            storage.wake();
        }
    }
    if requeued {
        storage.wake();
    }
    Ok(())
}
