//! Creating jobs: the insert every enqueue path shares (autocommit, in a transaction with the parents locked, or in the caller's transaction) and each new job's first history entry.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use jobs::storage::{InitialState, NewJob, StateData};
use jobs::{Enqueued, Error, JobId, JobState, Result};
use tokio_postgres::types::ToSql;

use super::ts;
use crate::database::{Database, Db, Template};
use crate::error::PostgresError;
use crate::row;

/// Creates jobs from parallel arrays, one element per job, with their first history entry, and
/// notifies the channel once if any is Enqueued (and a channel is given: `$12` is NULL when the
/// storage's notify throttle sends the notification itself, a moment later). Ids and queue
/// positions are drawn in input order (the CTE is materialized: `nextval` runs once per row).
///
/// A job whose entry data (`$10`) is NULL was created Enqueued with no reason: its first entry
/// (Enqueued at `created_at`, its queue as data) is the row itself (`created_enqueued`,
/// migration 0006), and no history row is written.
pub(crate) const ENQUEUE: Template = Template::text(
    "enqueue",
    "
WITH input AS MATERIALIZED (
    SELECT nextval('__SCHEMA__.jobs_id_seq') AS id,
           nextval('__SCHEMA__.job_positions') AS position,
           i.*
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[],
                $7::text[], $8::text[], $9::text[], $10::jsonb[], $13::smallint[])
         WITH ORDINALITY AS i(name, queue, args, state, run_at, parent_id, continue_on,
                              recurring_id, reason, data, priority, ord)
),
inserted AS (
    INSERT INTO __SCHEMA__.jobs (id, position, name, queue, args, state, created_at, state_at,
                                 enqueued_at, run_at, parent_id, continue_on, recurring_id,
                                 created_enqueued, priority)
    SELECT id, position, name, queue, args, state, $11, $11, $11, run_at, parent_id,
           continue_on, recurring_id, data IS NULL, priority
    FROM input
),
history AS (
    INSERT INTO __SCHEMA__.job_history (job_id, state, at, reason, data)
    SELECT id, state, $11, reason, data FROM input WHERE data IS NOT NULL
),
notified AS (
    SELECT pg_notify($12, '')
    FROM (SELECT 1 FROM input WHERE state = 'enqueued' AND $12::text IS NOT NULL LIMIT 1) AS found
)
SELECT id FROM input WHERE (SELECT count(*) FROM notified) >= 0 ORDER BY ord",
);

/// [`ENQUEUE`] for a call with unique or gated jobs: the same insert, with each job's unique key
/// (`$14`), its unique window in milliseconds (`$15`), its mutex key (`$16`) and whether it is
/// gated (`$17`). The jobs whose key is held (`unique_holders`, migration 0010: it locks each
/// key first, so concurrent enqueues of one key create one job) are left out of `input`, and
/// come back as duplicates with their holder's id: the rows are `(id, key, duplicate)`, the
/// created jobs in input order, then the holders. Built from `ENQUEUE`'s text, so the two
/// cannot differ in anything else; a plain enqueue keeps its own statement.
pub(crate) const ENQUEUE_FLOW: Template = Template::built("enqueue flow", enqueue_flow_sql);

