-- Flow control: unique jobs, mutexes, job kind and queue limits, paused queues.
--
-- A job keeps its unique key and mutex key in its row. `gated` marks a job that only a
-- flow-controlled fetch may start (it has a mutex, or its kind has limits): the plain fetch
-- leaves it, so a server with no limits runs its statement unchanged but for that one filter.
-- `waiting` is the wait reason last recorded in the job's history, so each is recorded once.
ALTER TABLE __SCHEMA__.jobs
    ADD COLUMN unique_key text,
    ADD COLUMN mutex text,
    ADD COLUMN gated boolean NOT NULL DEFAULT false,
    ADD COLUMN waiting text;

-- The holders of a unique key, newest last: only unique jobs are in it.
CREATE INDEX jobs_unique_idx ON __SCHEMA__.jobs (unique_key, created_at)
    WHERE unique_key IS NOT NULL;

-- The queues holding Enqueued gated jobs (a server fetches from them with flow control).
CREATE INDEX jobs_gated_idx ON __SCHEMA__.jobs (queue) WHERE state = 'enqueued' AND gated;

ALTER TABLE __SCHEMA__.recurring_jobs
    ADD COLUMN mutex text,
    ADD COLUMN limited boolean NOT NULL DEFAULT false;

-- A queue's stored settings: paused, limits, and the rate window it is counting in.
CREATE TABLE __SCHEMA__.queue_settings (
    queue          text PRIMARY KEY,
    paused         boolean NOT NULL DEFAULT false,
    concurrency    integer CHECK (concurrency >= 1),
    rate_count     integer CHECK (rate_count >= 1),
    rate_period_ms bigint  CHECK (rate_period_ms >= 1),
    rate_window    bigint,
    rate_used      integer NOT NULL DEFAULT 0,
    -- The queue's jobs started under its concurrency limit, and when each was claimed (its
    -- `state_at` then): a claim whose job has changed state since is dropped by the next
    -- fetch, so a crashed holder's slot comes back when its lease lapses. Kept in the row the
    -- fetch updates anyway, so a limited queue costs no write per job.
    claims         bigint[]      NOT NULL DEFAULT '{}',
    claims_at      timestamptz[] NOT NULL DEFAULT '{}',
    -- The transaction that made each claim: a fetch whose snapshot does not see it yet counts
    -- the claim as running without looking at its job (`sql/flow.rs`, FETCH_LIMITED).
    claims_xid     xid8[]        NOT NULL DEFAULT '{}',
    CONSTRAINT queue_settings_rate_check CHECK ((rate_count IS NULL) = (rate_period_ms IS NULL))
);

-- The gated jobs (a mutex or kind limits) a flow-controlled fetch claimed and that may still
-- run: what it counts instead of reading every Processing job (whose index entries, dead ones
-- included, number the jobs of the last vacuum interval). A claim whose job is no longer
-- Processing since that claim (finished, deleted, requeued, or rescued after its lease lapsed)
-- is dropped by the next fetch that meets a gated job, so a crashed holder's slot comes back
-- when its lease lapses. A queue's own claims are in its `queue_settings` row.
CREATE TABLE __SCHEMA__.flow_claims (
    job_id     bigint PRIMARY KEY,
    queue      text NOT NULL,
    name       text NOT NULL,
    mutex      text,
    claimed_at timestamptz NOT NULL
) WITH (
    -- A few rows, each inserted and deleted once per job: vacuumed often, so a fetch reading
    -- it reads its live rows rather than every claim since the last vacuum.
    autovacuum_vacuum_threshold = 100,
    autovacuum_vacuum_scale_factor = 0
);

-- A job kind's limits, stored by the servers that register it.
CREATE TABLE __SCHEMA__.job_limits (
    name           text PRIMARY KEY,
    concurrency    integer CHECK (concurrency >= 1),
    rate_count     integer CHECK (rate_count >= 1),
    rate_period_ms bigint  CHECK (rate_period_ms >= 1),
    rate_window    bigint,
    rate_used      integer NOT NULL DEFAULT 0,
    CONSTRAINT job_limits_rate_check CHECK ((rate_count IS NULL) = (rate_period_ms IS NULL))
);

-- What a rate still allows in the window of `now` (`jobs::flow::rate_left`).
CREATE FUNCTION __SCHEMA__.rate_left(rate_count integer, rate_period_ms bigint,
                                     rate_window bigint, rate_used integer, now timestamptz)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN rate_count IS NULL THEN NULL
        WHEN rate_window = floor(extract(epoch FROM now) * 1000 / rate_period_ms)::bigint
            THEN greatest(rate_count - rate_used, 0)
        ELSE rate_count
    END
$$;

-- The window number of `now` for a period (`Rate::window`).
CREATE FUNCTION __SCHEMA__.rate_window(rate_period_ms bigint, now timestamptz)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT floor(extract(epoch FROM now) * 1000 / rate_period_ms)::bigint
$$;

-- The jobs holding the unique keys `keys` at `now` (each key's `window_ms` as in
-- `Uniqueness::blocks`), after locking each key for the rest of the transaction. The query runs
-- after the locks are taken (a function's statements each take a new snapshot), so it sees
-- every job the previous holder of a key committed: concurrent enqueues of one key create one
-- job.
CREATE FUNCTION __SCHEMA__.unique_holders(keys text[], windows_ms bigint[], now timestamptz)
RETURNS TABLE (key text, id bigint)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    k text;
    i integer;
    holder bigint;
BEGIN
    -- Several keys are locked in one order (sorted, each once), so no two enqueues wait for
    -- each other. Statements, not one query joining the keys: a call costs little more than
    -- its index lookups.
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
          AND (job.state IN ('enqueued', 'scheduled', 'awaiting', 'processing')
               OR job.created_at > now - windows_ms[i] * interval '1 millisecond')
        ORDER BY job.id
        LIMIT 1;
        IF holder IS NOT NULL THEN
            key := keys[i];
            id := holder;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;

-- The flow-controlled fetch (`jobs::Admission`, as MemoryStorage applies it): up to `lim`
-- jobs of `queues` in their order, each queue's jobs by priority then position (plain and
-- gated alike, at most `scan` of them looked at), skipping paused queues, keeping queue
-- limits, job kind limits and mutexes, and passing over a job that must wait, whose history
-- then says why (once per reason). Flow-controlled fetches take turns (one advisory lock for
-- the schema) and count their claims (`flow_claims`) after taking it: a count never misses a
-- job the previous fetch claimed. Plain fetches skip gated jobs, and a server fetches plainly
-- only from queues with no settings, so no other fetch starts jobs these counts cover.
CREATE FUNCTION __SCHEMA__.fetch_flow(queues text[], lim integer, server text,
                                      now timestamptz, lease timestamptz, scan integer)
RETURNS TABLE (id bigint, name text, queue text, args text, retry_count integer,
               created_at timestamptz, enqueued_at timestamptz, parent_id bigint,
               parent_result jsonb)
LANGUAGE plpgsql VOLATILE
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
