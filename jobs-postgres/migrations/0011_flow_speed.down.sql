-- Unique keys are checked by lock and lookup only, and the flow-controlled fetches are planned
-- per call again.
DROP INDEX __SCHEMA__.jobs_unique_held_idx;
DROP FUNCTION __SCHEMA__.released_note(text, bigint);
DROP INDEX __SCHEMA__.jobs_unique_done_idx;
CREATE INDEX jobs_unique_idx ON __SCHEMA__.jobs (unique_key, created_at)
    WHERE unique_key IS NOT NULL;
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
DROP FUNCTION __SCHEMA__.fetch_limited(text[], bigint, text, timestamptz, timestamptz);
ALTER FUNCTION __SCHEMA__.fetch_flow(text[], integer, text, timestamptz, timestamptz, integer)
    RESET plan_cache_mode;
ALTER FUNCTION __SCHEMA__.fetch_flow(text[], integer, text, timestamptz, timestamptz, integer)
    RESET jit;
ALTER FUNCTION __SCHEMA__.rate_window(bigint, timestamptz) IMMUTABLE;
ALTER FUNCTION __SCHEMA__.rate_left(integer, bigint, bigint, integer, timestamptz) IMMUTABLE;
