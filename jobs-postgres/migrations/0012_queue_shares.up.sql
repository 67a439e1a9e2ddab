-- Flow control: queue shares.
--
-- A limited fetch (`fetch_limited`, `fetch_flow`) locks its queue's settings row, counts the
-- claims still running and writes them back: correct at any limit, and most of a fetch's cost
-- when the limits leave plenty of room. A server whose served queues all have room for
-- everything it can hold at once (its workers and buffer: its capacity) reserves that room
-- instead, as a share of each queue, and then fetches by the plain statement with one more
-- check (`FETCH_SHARED` in `sql/shares.rs`: its shares still stand), taking no lock on the
-- settings, counting no claim and writing nothing but the jobs. A share covers every job its
-- server runs, so a share's server needs no claim counted; the other fetches count a queue's
-- live shares as running. A rate limit is reserved the same way: a share takes a part of the
-- rate window's starts (at least four capacities' worth, or a quarter of what is left), and
-- its server spends them without asking again until they run out or the window ends.
--
-- A share lasts until `until`: the server's heartbeat renews it, and a crashed server's share
-- lapses as its jobs' leases do. Any change of a queue's settings (pause, resume, new limits)
-- ends the queue's shares (each server reserves again, under the new settings, before its next
-- fetch from it) and makes the queue's claims again from its Processing jobs; so does a
-- server leaving (`release_shares`).
CREATE TABLE __SCHEMA__.queue_shares (
    queue     text NOT NULL,
    server_id text NOT NULL,
    slots     integer NOT NULL CHECK (slots >= 1),
    until     timestamptz NOT NULL,
    -- How far a heartbeat pushes `until` (the server's lease).
    lease_ms  bigint NOT NULL CHECK (lease_ms >= 1),
    PRIMARY KEY (queue, server_id)
);

-- A queue's claims made again from its Processing jobs, but for those of servers holding a
-- live share of it (their shares cover them). Called with the queue's settings row locked, as
-- a statement of its own: its snapshot, taken after the lock, sees every fetch that lock
-- waited for.
CREATE FUNCTION __SCHEMA__.rebuild_claims(q text, now timestamptz) RETURNS void
LANGUAGE sql VOLATILE
AS $$
    UPDATE __SCHEMA__.queue_settings AS s
    SET claims = r.ids, claims_at = r.ats, claims_xid = r.xids
    FROM (SELECT coalesce(array_agg(job.id ORDER BY job.id), '{}') AS ids,
                 coalesce(array_agg(job.state_at ORDER BY job.id), '{}') AS ats,
                 coalesce(array_agg(pg_current_xact_id()), '{}') AS xids
          FROM __SCHEMA__.jobs AS job
          WHERE job.state = 'processing' AND job.queue = q
            AND NOT EXISTS (SELECT 1 FROM __SCHEMA__.queue_shares AS sh
                            WHERE sh.queue = q AND sh.server_id = job.server_id
                              AND sh.until > now)) AS r
    WHERE s.queue = q AND s.concurrency IS NOT NULL
$$;

-- Ends `server`'s shares of `queues` (all of its shares when NULL): its running jobs of those
-- queues become claims.
CREATE FUNCTION __SCHEMA__.release_shares(server text, queues text[], now timestamptz)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    held text[] := ARRAY(SELECT sh.queue FROM __SCHEMA__.queue_shares AS sh
                         WHERE sh.server_id = server
                           AND (queues IS NULL OR sh.queue = ANY (queues))
                         ORDER BY sh.queue);
    q text;
BEGIN
    IF cardinality(held) = 0 THEN
        RETURN;
    END IF;
    PERFORM 1 FROM __SCHEMA__.queue_settings AS s WHERE s.queue = ANY (held)
    ORDER BY s.queue FOR NO KEY UPDATE;
    DELETE FROM __SCHEMA__.queue_shares AS sh
    WHERE sh.server_id = server AND sh.queue = ANY (held);
    FOREACH q IN ARRAY held LOOP
        PERFORM __SCHEMA__.rebuild_claims(q, now);
    END LOOP;
END
$$;

-- Reserves for `server` a share of `want` slots (its capacity) of each of `queues` until
-- `until`, when every one of them has room for it: not paused, its concurrency limit (if any)
-- not counting fewer than `want` slots free beside the other servers' live shares and the live
-- claims of other servers' jobs, and its rate window (if any) holding at least four times
-- `want` starts. Returns one row per queue: the rate's period, the window and the starts
-- reserved in it (NULL for a queue without a rate). Returns nothing when a queue has no room,
-- and then ends the server's shares of these queues: it fetches by `fetch_limited`.
CREATE FUNCTION __SCHEMA__.reserve_shares(queues text[], server text, want integer,
                                          now timestamptz, until timestamptz)
RETURNS TABLE (queue text, rate_period_ms bigint, rate_window bigint, tokens bigint)
LANGUAGE plpgsql VOLATILE
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    served text[] := ARRAY(SELECT DISTINCT x FROM unnest(queues) AS x ORDER BY x);
    q text;
    s record;
    live bigint;
    others bigint;
    window_now bigint;
    take bigint;
BEGIN
    PERFORM 1 FROM __SCHEMA__.queue_settings AS qs WHERE qs.queue = ANY (served)
    ORDER BY qs.queue FOR NO KEY UPDATE;
    FOREACH q IN ARRAY served LOOP
        SELECT * INTO s FROM __SCHEMA__.queue_settings AS qs WHERE qs.queue = q;
        CONTINUE WHEN NOT FOUND;
        IF s.concurrency IS NOT NULL THEN
            others := (SELECT coalesce(sum(sh.slots), 0) FROM __SCHEMA__.queue_shares AS sh
                       WHERE sh.queue = q AND sh.server_id <> server AND sh.until > now);
            live := (SELECT count(*) FROM unnest(s.claims, s.claims_at) AS c(id, at)
                     WHERE EXISTS (SELECT 1 FROM __SCHEMA__.jobs AS job
                                   WHERE job.id = c.id AND job.state = 'processing'
                                     AND job.state_at = c.at AND job.server_id <> server));
        END IF;
        IF s.paused
           OR s.concurrency - live - others < want
           OR __SCHEMA__.rate_left(s.rate_count, s.rate_period_ms, s.rate_window, s.rate_used,
                                   now) < 4 * want THEN
            PERFORM __SCHEMA__.release_shares(server, served, now);
            RETURN;
        END IF;
    END LOOP;
    FOREACH q IN ARRAY served LOOP
        INSERT INTO __SCHEMA__.queue_shares AS sh (queue, server_id, slots, until, lease_ms)
        VALUES (q, server, want, until,
                greatest(1, (extract(epoch FROM until - now) * 1000)::bigint))
        ON CONFLICT ON CONSTRAINT queue_shares_pkey DO UPDATE
        SET slots = excluded.slots, until = excluded.until, lease_ms = excluded.lease_ms;
        SELECT * INTO s FROM __SCHEMA__.queue_settings AS qs WHERE qs.queue = q;
        queue := q;
        rate_period_ms := NULL;
        rate_window := NULL;
        tokens := NULL;
        IF FOUND AND s.rate_count IS NOT NULL THEN
            window_now := __SCHEMA__.rate_window(s.rate_period_ms, now);
            take := least(s.rate_count, greatest(4 * want, __SCHEMA__.rate_left(
                s.rate_count, s.rate_period_ms, s.rate_window, s.rate_used, now) / 4));
            UPDATE __SCHEMA__.queue_settings AS qs
            SET rate_used = CASE WHEN qs.rate_window = window_now
                                 THEN qs.rate_used + take ELSE take END,
                rate_window = window_now
            WHERE qs.queue = q;
            rate_period_ms := s.rate_period_ms;
            rate_window := window_now;
            tokens := take;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;

-- A queue's settings changed: its shares end and its claims are made again (see above). The
-- DELETE waits for the fetches under those shares (each holds its share row) to commit.
CREATE FUNCTION __SCHEMA__.settle_queue(q text, now timestamptz) RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    DELETE FROM __SCHEMA__.queue_shares WHERE queue = q;
    PERFORM __SCHEMA__.rebuild_claims(q, now);
END
$$;

-- Pauses or resumes a queue (its limits kept); a resumed queue wakes the servers.
CREATE FUNCTION __SCHEMA__.set_queue_paused(q text, p boolean, now timestamptz, channel text)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    INSERT INTO __SCHEMA__.queue_settings (queue, paused) VALUES (q, p)
    ON CONFLICT (queue) DO UPDATE SET paused = excluded.paused;
    PERFORM __SCHEMA__.settle_queue(q, now);
    IF NOT p THEN
        PERFORM pg_notify(channel, '');
    END IF;
END
$$;

-- Replaces a queue's limits (its paused state kept; the rate window restarts when the period
-- changes) and wakes the servers. The queue's running jobs become the claims its concurrency
-- limit counts.
CREATE FUNCTION __SCHEMA__.set_queue_limits(q text, c integer, rc integer, rp bigint,
                                            now timestamptz, channel text)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    INSERT INTO __SCHEMA__.queue_settings AS s (queue, concurrency, rate_count, rate_period_ms)
    VALUES (q, c, rc, rp)
    ON CONFLICT (queue) DO UPDATE
    SET concurrency = excluded.concurrency, rate_count = excluded.rate_count,
        rate_period_ms = excluded.rate_period_ms,
        rate_window = CASE WHEN s.rate_period_ms IS NOT DISTINCT FROM excluded.rate_period_ms
                           THEN s.rate_window END;
    PERFORM __SCHEMA__.settle_queue(q, now);
    PERFORM pg_notify(channel, '');
