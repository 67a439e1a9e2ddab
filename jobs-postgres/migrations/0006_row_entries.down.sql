-- The entries read from job rows become history rows again: a creation entry ahead of every
-- other row of its job (`seq` 0: the identity starts at 1), a success after every other.
INSERT INTO __SCHEMA__.job_history (job_id, seq, state, at, data)
OVERRIDING SYSTEM VALUE
SELECT id, 0, 'enqueued', created_at, jsonb_build_object('queue', queue)
FROM __SCHEMA__.jobs
WHERE created_enqueued;

INSERT INTO __SCHEMA__.job_history (job_id, state, at, data, attempt_at, attempt_data)
SELECT id, 'succeeded', state_at,
       __SCHEMA__.succeeded_entry_data(succeeded_data, result),
       started_at, __SCHEMA__.attempt_data(server_id, retry_count)
FROM __SCHEMA__.jobs
WHERE succeeded_data IS NOT NULL
ORDER BY id;

UPDATE __SCHEMA__.jobs SET server_id = NULL WHERE succeeded_data IS NOT NULL;

ALTER TABLE __SCHEMA__.jobs
    DROP COLUMN created_enqueued,
    DROP COLUMN succeeded_data,
    DROP COLUMN started_at;

DROP FUNCTION __SCHEMA__.succeeded_entry_data(jsonb, jsonb);
