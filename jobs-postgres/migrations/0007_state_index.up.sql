-- Enqueued jobs leave `jobs_state_idx`: `jobs_fetch_idx` holds exactly them already (its
-- predicate is `state = 'enqueued'`), and every enqueue, requeue and release paid for a second
-- index entry. What read Enqueued jobs through `jobs_state_idx` reads `jobs_fetch_idx`: the
-- counts (the Enqueued total is its per-queue counts'), and the dashboard's Enqueued lists (a
-- state filter is planned for its value, so the planner sees which index holds it). The
-- rescuer and the pruner name their states in the statement and keep this index.
DROP INDEX __SCHEMA__.jobs_state_idx;
CREATE INDEX jobs_state_idx ON __SCHEMA__.jobs (state, state_at, id) WHERE state <> 'enqueued';