END
$$;

-- The limited fetches count the live shares of a queue as running (`shared`). `fetch_flow`
-- also reads `flow_claims` through its primary key only (`enable_seqscan = off`): the table
-- holds a few live rows among every claim made since its last vacuum (one row inserted and
-- deleted per gated job, thousands a second, and autovacuum comes once a minute), and a
-- sequential scan read all of them twice per fetch, while an index scan skips the dead ones
-- once it has marked them.
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
    -- The lock first, in a statement of its own: the query below then takes its snapshot
    -- after it, and sees every share and claim the fetch or reservation it waited for made.
    PERFORM 1 FROM __SCHEMA__.queue_settings AS s WHERE s.queue = ANY (queues)
    ORDER BY s.queue FOR NO KEY UPDATE;
    RETURN QUERY
    WITH settings AS MATERIALIZED (
        SELECT s.queue, s.paused, s.concurrency, s.rate_count, s.rate_period_ms,
               s.rate_window, s.rate_used, s.claims, s.claims_at, s.claims_xid,
               (SELECT coalesce(sum(sh.slots), 0) FROM __SCHEMA__.queue_shares AS sh
                WHERE sh.queue = s.queue AND sh.until > now) AS shared
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
                LIMIT greatest(cardinality(s.claims) + s.shared + lim - s.concurrency, 0)
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
                        s.concurrency - coalesce(cardinality(live.ids), 0) - s.shared,
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
SET enable_seqscan = off
AS $$
DECLARE
    q text;
    settings record;
    candidate record;
    kind record;
    queue_left bigint;
    shared bigint;
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
                -- The slots servers hold as shares (read after the lock: a share reserved
                -- meanwhile is seen).
                shared := (SELECT coalesce(sum(sh.slots), 0) FROM __SCHEMA__.queue_shares AS sh
                           WHERE sh.queue = q AND sh.until > now);
                -- The claims still running: one primary key lookup each, once the claims
                -- recorded (stale ones included) and this fetch's limit no longer fit under
                -- the limit; until then none needs looking at.
                SELECT coalesce(array_agg(c.id ORDER BY c.ord), '{}'),
                       coalesce(array_agg(c.at ORDER BY c.ord), '{}'),
                       coalesce(array_agg(c.xid ORDER BY c.ord), '{}')
                INTO live_ids, live_ats, live_xids
                FROM unnest(settings.claims, settings.claims_at, settings.claims_xid)
                     WITH ORDINALITY AS c(id, at, xid, ord)
                WHERE cardinality(settings.claims) + shared + lim <= settings.concurrency
                   OR EXISTS (SELECT 1 FROM __SCHEMA__.jobs AS job
                              WHERE job.id = c.id AND job.state = 'processing'
                                AND job.state_at = c.at);
                queue_left := settings.concurrency - cardinality(live_ids) - shared;
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