fn enqueue_flow_sql() -> String {
    let Some(sql) = ENQUEUE.written() else {
        unreachable!("ENQUEUE is written out");
    };
    let replace = |sql: String, from: &str, to: &str| {
        assert!(sql.contains(from), "ENQUEUE has `{from}`");
        sql.replacen(from, to, 1)
    };
    let sql = replace(
        sql.to_owned(),
        "WITH input AS MATERIALIZED (",
        "WITH held AS MATERIALIZED (
    SELECT * FROM __SCHEMA__.unique_holders($14::text[], $15::bigint[], $11)
),
input AS MATERIALIZED (",
    );
    let sql = replace(
        sql,
        "$13::smallint[])",
        "$13::smallint[],
                $14::text[], $16::text[], $17::boolean[])",
    );
    let sql = replace(
        sql,
        "recurring_id, reason, data, priority, ord)",
        "recurring_id, reason, data, priority, unique_key, mutex,
                              gated, ord)
    WHERE i.unique_key IS NULL
       OR NOT EXISTS (SELECT 1 FROM held WHERE held.key = i.unique_key)",
    );
    let sql = replace(
        sql,
        "created_enqueued, priority)",
        "created_enqueued, priority, unique_key, mutex, gated)",
    );
    let sql = replace(
        sql,
        "data IS NULL, priority\n",
        "data IS NULL, priority, unique_key, mutex, gated\n",
    );
    replace(
        sql,
        "SELECT id FROM input WHERE (SELECT count(*) FROM notified) >= 0 ORDER BY ord",
        "SELECT id, key, duplicate FROM (
    SELECT id, unique_key AS key, false AS duplicate, ord FROM input
    WHERE (SELECT count(*) FROM notified) >= 0
    UNION ALL
    SELECT id, key, true, NULL FROM held
) AS answers ORDER BY duplicate, ord",
    )
}

/// Locks the parents of continuations about to be created (`FOR SHARE`: a parent cannot finish
/// until the children are committed, so the release that follows its finish sees them).
pub(crate) const LOCK_PARENTS: Template = Template::text(
    "lock parents",
    "
SELECT id FROM __SCHEMA__.jobs WHERE id = ANY($1::bigint[]) ORDER BY id FOR SHARE",
);

pub(crate) fn to_json(data: &StateData) -> Result<serde_json::Value> {
    Ok(serde_json::to_value(data)?)
}

