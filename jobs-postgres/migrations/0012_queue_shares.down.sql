-- Queue shares go: every limited fetch counts claims again.
DROP FUNCTION __SCHEMA__.set_queue_limits(text, integer, integer, bigint, timestamptz, text);
DROP FUNCTION __SCHEMA__.set_queue_paused(text, boolean, timestamptz, text);
DROP FUNCTION __SCHEMA__.settle_queue(text, timestamptz);
DROP FUNCTION __SCHEMA__.reserve_shares(text[], text, integer, timestamptz, timestamptz);
DROP FUNCTION __SCHEMA__.release_shares(text, text[], timestamptz);
CREATE OR REPLACE FUNCTION __SCHEMA__.fetch_limited(queues text[], lim bigint, server text,
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

CREATE OR REPLACE FUNCTION __SCHEMA__.fetch_flow(queues text[], lim integer, server text,
                                      now timestamptz, lease timestamptz, scan integer)
RETURNS TABLE (id bigint, name text, queue text, args text, retry_count integer,
               created_at timestamptz, enqueued_at timestamptz, parent_id bigint,
               parent_result jsonb)
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $$
DECLARE
    q text;
    settings record;
    candidate record;
    kind record;
    queue_left bigint;
    queue_taken integer;
    held text[];
    running_kinds jsonb;
    live_ids bigint[];
    live_ats timestamptz[];
    live_xids xid8[];
    queue_ids bigint[];
    kinds jsonb := '{}';
    budget jsonb;
    reason text;
    picked_ids bigint[] := '{}';
    picked_tids tid[] := '{}';
    tids tid[];
    ids bigint[];
    started jsonb := '{}';
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('__SCHEMA__ fetch_flow', 0));
    FOREACH q IN ARRAY queues LOOP
        EXIT WHEN cardinality(picked_ids) >= lim;
        -- Locked: a fetch by FETCH_LIMITED (one statement, `sql/flow.rs`) takes its turn on
        -- the same rows.
        SELECT s.* INTO settings FROM __SCHEMA__.queue_settings AS s WHERE s.queue = q
        FOR NO KEY UPDATE;
        queue_left := NULL;
        IF FOUND THEN
            CONTINUE WHEN settings.paused;
            IF settings.concurrency IS NOT NULL THEN
                -- The claims still running: one primary key lookup each, once the claims
                -- recorded (stale ones included) and this fetch's limit no longer fit under
                -- the limit; until then none needs looking at.
                SELECT coalesce(array_agg(c.id ORDER BY c.ord), '{}'),
                       coalesce(array_agg(c.at ORDER BY c.ord), '{}'),
                       coalesce(array_agg(c.xid ORDER BY c.ord), '{}')
                INTO live_ids, live_ats, live_xids
                FROM unnest(settings.claims, settings.claims_at, settings.claims_xid)
                     WITH ORDINALITY AS c(id, at, xid, ord)
                WHERE cardinality(settings.claims) + lim <= settings.concurrency
                   OR EXISTS (SELECT 1 FROM __SCHEMA__.jobs AS job
                              WHERE job.id = c.id AND job.state = 'processing'
                                AND job.state_at = c.at);
                queue_left := settings.concurrency - cardinality(live_ids);
            END IF;
            IF settings.rate_count IS NOT NULL THEN
                queue_left := least(coalesce(queue_left, 2147483647), __SCHEMA__.rate_left(
                    settings.rate_count, settings.rate_period_ms, settings.rate_window,
                    settings.rate_used, now));
            END IF;
        END IF;
        CONTINUE WHEN queue_left <= 0;
        queue_taken := 0;
        queue_ids := '{}';
        IF NOT EXISTS (SELECT 1 FROM __SCHEMA__.jobs AS job
                       WHERE job.state = 'enqueued' AND job.gated AND job.queue = q) THEN
            -- No gated job waits in this queue: only its own budget decides, so its head is
            -- claimed as the plain fetch claims it, in one statement.
            SELECT coalesce(array_agg(head.tid ORDER BY head.priority, head.position), '{}'),
                   coalesce(array_agg(head.id ORDER BY head.priority, head.position), '{}')
            INTO tids, ids
            FROM (
                SELECT job.ctid AS tid, job.id, job.priority, job.position
                FROM __SCHEMA__.jobs AS job
                WHERE job.state = 'enqueued' AND job.queue = q AND NOT job.gated
                ORDER BY job.priority, job.position
                LIMIT least(lim - cardinality(picked_ids), coalesce(queue_left, lim))
                FOR NO KEY UPDATE SKIP LOCKED
            ) AS head;
            picked_tids := picked_tids || tids;
            picked_ids := picked_ids || ids;
            queue_ids := ids;
            queue_taken := cardinality(ids);
        ELSE
        IF held IS NULL THEN
            -- One primary key lookup per claim (a scalar subquery, so the planner cannot turn
            -- it into a join reading every Processing job's index entry).
            DELETE FROM __SCHEMA__.flow_claims AS claim
            WHERE (SELECT job.state = 'processing' AND job.state_at = claim.claimed_at
                   FROM __SCHEMA__.jobs AS job WHERE job.id = claim.job_id) IS NOT TRUE;
            SELECT coalesce(array_agg(claim.mutex) FILTER (WHERE claim.mutex IS NOT NULL), '{}'),
                   coalesce((SELECT jsonb_object_agg(c.name, c.n) FROM (
                       SELECT claim.name, count(*) AS n FROM __SCHEMA__.flow_claims AS claim
                       GROUP BY claim.name) AS c), '{}')
            INTO held, running_kinds
            FROM __SCHEMA__.flow_claims AS claim;
            FOR kind IN
                SELECT l.name, l.concurrency,
                       __SCHEMA__.rate_left(l.rate_count, l.rate_period_ms, l.rate_window,
                                            l.rate_used, now) AS rate_left
                FROM __SCHEMA__.job_limits AS l
            LOOP
                kinds := kinds || jsonb_build_object(kind.name, jsonb_build_object(
                    'limit', kind.concurrency,
                    'left', kind.concurrency - coalesce((running_kinds ->> kind.name)::bigint, 0),
                    'rate', kind.rate_left));
            END LOOP;
        END IF;
        FOR candidate IN
            SELECT job.ctid AS tid, job.id, job.name, job.mutex, job.waiting
            FROM __SCHEMA__.jobs AS job
            WHERE job.state = 'enqueued' AND job.queue = q
            ORDER BY job.priority, job.position
            LIMIT scan
            FOR NO KEY UPDATE SKIP LOCKED
        LOOP
            EXIT WHEN cardinality(picked_ids) >= lim OR queue_left <= 0;
            reason := NULL;
            budget := kinds -> candidate.name;
            IF candidate.mutex IS NOT NULL AND candidate.mutex = ANY (held) THEN
                reason := format('waiting: mutex `%s` is held by another job', candidate.mutex);
            ELSIF (budget ->> 'left')::bigint <= 0 THEN
                reason := format('waiting: `%s` is at its concurrency limit of %s',
                                 candidate.name, budget ->> 'limit');
            ELSIF (budget ->> 'rate')::bigint <= 0 THEN
                reason := format('waiting: `%s` reached its rate limit', candidate.name);
            END IF;
            IF reason IS NULL THEN
                picked_ids := picked_ids || candidate.id;
                picked_tids := picked_tids || candidate.tid;
                queue_ids := queue_ids || candidate.id;
                queue_left := queue_left - 1;
                queue_taken := queue_taken + 1;
                IF candidate.mutex IS NOT NULL THEN
                    held := held || candidate.mutex;
                END IF;
                IF budget IS NOT NULL THEN
                    kinds := jsonb_set(kinds, ARRAY[candidate.name], jsonb_build_object(
                        'limit', budget -> 'limit',
                        'left', (budget ->> 'left')::bigint - 1,
                        'rate', (budget ->> 'rate')::bigint - 1));
                    started := jsonb_set(started, ARRAY[candidate.name],
                        to_jsonb(coalesce((started ->> candidate.name)::integer, 0) + 1));
                END IF;
            ELSIF candidate.waiting IS DISTINCT FROM reason THEN
                UPDATE __SCHEMA__.jobs SET waiting = reason WHERE ctid = candidate.tid;
                INSERT INTO __SCHEMA__.job_history (job_id, state, at, reason, data)
                VALUES (candidate.id, 'enqueued', now, reason,
                        __SCHEMA__.enqueued_data(q, NULL));
            END IF;
        END LOOP;
        END IF;
        IF queue_taken > 0 AND (settings.rate_count IS NOT NULL
                                OR settings.concurrency IS NOT NULL) THEN
            UPDATE __SCHEMA__.queue_settings AS s
            SET rate_used = CASE
                    WHEN s.rate_count IS NULL THEN 0
                    WHEN s.rate_window = __SCHEMA__.rate_window(s.rate_period_ms, now)
                        THEN s.rate_used + queue_taken
                    ELSE queue_taken END,
                rate_window = CASE WHEN s.rate_count IS NOT NULL
                                   THEN __SCHEMA__.rate_window(s.rate_period_ms, now) END,
                claims = CASE WHEN s.concurrency IS NULL THEN '{}' ELSE live_ids || queue_ids END,
                claims_at = CASE WHEN s.concurrency IS NULL THEN '{}'
                                 ELSE live_ats || array_fill(now, ARRAY[queue_taken]) END,
                claims_xid = CASE WHEN s.concurrency IS NULL THEN '{}'
                                  ELSE live_xids
                                       || array_fill(pg_current_xact_id(), ARRAY[queue_taken]) END
            WHERE s.queue = q;
        END IF;
    END LOOP;

    IF started <> '{}' THEN
        UPDATE __SCHEMA__.job_limits AS l
        SET rate_used = CASE WHEN l.rate_window = __SCHEMA__.rate_window(l.rate_period_ms, now)
                             THEN l.rate_used + counted.n ELSE counted.n END,
            rate_window = __SCHEMA__.rate_window(l.rate_period_ms, now)
        FROM (SELECT key AS name, value::integer AS n FROM jsonb_each_text(started)) AS counted
        WHERE l.name = counted.name AND l.rate_count IS NOT NULL;
    END IF;

    RETURN QUERY
    WITH claimed AS (
        UPDATE __SCHEMA__.jobs AS job
        SET state = 'processing', state_at = now, server_id = server, lease_until = lease,
            run_at = NULL, waiting = NULL
        WHERE job.ctid = ANY (picked_tids)
        RETURNING job.id, job.name, job.queue, job.args, job.retry_count, job.created_at,
                  job.enqueued_at, job.parent_id, job.parent_result, job.mutex, job.gated
    ),
    noted AS (
        INSERT INTO __SCHEMA__.flow_claims (job_id, queue, name, mutex, claimed_at)
        SELECT c.id, c.queue, c.name, c.mutex, now FROM claimed AS c WHERE c.gated
        ON CONFLICT (job_id) DO UPDATE SET claimed_at = excluded.claimed_at
    )
    SELECT c.id, c.name, c.queue, c.args, c.retry_count, c.created_at, c.enqueued_at,
           c.parent_id, c.parent_result
    FROM claimed AS c
    ORDER BY array_position(picked_ids, c.id);
END
$$;
DROP FUNCTION __SCHEMA__.rebuild_claims(text, timestamptz);
DROP TABLE __SCHEMA__.queue_shares;
