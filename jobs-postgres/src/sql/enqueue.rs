//! Creating jobs: the insert every enqueue path shares (autocommit, in a transaction with the parents locked, or in the caller's transaction) and each new job's first history entry.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use jobs::storage::{InitialState, NewJob, StateData};
use jobs::{Enqueued, Error, JobId, JobState, Result};
use tokio_postgres::types::ToSql;

use super::{ts, HELD_STATES};
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
/// (`$14`), its mutex key (`$15`) and whether it is gated (`$16`).
///
/// A key is held by one job at most among the non-final states (the unique index
/// `jobs_unique_held_idx`, migration 0011), so a job whose key is held is not inserted
/// (`ON CONFLICT DO NOTHING`; a concurrent enqueue of the key waits for the other to commit or
/// roll back). The rows are `(id, key, created)`, one per inserted job (`created`), in no
/// particular order: a job with a key and no row was not inserted because its key is held,
/// and its holder, committed by another transaction after this statement's snapshot, is read
/// by [`HOLDERS`]. Built from `ENQUEUE`'s text, so the two cannot differ in anything else; a
/// plain enqueue keeps its own statement, and this one reads nothing a call without windows
/// does not need (see [`ENQUEUE_WINDOWED`]).
pub(crate) const ENQUEUE_FLOW: Template =
    Template::built("enqueue flow", || enqueue_flow_sql(false));

/// [`ENQUEUE_FLOW`] for a call where some unique key has a window (`unique_for`), given in
/// milliseconds (`$17`) with the key again (`$18`) where it has one. Such a key is also held by
/// the finished jobs created inside its window: those keys are locked and looked up first
/// (`unique_holders`, migration 0010: it locks each key, then reads with a fresh snapshot, so
/// concurrent enqueues of one key create one job), their jobs are left out of `input`, and each
/// holder is answered as a row with `created` false.
pub(crate) const ENQUEUE_WINDOWED: Template =
    Template::built("enqueue windowed", || enqueue_flow_sql(true));

/// How many times an enqueue tries a job whose key's holder keeps finishing under it.
const MAX_ENQUEUE_ATTEMPTS: u32 = 3;

fn enqueue_flow_sql(windowed: bool) -> String {
    let Some(sql) = ENQUEUE.written() else {
        unreachable!("ENQUEUE is written out");
    };
    let replace = |sql: String, from: &str, to: &str| {
        assert!(sql.contains(from), "ENQUEUE has `{from}`");
        sql.replacen(from, to, 1)
    };
    let mut sql = replace(
        sql.to_owned(),
        "$13::smallint[])",
        "$13::smallint[],
                $14::text[], $15::text[], $16::boolean[])",
    );
    sql = replace(
        sql,
        "recurring_id, reason, data, priority, ord)",
        "recurring_id, reason, data, priority, unique_key, mutex,
                              gated, ord)",
    );
    sql = replace(
        sql,
        "created_enqueued, priority)",
        "created_enqueued, priority, unique_key, mutex, gated)",
    );
    sql = replace(
        sql,
        "data IS NULL, priority
    FROM input
",
        &format!(
            "data IS NULL, priority, unique_key, mutex, gated
    FROM input
    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN {HELD_STATES} DO NOTHING
    RETURNING id, state, unique_key
"
        ),
    );
    sql = replace(
        sql,
        "FROM input WHERE data IS NOT NULL",
        "FROM input WHERE data IS NOT NULL AND id IN (SELECT id FROM inserted)",
    );
    sql = replace(
        sql,
        "FROM (SELECT 1 FROM input WHERE state = 'enqueued'",
        "FROM (SELECT 1 FROM inserted WHERE state = 'enqueued'",
    );
    sql = replace(
        sql,
        "SELECT id FROM input WHERE (SELECT count(*) FROM notified) >= 0 ORDER BY ord",
        "SELECT id, unique_key AS key, true AS created FROM inserted
WHERE (SELECT count(*) FROM notified) >= 0",
    );
    if !windowed {
        return sql;
    }
    sql = replace(
        sql,
        "WITH input AS MATERIALIZED (",
        "WITH held AS MATERIALIZED (
    SELECT holder.*
    FROM (SELECT 1 WHERE EXISTS (SELECT 1 FROM unnest($18::text[]) AS k WHERE k IS NOT NULL))
        AS windowed
    CROSS JOIN LATERAL __SCHEMA__.unique_holders($18::text[], $17::bigint[], $11) AS holder
),
input AS MATERIALIZED (",
    );
    sql = replace(
        sql,
        "gated, ord)",
        "gated, ord)
    WHERE i.unique_key IS NULL
       OR NOT EXISTS (SELECT 1 FROM held WHERE held.key = i.unique_key)",
    );
    sql + "
UNION ALL
SELECT id, key, false FROM held"
}

