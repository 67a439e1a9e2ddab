-- History entries read from the job row, in the spirit of 0005: the two history rows every
-- job wrote on its plain path (its creation and its success) are not written.
--
-- A job created Enqueued with no reason (every `enqueue`, but not a recurring job's firing, a
-- scheduled job or a continuation) writes no history row: its first entry, Enqueued at
-- `created_at` with its queue as data, is read from the row, marked by `created_enqueued`.
--
-- A job that succeeds writes no history row either: while it stays Succeeded its entry is the
-- row (`state_at`, `succeeded_data`: the entry's data without `result`, which is the `result`
-- column) and so is the Processing entry of the attempt that succeeded (`started_at`, and
-- `server_id`, which the row keeps while `succeeded_data` is set; readers show a server only
-- for Processing jobs). A statement that moves it out of Succeeded (delete, requeue) first
-- writes that entry as a history row, as the completion did before.
--
-- Each was a third or more of the rows and index entries its statement wrote, on the two
-- statements every job passes through (enqueue and completion). Jobs created or finished
-- before keep their stored rows (the new columns are false / NULL).
ALTER TABLE __SCHEMA__.jobs
    ADD COLUMN created_enqueued boolean NOT NULL DEFAULT false,
    ADD COLUMN succeeded_data   jsonb,
    ADD COLUMN started_at       timestamptz;

-- The data of a Succeeded entry held by a row: `succeeded_data` with the `result` column put
-- back (a result of JSON null included; no result, no key), for every statement that reads or
-- writes one out.
CREATE FUNCTION __SCHEMA__.succeeded_entry_data(succeeded_data jsonb, result jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN result IS NULL THEN succeeded_data
                ELSE succeeded_data || jsonb_build_object('result', result) END
$$;
