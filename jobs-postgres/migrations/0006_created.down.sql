-- The first entries read from job rows become history rows again, ahead of every other row of
-- their job (`seq` 0: the identity starts at 1).
INSERT INTO __SCHEMA__.job_history (job_id, seq, state, at, data)
OVERRIDING SYSTEM VALUE
SELECT id, 0, 'enqueued', created_at, jsonb_build_object('queue', queue)
FROM __SCHEMA__.jobs
WHERE created_enqueued;

ALTER TABLE __SCHEMA__.jobs DROP COLUMN created_enqueued;