/// The holders of unique keys among the non-final states (at most one each: the index
/// `jobs_unique_held_idx`), for the jobs `ENQUEUE_FLOW` did not insert.
pub(crate) const HOLDERS: Template = Template::built("unique holders", || {
    format!(
        "
SELECT unique_key AS key, id FROM __SCHEMA__.jobs
WHERE unique_key = ANY ($1::text[]) AND state IN {HELD_STATES}"
    )
});

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
        self.insert_attempt(db, jobs, now, channel, 1).await
    }

    /// [`Database::insert`], the `attempt`th time for these jobs (see `flow_answers`).
    async fn insert_attempt(
        &self,
        db: &Db<'_>,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
        channel: Option<&str>,
        attempt: u32,
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
            let windowed: Vec<Option<&str>> = keys
                .iter()
                .zip(&windows)
                .map(|(key, window)| window.and(*key))
                .collect();
            let mutexes: Vec<Option<&str>> = sent.iter().map(|job| job.mutex.as_deref()).collect();
            let gated: Vec<bool> = sent.iter().map(|job| job.gated()).collect();
            let with_window = windowed.iter().any(Option::is_some);
            let template = if with_window {
                &ENQUEUE_WINDOWED
            } else {
                &ENQUEUE_FLOW
            };
            let statement = db.prepare("enqueue", &self.statement(template)).await?;
            let mut all: Vec<&(dyn ToSql + Sync)> = params.to_vec();
            all.extend([&keys as &(dyn ToSql + Sync), &mutexes, &gated]);
            if with_window {
                all.extend([&windows as &(dyn ToSql + Sync), &windowed]);
            }
            let rows = db
                .client
                .query(&statement, &all)
                .await
                .map_err(|e| self.error("enqueue", e))?;
            self.flow_answers(db, &rows, &sent, now, channel, attempt)
                .await?
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

impl Database {
    /// The answers of [`ENQUEUE_FLOW`] (or [`ENQUEUE_WINDOWED`]) in the order of `sent`: each
    /// created job's id, or for a job whose key was held, the holder's id as a duplicate. A job
    /// not inserted because another transaction's job holds its key gets that holder, read now;
    /// if the holder has left the non-final states meanwhile, the job is enqueued again (a few
    /// times at most: each retry follows a holder that finished in between).
    async fn flow_answers(
        &self,
        db: &Db<'_>,
        rows: &[tokio_postgres::Row],
        sent: &[&NewJob],
        now: DateTime<Utc>,
        channel: Option<&str>,
        attempt: u32,
    ) -> Result<Vec<Enqueued>> {
        let what = || "an enqueued job".to_owned();
        let mut inserted: Vec<(i64, Option<String>)> = Vec::new();
        let mut held: Vec<(String, JobId)> = Vec::new();
        for row in rows {
            let id = row::column::<i64>(row, "id", &what)?;
            let key: Option<String> = row::column(row, "key", &what)?;
            match (row::column::<bool>(row, "created", &what)?, key) {
                (true, key) => inserted.push((id, key)),
                (false, Some(key)) => held.push((key, JobId(id))),
                (false, None) => {
                    return Err(Error::storage(format!(
                        "enqueue answered job {id} as the holder of no key"
                    )))
                }
            }
        }
        // Ids are drawn in input order, and the inserted jobs are those of `sent` that were
        // neither left out (their key's holder is in its window) nor taken (their key is
        // held): in id order, each is the next such job, and a job whose key is not the next
        // row's was taken. Keys are distinct within a call (see `answer_of`).
        inserted.sort_unstable_by_key(|(id, _)| *id);
        let mut next = inserted.iter().peekable();
        let mut created: Vec<Option<JobId>> = Vec::with_capacity(sent.len());
        let mut taken: Vec<String> = Vec::new();
        for job in sent {
            let key = job.unique.as_ref().map(|unique| unique.key.as_str());
            if key.is_some_and(|key| held.iter().any(|(holder, _)| holder == key)) {
                created.push(None);
            } else if let Some((id, _)) = next.next_if(|(_, row_key)| row_key.as_deref() == key) {
                created.push(Some(JobId(*id)));
            } else if let Some(key) = key {
                created.push(None);
                taken.push(key.to_owned());
            } else {
                return Err(Error::storage("enqueue answered too few jobs"));
            }
        }
        if next.next().is_some() {
            return Err(Error::storage(
                "enqueue answered more jobs than it was sent",
            ));
        }
        if !taken.is_empty() {
            let statement = db.prepare("enqueue", &self.statement(&HOLDERS)).await?;
            let rows = db
                .client
                .query(&statement, &[&taken])
                .await
                .map_err(|e| self.error("enqueue", e))?;
            for row in &rows {
                held.push((
                    row::column(row, "key", &what)?,
                    JobId(row::column::<i64>(row, "id", &what)?),
                ));
            }
        }
        let holder_of = |job: &NewJob| {
            job.unique.as_ref().and_then(|unique| {
                held.iter()
                    .find(|(key, _)| *key == unique.key)
                    .map(|(_, id)| *id)
            })
        };
        let mut answers: Vec<Option<Enqueued>> = Vec::with_capacity(sent.len());
        let mut again: Vec<NewJob> = Vec::new();
        for (job, created) in sent.iter().zip(created) {
            let answer = match created {
                Some(id) => Some(Enqueued::created(id)),
                None => holder_of(job).map(|id| Enqueued {
                    id,
                    duplicate: true,
                }),
            };
            if answer.is_none() {
                again.push((*job).clone());
            }
            answers.push(answer);
        }
        if !again.is_empty() {
            if attempt >= MAX_ENQUEUE_ATTEMPTS {
                return Err(Error::storage(format!(
                    "the unique keys of {} jobs changed holders {attempt} times while they were \
                     enqueued",
                    again.len()
                )));
            }
            let retried =
                Box::pin(self.insert_attempt(db, again, now, channel, attempt + 1)).await?;
            let mut retried = retried.into_iter();
            for answer in &mut answers {
                if answer.is_none() {
                    *answer = retried.next();
                }
            }
        }
        answers
            .into_iter()
            .map(|answer| answer.ok_or_else(|| Error::storage("enqueue answered too few jobs")))
            .collect()
    }
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
