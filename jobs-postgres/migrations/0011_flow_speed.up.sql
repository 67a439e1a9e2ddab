-- Flow control, cheaper: unique keys held through an index, and the flow-controlled fetches
-- planned once per connection.
--
-- A unique key is held by one job at most among the non-final states, and this index says so:
-- an enqueue inserts with `ON CONFLICT DO NOTHING` instead of locking the key and looking for a
-- holder (which only a key with a time window, `unique_for`, still does, for the finished jobs
-- inside it). A job that comes back to a non-final state (requeued, or re-armed with its
-- parent) while another job holds its key comes back without the key (`sql/manual.rs`). Keys
-- held twice before this migration (a requeue could do that) stay with the oldest job.
UPDATE __SCHEMA__.jobs AS job SET unique_key = NULL
FROM (SELECT id, row_number() OVER (PARTITION BY unique_key ORDER BY id) AS n
      FROM __SCHEMA__.jobs
      WHERE unique_key IS NOT NULL
        AND state IN ('enqueued', 'scheduled', 'awaiting', 'processing')) AS extra
WHERE job.id = extra.id AND extra.n > 1;
CREATE UNIQUE INDEX jobs_unique_held_idx ON __SCHEMA__.jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('enqueued', 'scheduled', 'awaiting', 'processing');
-- What a job's history adds when it comes back without its key (`Uniqueness::released_note`).
CREATE FUNCTION __SCHEMA__.released_note(key text, holder bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT 'its unique key `' || key || '` is held by job ' || holder || ', so it runs without it'
$$;
-- The finished holders, for the windows: a key is in one of the two indexes at a time.
DROP INDEX __SCHEMA__.jobs_unique_idx;
CREATE INDEX jobs_unique_done_idx ON __SCHEMA__.jobs (unique_key, created_at)
    WHERE unique_key IS NOT NULL
      AND state NOT IN ('enqueued', 'scheduled', 'awaiting', 'processing');

-- `unique_holders` as in 0010, each key read through the index of its held states, then of
-- the finished jobs inside its window.
CREATE OR REPLACE FUNCTION __SCHEMA__.unique_holders(keys text[], windows_ms bigint[],
                                                     now timestamptz)
RETURNS TABLE (key text, id bigint)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    k text;
    i integer;
    holder bigint;
BEGIN
    -- Several keys are locked in one order (sorted, each once), so no two enqueues wait for
    -- each other.
    FOREACH k IN ARRAY CASE WHEN cardinality(keys) = 1 THEN keys
                            ELSE ARRAY(SELECT DISTINCT x FROM unnest(keys) AS x
                                       WHERE x IS NOT NULL ORDER BY x) END
    LOOP
        CONTINUE WHEN k IS NULL;
        PERFORM pg_advisory_xact_lock(hashtextextended('__SCHEMA__ unique ' || k, 0));
    END LOOP;
    FOR i IN 1 .. coalesce(cardinality(keys), 0) LOOP
        CONTINUE WHEN keys[i] IS NULL;
        SELECT job.id INTO holder
        FROM __SCHEMA__.jobs AS job
        WHERE job.unique_key = keys[i]
          AND job.state IN ('enqueued', 'scheduled', 'awaiting', 'processing');
        IF holder IS NULL AND windows_ms[i] IS NOT NULL THEN
            SELECT job.id INTO holder
            FROM __SCHEMA__.jobs AS job
            WHERE job.unique_key = keys[i]
              AND job.state NOT IN ('enqueued', 'scheduled', 'awaiting', 'processing')
              AND job.created_at > now - windows_ms[i] * interval '1 millisecond'
            ORDER BY job.id
            LIMIT 1;
        END IF;
        IF holder IS NOT NULL THEN
            key := keys[i];
            id := holder;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;

-- The flow-controlled fetches, planned once per connection.
--
-- A fetch statement's parameters (the fetch limit, the queue list) make PostgreSQL plan it
-- afresh on every call: its generic plan, costed for a limit of a tenth of the table, never
-- wins. For the limited fetch (eight CTEs) that planning took as long as running it. As a
-- PL/pgSQL function with `plan_cache_mode = force_generic_plan` it is planned once per
-- connection, as `fetch_flow`'s statements are from now on. The generic plans are the custom
-- ones: index scans in the fetch index's order, the claimed rows found by `ctid`. JIT is off
-- for them: a generic plan's cost, counted for a tenth of a large queue, passes
-- `jit_above_cost`, and compiling took a hundred times as long as running (100 ms at 1.6 million
-- Enqueued jobs).
--
-- `rate_left` and `rate_window` read `extract(epoch FROM timestamptz)`, which is STABLE: declared
-- IMMUTABLE they were not inlined, and each call ran as a query of its own.
ALTER FUNCTION __SCHEMA__.rate_left(integer, bigint, bigint, integer, timestamptz) STABLE;
ALTER FUNCTION __SCHEMA__.rate_window(bigint, timestamptz) STABLE;
ALTER FUNCTION __SCHEMA__.fetch_flow(text[], integer, text, timestamptz, timestamptz, integer)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION __SCHEMA__.fetch_flow(text[], integer, text, timestamptz, timestamptz, integer)
    SET jit = off;

-- The flow-controlled fetch of a server whose queues hold no gated job (`FetchRequest::gated`
-- false): queue limits and pauses only, in one statement.
--
-- It locks the settings rows of the served queues (so fetches of one limited queue take turns, with
-- `fetch_flow` too), then counts each queue's claims still running: while the claims recorded,
-- stale ones included, and this fetch's limit fit under the concurrency limit, none needs looking
-- at; when they no longer fit, the oldest are looked at until enough stale ones are dropped to make
-- room (a count that stays too high only makes a fetch take less). The statement reads with the
-- snapshot it took before it waited for the lock, so a claim made by a transaction that snapshot
-- does not see is counted as running without looking at its job (`pg_visible_in_snapshot` of the
-- claim's transaction); any other claim runs while its job is Processing since that claim. Then it
-- claims each queue's head up to its budget (the concurrency left, the rate window's starts left,
-- nothing for a paused queue), skipping gated jobs as the plain fetch (`sql/fetch.rs`) does, and
-- writes the queues' claims and rate windows back.
CREATE FUNCTION __SCHEMA__.fetch_limited(queues text[], lim bigint, server text,
                                         now timestamptz, lease timestamptz)
RETURNS TABLE (id bigint, name text, queue text, args text, retry_count integer,
               created_at timestamptz, enqueued_at timestamptz, parent_id bigint,
               parent_result jsonb)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH settings AS MATERIALIZED (
        SELECT s.queue, s.paused, s.concurrency, s.rate_count, s.rate_period_ms,
               s.rate_window, s.rate_used, s.claims, s.claims_at, s.claims_xid
        FROM __SCHEMA__.queue_settings AS s
        WHERE s.queue = ANY (queues)
        ORDER BY s.queue
        FOR NO KEY UPDATE
    ),
    live AS MATERIALIZED (
        SELECT s.queue,
               CASE WHEN cardinality(stale.ords) = 0 THEN s.claims
                    ELSE ARRAY(SELECT c.id FROM unnest(s.claims) WITH ORDINALITY AS c(id, ord)
                               WHERE c.ord <> ALL (stale.ords) ORDER BY c.ord) END AS ids,
               CASE WHEN cardinality(stale.ords) = 0 THEN s.claims_at
                    ELSE ARRAY(SELECT c.at FROM unnest(s.claims_at) WITH ORDINALITY AS c(at, ord)
                               WHERE c.ord <> ALL (stale.ords) ORDER BY c.ord) END AS ats,
               CASE WHEN cardinality(stale.ords) = 0 THEN s.claims_xid
                    ELSE ARRAY(SELECT c.xid FROM unnest(s.claims_xid) WITH ORDINALITY AS c(xid, ord)
                               WHERE c.ord <> ALL (stale.ords) ORDER BY c.ord) END AS xids
        FROM settings AS s
        CROSS JOIN LATERAL (
            -- The oldest claims that no longer run, as many as this fetch needs room for (none
            -- while the claims and this fetch's limit fit): each one primary key lookup, in
            -- claim order, until enough are found.
            SELECT coalesce(array_agg(c.ord), '{}') AS ords
            FROM (
                SELECT c.ord
                FROM unnest(s.claims, s.claims_at, s.claims_xid)
                    WITH ORDINALITY AS c(id, at, xid, ord)
                WHERE pg_visible_in_snapshot(c.xid, pg_current_snapshot())
                  AND (SELECT job.state = 'processing' AND job.state_at = c.at
                       FROM __SCHEMA__.jobs AS job WHERE job.id = c.id) IS NOT TRUE
                LIMIT greatest(cardinality(s.claims) + lim - s.concurrency, 0)
            ) AS c
        ) AS stale
        WHERE s.concurrency IS NOT NULL
    ),
    budget AS MATERIALIZED (
        SELECT queue_list.name, queue_list.rank,
               CASE WHEN s.queue IS NULL THEN lim
                    WHEN s.paused THEN 0
                    ELSE greatest(0, least(
                        lim,
                        s.concurrency - coalesce(cardinality(live.ids), 0),
                        __SCHEMA__.rate_left(s.rate_count, s.rate_period_ms, s.rate_window,
                                             s.rate_used, now)))
               END AS n
        FROM unnest(queues) WITH ORDINALITY AS queue_list(name, rank)
        LEFT JOIN settings AS s ON s.queue = queue_list.name
        LEFT JOIN live ON live.queue = queue_list.name
    ),
    picked AS MATERIALIZED (
        SELECT job.ctid
        FROM budget
        CROSS JOIN LATERAL (
            SELECT ctid, priority, position
            FROM __SCHEMA__.jobs
            WHERE state = 'enqueued' AND queue = budget.name AND NOT gated
            ORDER BY priority, position
            LIMIT budget.n
            FOR NO KEY UPDATE SKIP LOCKED
        ) AS job
        WHERE budget.n > 0
        ORDER BY budget.rank, job.priority, job.position
        LIMIT lim
    ),
    claimed AS (
        UPDATE __SCHEMA__.jobs AS job
        SET state = 'processing', state_at = now, server_id = server, lease_until = lease, run_at = NULL
        WHERE job.ctid = ANY (ARRAY(SELECT ctid FROM picked))
        RETURNING job.id, job.name, job.queue, job.args, job.retry_count, job.created_at,
                  job.enqueued_at, job.parent_id, job.parent_result,
                  array_position(queues, job.queue) AS rank, job.priority, job.position
    ),
    taken AS MATERIALIZED (
        SELECT settings.queue, cardinality(ids.ids) AS n,
               coalesce(live.ids, '{}') || ids.ids AS claims,
               coalesce(live.ats, '{}') || array_fill(now, ARRAY[cardinality(ids.ids)])
                   AS claims_at,
               coalesce(live.xids, '{}') || array_fill(pg_current_xact_id(),
                                                       ARRAY[cardinality(ids.ids)]) AS claims_xid
        FROM (SELECT c.queue, array_agg(c.id ORDER BY c.rank, c.priority, c.position) AS ids
              FROM claimed AS c GROUP BY c.queue) AS ids
        JOIN settings ON settings.queue = ids.queue
        LEFT JOIN live ON live.queue = ids.queue
        WHERE settings.concurrency IS NOT NULL OR settings.rate_count IS NOT NULL
    ),
    saved AS (
        UPDATE __SCHEMA__.queue_settings AS s
        SET rate_used = CASE
                WHEN s.rate_count IS NULL THEN 0
                WHEN s.rate_window = __SCHEMA__.rate_window(s.rate_period_ms, now)
                    THEN s.rate_used + taken.n
                ELSE taken.n END,
            rate_window = CASE WHEN s.rate_count IS NOT NULL
                               THEN __SCHEMA__.rate_window(s.rate_period_ms, now) END,
            claims = CASE WHEN s.concurrency IS NULL THEN '{}' ELSE taken.claims END,
            claims_at = CASE WHEN s.concurrency IS NULL THEN '{}' ELSE taken.claims_at END,
            claims_xid = CASE WHEN s.concurrency IS NULL THEN '{}' ELSE taken.claims_xid END
        FROM taken
        -- By the queue, not by the `ctid` the lock returned: a row updated meanwhile by the fetch
        -- this one waited for has moved.
        WHERE s.queue = taken.queue
    )
    SELECT id, name, queue, args, retry_count, created_at, enqueued_at, parent_id, parent_result
    FROM claimed ORDER BY rank, priority, position;
END
$$;
