-- Processing entries as rows of their own again. The running attempts get theirs back; the
-- ended attempts' entries are dropped with the columns (a row appended now would sort after
-- the entry that ended its attempt).
INSERT INTO __SCHEMA__.job_history (job_id, state, at, data)
SELECT id, 'processing', state_at, __SCHEMA__.attempt_data(server_id, retry_count)
FROM __SCHEMA__.jobs
WHERE state = 'processing'
ORDER BY id;

ALTER TABLE __SCHEMA__.job_history
    DROP COLUMN attempt_at,
    DROP COLUMN attempt_data;

DROP FUNCTION __SCHEMA__.attempt_data(text, integer);