impl Database {
    /// Creates jobs through `db` (autocommit, or inside a transaction when continuations need
    /// their parents locked). Continuations of finished parents are released at once.
    pub(crate) async fn insert(
        &self,
        db: &Db<'_>,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
        channel: Option<&str>,
    ) -> Result<Vec<Enqueued>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        for job in &jobs {
            jobs::validate_queue(&job.queue)?;
        }
        if let Some(limit) = self.max_payload_bytes {
            if let Some(job) = jobs.iter().find(|job| job.args.len() > limit) {
                return Err(PostgresError::PayloadTooLarge {
                    name: job.name.clone(),
                    size: job.args.len(),
                    limit,
                }
                .into());
            }
        }
        let mut parents: Vec<i64> = Vec::new();
        for job in &jobs {
            if let InitialState::Awaiting { parent, .. } = job.initial {
                if !parents.contains(&parent.0) {
                    parents.push(parent.0);
                }
            }
        }
        if !parents.is_empty() {
            let statement = db
                .prepare("enqueue", &self.statement(&LOCK_PARENTS))
                .await?;
            let rows = db
                .client
                .query(&statement, &[&parents])
                .await
                .map_err(|e| self.error("enqueue", e))?;
            let mut found = HashSet::new();
            for row in &rows {
                let id: i64 = row::column(row, "id", &|| "a parent job".to_owned())?;
                found.insert(id);
            }
            if let Some(missing) = parents.iter().find(|parent| !found.contains(parent)) {
                return Err(Error::ParentNotFound(JobId(*missing)));
            }
        }
        // A job whose key an earlier job of this call has is that job's duplicate: it is not
        // sent (`answer_of` points at the earlier one).
        let mut answer_of: Vec<Option<usize>> = vec![None; jobs.len()];
        for (index, job) in jobs.iter().enumerate() {
            if let Some(unique) = &job.unique {
                if unique.key.len() > jobs::MAX_UNIQUE_KEY_BYTES || unique.key.is_empty() {
                    return Err(jobs::Uniqueness::explicit(unique.key.clone(), None)
                        .err()
                        .unwrap_or_else(|| Error::storage("invalid unique key")));
                }
                answer_of[index] = jobs[..index].iter().position(|earlier| {
                    earlier.unique.as_ref().map(|u| &u.key) == Some(&unique.key)
                });
            }
        }
        let flow = jobs.iter().any(|job| job.unique.is_some() || job.gated());
        let sent: Vec<&NewJob> = jobs
            .iter()
            .zip(&answer_of)
            .filter(|(_, earlier)| earlier.is_none())
            .map(|(job, _)| job)
            .collect();
        let mut names = Vec::with_capacity(sent.len());
        let mut queues = Vec::with_capacity(sent.len());
        let mut args = Vec::with_capacity(sent.len());
        let mut states = Vec::with_capacity(sent.len());
        let mut run_ats: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(sent.len());
        let mut parent_ids: Vec<Option<i64>> = Vec::with_capacity(sent.len());
        let mut conditions: Vec<Option<&str>> = Vec::with_capacity(sent.len());
        let mut recurring_ids: Vec<Option<&str>> = Vec::with_capacity(sent.len());
        let mut reasons: Vec<Option<String>> = Vec::with_capacity(sent.len());
        let mut data = Vec::with_capacity(sent.len());
        let mut priorities: Vec<i16> = Vec::with_capacity(sent.len());
        for job in &sent {
            // Created Enqueued with no reason: the entry is the row itself, its data NULL (see
            // ENQUEUE); otherwise a history row with the entry `MemoryStorage` records.
            let plain = matches!(job.initial, InitialState::Enqueued) && job.recurring.is_none();
            let (state, reason, entry) = if plain {
                (JobState::Enqueued, None, None)
            } else {
                let (state, reason, entry) = job.first_entry();
                (state, reason, Some(to_json(&entry)?))
            };
            names.push(job.name.as_str());
            queues.push(job.queue.as_str());
            args.push(job.args.as_str());
            states.push(state.as_str());
            run_ats.push(match job.initial {
                InitialState::Scheduled { at } => Some(ts(at)),
                _ => None,
            });
            let (parent, condition) = match job.initial {
                InitialState::Awaiting { parent, on } => {
                    (Some(parent.0), Some(row::continue_on_to_sql(on)))
                }
                _ => (None, None),
            };
            parent_ids.push(parent);
            conditions.push(condition);
            recurring_ids.push(job.recurring.as_ref().map(|origin| origin.id.as_str()));
            reasons.push(reason);
            data.push(entry);
            priorities.push(i16::from(job.priority));
        }
        let now = ts(now);
        let params: [&(dyn ToSql + Sync); 13] = [
            &names,
            &queues,
            &args,
            &states,
            &run_ats,
            &parent_ids,
            &conditions,
            &recurring_ids,
            &reasons,
            &data,
            &now,
            &channel,
            &priorities,
        ];
        let answers = if flow {
            let keys: Vec<Option<&str>> = sent
                .iter()
                .map(|job| job.unique.as_ref().map(|unique| unique.key.as_str()))
                .collect();
            let windows: Vec<Option<i64>> = sent
                .iter()
                .map(|job| {
                    job.unique
                        .as_ref()
                        .and_then(|unique| unique.window)
                        .map(|window| i64::try_from(window.as_millis()).unwrap_or(i64::MAX))
                })
                .collect();
            let mutexes: Vec<Option<&str>> = sent.iter().map(|job| job.mutex.as_deref()).collect();
            let gated: Vec<bool> = sent.iter().map(|job| job.gated()).collect();
            let statement = db
                .prepare("enqueue", &self.statement(&ENQUEUE_FLOW))
                .await?;
            let mut all: Vec<&(dyn ToSql + Sync)> = params.to_vec();
            all.extend([&keys as &(dyn ToSql + Sync), &windows, &mutexes, &gated]);
            let rows = db
                .client
                .query(&statement, &all)
                .await
                .map_err(|e| self.error("enqueue", e))?;
            flow_answers(&rows, &sent)?
        } else {
            let statement = db.prepare("enqueue", &self.statement(&ENQUEUE)).await?;
            let rows = db
                .client
                .query(&statement, &params)
                .await
                .map_err(|e| self.error("enqueue", e))?;
            rows.iter()
                .map(|row| {
                    row::column::<i64>(row, "id", &|| "an enqueued job".to_owned())
                        .map(|id| Enqueued::created(JobId(id)))
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        if answers.len() != sent.len() {
            return Err(Error::storage(format!(
                "enqueue answered {} jobs of {}",
                answers.len(),
                sent.len()
            )));
        }
        let mut answers = answers.into_iter();
        let mut all: Vec<Enqueued> = Vec::with_capacity(jobs.len());
        for earlier in &answer_of {
            let answer = match earlier {
                Some(index) => Enqueued {
                    duplicate: true,
                    ..all[*index]
                },
                None => answers
                    .next()
                    .ok_or_else(|| Error::storage("enqueue answered too few jobs"))?,
            };
            all.push(answer);
        }
        if !parents.is_empty() {
            self.release(db, &parents, now).await?;
        }
        Ok(all)
    }
}

/// The answers of `ENQUEUE_FLOW` in the order of `sent`: each created job's id in turn, or
/// for a job whose key was held, the holder's id as a duplicate.
fn flow_answers(rows: &[tokio_postgres::Row], sent: &[&NewJob]) -> Result<Vec<Enqueued>> {
    let what = || "an enqueued job".to_owned();
    let mut created = Vec::new();
    let mut held: Vec<(String, JobId)> = Vec::new();
    for row in rows {
        let id = JobId(row::column::<i64>(row, "id", &what)?);
        if row::column::<bool>(row, "duplicate", &what)? {
            held.push((row::column(row, "key", &what)?, id));
        } else {
            created.push(id);
        }
    }
    let mut created = created.into_iter();
    sent.iter()
        .map(|job| {
            let holder = job.unique.as_ref().and_then(|unique| {
                held.iter()
                    .find(|(key, _)| *key == unique.key)
                    .map(|(_, id)| *id)
            });
            match holder {
                Some(id) => Ok(Enqueued {
                    id,
                    duplicate: true,
                }),
                None => created
                    .next()
                    .map(Enqueued::created)
                    .ok_or_else(|| Error::storage("enqueue answered too few jobs")),
            }
        })
        .collect()
}

/// [`Storage::enqueue`](jobs::Storage::enqueue) on PostgreSQL.
pub(crate) async fn enqueue(
    storage: &Database,
    jobs: Vec<NewJob>,
    now: DateTime<Utc>,
) -> Result<Vec<Enqueued>> {
    let continuations = jobs
        .iter()
        .any(|job| matches!(job.initial, InitialState::Awaiting { .. }));
    let enqueued = jobs
        .iter()
        .any(|job| matches!(job.initial, InitialState::Enqueued));
    let mut client = storage.client().await?;
    let ids = if continuations {
        // The parents are locked until the children are committed (see `LOCK_PARENTS`).
        let tx = client
            .transaction()
            .await
            .map_err(|e| storage.error("enqueue", e))?;
        let db = Db {
            client: tx.client(),
            cache: Some(&tx.statement_cache),
            storage,
        };
        let ids = storage
            .insert(&db, jobs, now, Some(&storage.channel))
            .await?;
        tx.commit().await.map_err(|e| storage.error("enqueue", e))?;
        ids
    } else {
        let db = storage.db(&client);
        // At most one NOTIFY per throttle window: a NOTIFY in every insert serialises
        // the commits of concurrent enqueuers. A skipped one is sent by the throttle at
        // the end of the window, so other processes still wake within it.
        let channel = (!enqueued || storage.throttle.notify_now(&storage.pool, &storage.channel))
            .then_some(storage.channel.as_str());
        storage.insert(&db, jobs, now, channel).await?
    };
    if enqueued || continuations {
        storage.wake();
    }
    Ok(ids)
}
